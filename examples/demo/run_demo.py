#!/usr/bin/env python
"""The CPU demo end to end: Baseline vs Anchor on SmolLM2-135M-Instruct with real text (``make demo``).

    python examples/demo/run_demo.py [--force] [--root cache/demo] [--no-bf16] [-- EXTRA TRAINING OVERRIDES]

Converts the model and builds the data (once), trains Baseline (Stage II) and Anchor (Stage I, then
the same Stage II) with the configs in ``train_configs/demo/``, evaluates both and the untrained
model on the demo's local tasks, prints the Table-1-style comparison and writes
``cache/demo/summary.json``, ``cache/demo/results/`` and ``cache/demo/loss_curves.png``.
Finished steps are skipped (``--force`` redoes everything); an interrupted training run resumes
from its newest complete checkpoint. Works from any directory: relative paths are taken from the
repository root. See ``anchor_demo/pipeline.py`` beside this script and ``docs/demo.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# examples/demo/run_demo.py -> the checkout, whose train_configs/ and experiments/ the demo uses
REPO = Path(__file__).resolve().parents[2]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads that wait at a barrier sleep instead of spinning: on a machine where anything else
# runs, spinning threads of a 2-thread torch process wait on each other for whole time slices
# (measured here: a Stage I step 66-76 s with the default policy, 22 s with PASSIVE, load ~3.7 on
# 2 cores). Set before torch starts; the training subprocesses inherit it. Override by setting it.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# Imported after the environment is set. ``anchor_demo`` sits beside this script (its folder is on
# sys.path when the script runs); ``llm2vec`` is the installed library.
from anchor_demo.pipeline import DemoConfig, DemoError, run_demo  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="redo every step (convert, data, train, evaluate)")
    parser.add_argument("--root", type=Path, default=Path("cache/demo"), help="outputs (default: cache/demo)")
    parser.add_argument(
        "--model-dir", type=Path, default=Path("cache/models/SmolLM2-135M-Instruct"), help="converted model folder"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="demo data folder (default: <root>/data)")
    precision = parser.add_mutually_exclusive_group()
    precision.add_argument("--bf16", dest="bf16", action="store_const", const=True, help="force bf16")
    precision.add_argument("--no-bf16", dest="bf16", action="store_const", const=False, help="force float32")
    parser.add_argument("--eval-batch-size", type=int, default=32)
    parser.add_argument(
        "train_overrides", nargs="*", help="after --: --key value overrides for all three training runs"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    os.chdir(REPO)  # the configs' paths are relative to the repository root
    args = parse_args(argv)
    config = DemoConfig(
        root=args.root,
        model_dir=args.model_dir,
        data_dir=args.data_dir if args.data_dir is not None else args.root / "data",
        force=args.force,
        bf16=args.bf16,
        eval_batch_size=args.eval_batch_size,
        train_overrides=list(args.train_overrides),
    )
    try:
        run_demo(config)
    except DemoError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
