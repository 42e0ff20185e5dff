#!/usr/bin/env python
"""Plot training curves as PNG: losses (paper Figure 4) or early-checkpoint scores (Figure 2).

Losses, from ``trainer_state.json`` (a run folder, its last ``checkpoint-N``, or the file)::

    python scripts/plot_training.py loss output/stage2_baseline output/stage2_anchor \\
        --label Baseline --label Anchor --sigma 10 --out figures/loss.png

Stage I runs also log ``q2d_loss`` and ``d2q_loss``; they are drawn dashed/dotted beside
``loss`` (``--keys loss`` draws the total only).

Scores of checkpoints evaluated with mteb, one curve per run: a folder of ``checkpoint-N``
result folders (``--run LABEL=FOLDER``) and/or single points (``--point LABEL=STEP:FOLDER``)::

    python scripts/plot_training.py scores --run Anchor=results/anchor_ckpts \\
        --run Baseline=results/baseline_ckpts --tasks subset15 \\
        --paper llama3.2-1b-anchor --paper llama3.2-1b-baseline --out figures/early.png

Scores are averaged over ``--tasks`` (``subset15``, ``mteb56`` or comma-separated names), by
default over the tasks every checkpoint of the run has.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

from llm2vec.reporting.plots import LOSS_KEYS, plot_loss_curves, plot_score_curves, score_curve


def _tasks(spec: str | None) -> list[str] | None:
    if spec is None:
        return None
    from llm2vec.reporting.tables import PAPER_TASKS, SUBSET15_TASKS

    named = {"subset15": list(SUBSET15_TASKS), "mteb56": sorted(PAPER_TASKS)}
    names: list[str] = []
    for part in spec.split(","):
        part = part.strip()
        if part:
            names.extend(named.get(part.lower(), [part]))
    return names


def _split_label(text: str, option: str) -> tuple[str, str]:
    label, sep, value = text.partition("=")
    if not sep or not label or not value:
        raise argparse.ArgumentTypeError(f"{option} expects LABEL=VALUE, got {text!r}")
    return label, value


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)

    loss = sub.add_parser("loss", help="training-loss curves from trainer_state.json")
    loss.add_argument("runs", nargs="+", help="run folders or trainer_state.json files")
    loss.add_argument("--label", action="append", default=[], help="legend label per run, in order")
    loss.add_argument("--sigma", type=float, default=None, help="Gaussian smoothing (in log points)")
    loss.add_argument("--keys", default=",".join(LOSS_KEYS), help="logged series to draw (default: all)")
    loss.add_argument("--no-raw", action="store_true", help="with --sigma, hide the raw curves")
    loss.add_argument("--log-y", action="store_true")
    loss.add_argument("--title")
    loss.add_argument("--out", type=Path, required=True, help="output PNG")

    scores = sub.add_parser("scores", help="score vs step of evaluated checkpoints")
    scores.add_argument("--run", action="append", default=[], help="LABEL=FOLDER of checkpoint-N result folders")
    scores.add_argument("--point", action="append", default=[], help="LABEL=STEP:RESULTS_FOLDER (repeatable)")
    scores.add_argument("--tasks", help="subset15, mteb56 or comma-separated task names")
    scores.add_argument("--paper", action="append", default=[], help="paper Table 9 row, e.g. llama3.2-1b-anchor")
    scores.add_argument("--title")
    scores.add_argument("--out", type=Path, required=True, help="output PNG")

    args = parser.parse_args(argv)
    if args.command == "loss" and len(args.label) > len(args.runs):
        parser.error(f"{len(args.label)} --label given for {len(args.runs)} runs")
    if args.command == "scores" and not (args.run or args.point or args.paper):
        parser.error("give --run, --point or --paper")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "loss":
        runs = {}
        for index, run in enumerate(args.runs):
            label = args.label[index] if index < len(args.label) else Path(run).name
            runs[label] = run
        keys = [k.strip() for k in args.keys.split(",") if k.strip()]
        path = plot_loss_curves(
            runs, args.out, sigma=args.sigma, keys=keys, title=args.title, show_raw=not args.no_raw, log_y=args.log_y
        )
        print(f"wrote {path}")
        return 0

    tasks = _tasks(args.tasks)
    curves: dict[str, object] = {}
    for item in args.run:
        label, folder = _split_label(item, "--run")
        curves[label] = score_curve(folder, tasks)
    points: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for item in args.point:
        label, value = _split_label(item, "--point")
        step, sep, folder = value.partition(":")
        if not sep or not step.isdigit():
            raise SystemExit(f"--point expects LABEL=STEP:FOLDER, got {item!r}")
        points[label].append((int(step), folder))
    for label, items in points.items():
        curves[label] = score_curve(items, tasks)
    for label, curve in curves.items():
        dropped = getattr(curve, "dropped", {})
        print(f"{label}: {len(curve.steps)} checkpoints, mean over {len(curve.tasks)} tasks")  # type: ignore[attr-defined]
        for step, names in dropped.items():
            print(f"  step {step}: not averaged (not in every checkpoint): {', '.join(names)}")
    path = plot_score_curves(curves, args.out, tasks=tasks, paper_keys=args.paper, title=args.title)  # type: ignore[arg-type]
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
