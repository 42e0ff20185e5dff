"""The tables of the demo's controlled runs (issue 18, part ``demo18``) from the finished jobs' state files.

One row per setting and arm: the Stage II loss at its first and last step, the mean pairwise cosine
of the embeddings, the average over the demo's four tasks and over the three out-of-domain tasks,
each as mean ± sample standard deviation over seeds, and every seed's demo average, so that a
reader sees the spread and not only its summary.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repro_small.demo_campaign import BASELINE_SETTINGS, DEMO_TASKS, OOD_TASKS, STAGE_I_SETTINGS, STAGE_II_SETTINGS
from repro_small.report import Results, average, cell

#: what each setting changes against the demo's own (bf16 autocast both stages, bf16 Stage II
#: weights, loss scale 50, Stage II learning rate 5e-4)
DESCRIPTION = {
    "default": "the demo's settings",
    "stageII-fp32": "Stage II in float32 (weights and compute)",
    "stageI-fp32": "Stage I in float32 (no autocast); Stage II as the demo",
    "fp32": "both stages in float32 (what a CPU without fast bf16 runs)",
    "scale20": "loss scale 20 instead of 50",
    "lr1e-4": "Stage II learning rate 1e-4 instead of 5e-4",
    "lr1e-3": "candidate: Stage II learning rate 1e-3",
    "fp32-lr1e-3": "candidate: Stage II learning rate 1e-3, both stages in float32",
}


def _loss(step: int) -> Any:
    return lambda record: record.get("losses", {}).get(str(step), {}).get("loss", math.nan)


def _demo_average(record: dict) -> float:
    return average(record["scores"], DEMO_TASKS)


def _ood_average(record: dict) -> float:
    return average(record["scores"], OOD_TASKS)


def _per_seed(results: Results, name: str, seeds: Sequence[int]) -> str:
    values = []
    for seed in seeds:
        record = results.records.get(name.format(seed=seed))
        values.append(f"{seed}: {_demo_average(record):.1f}" if record else f"{seed}: –")
    return ", ".join(values)


def demo_table(results: Results, seeds: Sequence[int]) -> list[str]:
    """The runs' table (see the module docstring)."""
    lines = [
        "| run | change | loss at step 1 | loss at step 20 | mean pairwise cosine | demo tasks (4) | each seed | out-of-domain (3) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, name in (("Untrained, EOS", "demo-Untrained-EOS"), ("Untrained, EOS, float32", "demo-Untrained-EOS-fp32"),
                        ("Untrained, mean pooling", "demo-Untrained-mean")):
        record, ood = results.records.get(name), results.records.get(f"{name}-ood")
        if record is None:
            continue
        spread = record.get("mean_pairwise_cosine")
        lines.append(f"| {label} | – | – | – | {'–' if spread is None else f'{spread:.3f}'} | {_demo_average(record):.2f} "
                     f"| – | {'–' if ood is None else f'{_ood_average(ood):.2f}'} |")
    for setting in STAGE_I_SETTINGS:
        run, evaluation = f"demo-StageI-{setting}-s{{seed}}", f"demo-StageI-{setting}-s{{seed}}@final"
        lines.append(_row(results, seeds, f"Stage I only ({setting})", "bf16 autocast" if setting == "default"
                          else "float32", run, evaluation))
    for setting in STAGE_II_SETTINGS:
        for arm in ("Baseline", "Anchor") if setting in BASELINE_SETTINGS else ("Anchor",):
            name = f"demo-{arm}-{setting}-s{{seed}}"
            lines.append(_row(results, seeds, f"{arm} ({setting})", DESCRIPTION[setting], name, f"{name}@final"))
            if setting == "default":
                lines.append(_row(results, seeds, f"{arm} (default), float32 evaluation", "evaluation in float32",
                                  name, f"{name}@final-fp32eval"))
    return lines


def _row(results: Results, seeds: Sequence[int], label: str, change: str, run: str, evaluation: str) -> str:
    seeds = [seed for seed in seeds if run.format(seed=seed) in results.executor.by_name]  # the seeds it has
    cells = [cell(results.over_seeds(run, seeds, _loss(1))), cell(results.over_seeds(run, seeds, _loss(20))),
             cell(results.over_seeds(evaluation, seeds, lambda r: r.get("mean_pairwise_cosine", math.nan))),
             cell(results.over_seeds(evaluation, seeds, _demo_average)), _per_seed(results, evaluation, seeds),
             cell(results.over_seeds(f"{evaluation}-ood", seeds, _ood_average))]
    return f"| {label} | {change} | " + " | ".join(cells) + " |"


def seeds_table(results: Results, seeds: Sequence[int]) -> list[str]:
    """The demo-task average of each arm, at the shipped Stage II learning rate (1e-3) and at the
    earlier one (5e-4), in bf16 and float32, one column per seed."""
    rows = [("Stage I only (bf16)", "demo-StageI-default-s{seed}@final"),
            ("Baseline, lr 1e-3 (bf16)", "demo-Baseline-lr1e-3-s{seed}@final"),
            ("Anchor, lr 1e-3 (bf16)", "demo-Anchor-lr1e-3-s{seed}@final"),
            ("Stage I only (float32)", "demo-StageI-fp32-s{seed}@final"),
            ("Baseline, lr 1e-3 (float32)", "demo-Baseline-fp32-lr1e-3-s{seed}@final"),
            ("Anchor, lr 1e-3 (float32)", "demo-Anchor-fp32-lr1e-3-s{seed}@final"),
            ("Baseline, lr 5e-4 (bf16)", "demo-Baseline-default-s{seed}@final"),
            ("Anchor, lr 5e-4 (bf16)", "demo-Anchor-default-s{seed}@final"),
            ("Baseline, lr 5e-4 (float32)", "demo-Baseline-stageII-fp32-s{seed}@final"),
            ("Anchor, lr 5e-4 (float32)", "demo-Anchor-fp32-s{seed}@final")]
    lines = ["| arm | " + " | ".join(f"seed {seed}" for seed in seeds) + " | mean ± sd (n) |",
             "|---|" + "---:|" * len(seeds) + "---|"]
    for label, name in rows:
        cells = []
        for seed in seeds:
            record = results.records.get(name.format(seed=seed))
            cells.append(f"{_demo_average(record):.2f}" if record else "")
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {cell(results.over_seeds(name, seeds, _demo_average))} |")
    return lines


def write_demo_report(executor: Any, seeds: Sequence[int], docs: Path) -> None:
    """docs/demo_controlled_runs_results.md and the raw records beside the proxy campaign's."""
    results = Results(executor)
    text = ["<!-- written by examples/reproduce_small/run_reproduction.py --report; do not edit -->", "",
            "### Each arm by seed (average of the four demo tasks)", "", *seeds_table(results, seeds), "",
            "### Every run", "", *demo_table(results, seeds), ""]
    (docs / "demo_controlled_runs_results.md").write_text("\n".join(text))
    (docs / "data").mkdir(exist_ok=True)
    (docs / "data" / "demo_controlled_runs_records.json").write_text(
        json.dumps(results.records, indent=1, default=str) + "\n")
    finished = sum(1 for job in executor.plan.jobs if job.name in results.records)
    print(f"{finished} of {len(executor.plan.jobs)} demo18 jobs finished; tables in {docs / 'demo_controlled_runs_results.md'}")
