"""The table of part ``llm2vec14``: does each step of llm2vec's unsupervised recipe help SmolLM2 here?"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repro_small.report import Results, average, cell

ROWS = (
    ("untrained, causal, EOS pooling", "l2v-Untrained-EOS"),
    ("untrained, causal, mean pooling", "l2v-Untrained-mean"),
    ("untrained, llm2vec's settings (bidirectional, mean)", "l2v-Untrained-bidirectional-mean"),
    ("MNTP", "l2v-MNTP-s{seed}@final"),
    ("MNTP + unsupervised SimCSE", "l2v-SimCSE-s{seed}@final"),
)


def llm2vec_table(results: Results, seeds: Sequence[int]) -> list[str]:
    """One row per step: each task (mean over seeds), the average with its spread, the cosine, the loss."""
    tasks = sorted({task for record in results.records.values() for task in record.get("scores", {})})
    lines = ["| step | " + " | ".join(tasks) + " | average | each seed | mean pairwise cosine |",
             "|---|" + "---:|" * len(tasks) + "---|---|---|"]
    for label, pattern in ROWS:
        names = [pattern.format(seed=seed) for seed in seeds] if "{seed}" in pattern else [pattern]
        records = [results.records[name] for name in names if name in results.records]
        if not records:
            lines.append(f"| {label} |" + " |" * len(tasks) + " – | – | – |")
            continue
        per_task = [sum(100 * r["scores"].get(t, math.nan) for r in records) / len(records) for t in tasks]
        averages = [average(r["scores"]) for r in records]
        cosines = [r["mean_pairwise_cosine"] for r in records if "mean_pairwise_cosine" in r]
        each = ", ".join(f"{v:.2f}" for v in averages) if len(records) > 1 else "–"
        lines.append(f"| {label} | " + " | ".join(f"{v:.2f}" for v in per_task) + f" | {cell(averages)} | {each} | "
                     f"{cell(cosines) if cosines else '–'} |")
    return lines


def write_llm2vec_report(executor: Any, seeds: Sequence[int], docs: Path) -> None:
    """docs/llm2vec_smollm2_results.md and the raw records."""
    results = Results(executor)
    text = ["<!-- written by examples/reproduce_small/run_reproduction.py --report; do not edit -->", "",
            *llm2vec_table(results, seeds), ""]
    (docs / "llm2vec_smollm2_results.md").write_text("\n".join(text))
    (docs / "data").mkdir(exist_ok=True)
    (docs / "data" / "llm2vec_smollm2_records.json").write_text(json.dumps(results.records, indent=1, default=str) + "\n")
    finished = sum(1 for job in executor.plan.jobs if job.name in results.records)
    print(f"{finished} of {len(executor.plan.jobs)} llm2vec14 jobs finished; table in {docs / 'llm2vec_smollm2_results.md'}")
