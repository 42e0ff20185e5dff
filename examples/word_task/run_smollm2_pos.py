#!/usr/bin/env python
"""llm2vec's word-level POS probe on SmolLM2-135M-Instruct: causal, bidirectional, +MNTP, +SimCSE.

    python examples/word_task/prepare_oanc_pos.py          # the data (once)
    python examples/word_task/run_smollm2_pos.py [--runs cache/reproduce_small/llm2vec14/runs]

Runs ``experiments/run_word_task.py train_configs/word_task/smollm2_oanc_pos.json`` for llm2vec's
four word-task settings (its ``uni``, ``bi``, ``bi-mntp``, ``bi-mntp-simcse`` configs): the untrained
model with causal and with bidirectional attention, and the bidirectional model with each MNTP adapter, and each MNTP + SimCSE chain,
that the llm2vec14 campaign trained (``make reproduce-small REPRO_ARGS="--only llm2vec14"``; one
run per training seed found under ``--runs``). Runs already finished are not repeated. Prints a
markdown table and writes it to ``--table``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "train_configs" / "word_task" / "smollm2_oanc_pos.json"
SCRIPT = REPO / "experiments" / "run_word_task.py"
BASE = "cache/models/SmolLM2-135M-Instruct"
#: probe seeds of the untrained settings (each run computes the states again: 2-4 minutes on 2 cores)
PROBE_SEEDS = (42,)


def variants(runs: Path) -> list[tuple[str, str, list[str]]]:
    """(setting, run name, overrides) of every run."""
    found = []
    for seed in PROBE_SEEDS:
        found.append(("uni (causal, untrained)", f"uni-probe{seed}", ["--bidirectional", "false", "--seed", str(seed)]))
        found.append(("bi (bidirectional, untrained)", f"bi-probe{seed}", ["--seed", str(seed)]))
    for mntp in sorted(runs.glob("l2v-MNTP-s*")):
        if not (mntp / "training_complete.json").is_file():
            continue
        seed = mntp.name.rsplit("-s", 1)[1]
        found.append(("bi + MNTP", f"bi-mntp-s{seed}", ["--model_name_or_path", str(mntp)]))
        simcse = runs / f"l2v-SimCSE-s{seed}"
        if (simcse / "training_complete.json").is_file():
            found.append(("bi + MNTP + SimCSE", f"bi-mntp-simcse-s{seed}",
                          ["--model_name_or_path", str(mntp), "--peft_model_name_or_path", str(simcse)]))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=Path, default=REPO / "cache/reproduce_small/llm2vec14/runs")
    parser.add_argument("--output", type=Path, default=REPO / "cache/word_task/runs")
    parser.add_argument("--table", type=Path, default=REPO / "docs/data/word_task_smollm2_pos.md")
    args = parser.parse_args()
    scores: dict[str, list[tuple[str, dict]]] = {}
    for setting, name, overrides in variants(args.runs):
        output = args.output / name
        if not (output / "training_complete.json").is_file():
            command = [sys.executable, str(SCRIPT), str(CONFIG), "--output_dir", str(output),
                       "--overwrite_output_dir", "true", *overrides]
            print(f"== {name}: {' '.join(command[2:])}", flush=True)
            subprocess.run(command, check=True, cwd=REPO)
        record = json.loads((output / "word_task.json").read_text())
        scores.setdefault(setting, []).append((name, record["scores"]))
    lines = [
        "| setting (llm2vec's config) | runs | validation accuracy | test accuracy | test accuracy of each run |",
        "| --- | --- | --- | --- | --- |",
    ]
    for setting, rows in scores.items():
        cells = []
        for split in ("validation", "test"):
            values = [100 * row[split]["accuracy"] for _, row in rows]
            spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
            cells.append(f"{statistics.mean(values):.2f}{spread}")
        each = ", ".join(f"{name} {100 * row['test']['accuracy']:.2f}" for name, row in rows)
        lines.append(f"| {setting} | {len(rows)} | {cells[0]} | {cells[1]} | {each} |")
    table = "\n".join(lines) + "\n"
    args.table.parent.mkdir(parents=True, exist_ok=True)
    args.table.write_text(table)
    print(table)


if __name__ == "__main__":
    main()
