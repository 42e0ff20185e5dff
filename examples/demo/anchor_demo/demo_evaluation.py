"""Evaluation of one demo model on the local tasks, as ``experiments/mteb_eval_custom.py`` does it."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from anchor_demo.run_files import format_seconds, read_json

Log = Callable[[str], None]


def caching_encoder_class() -> type:
    from llm2vec.evaluation.mteb_encoder import LLM2VecMTEBEncoder

    class CachingEncoder(LLM2VecMTEBEncoder):
        """``LLM2VecMTEBEncoder`` that embeds each distinct (instruction, text) once per model.

        The STS task repeats its 50 texts in 100 pairs, so this saves most of its encoding. In
        float32 the embeddings equal those without the cache (each text is encoded on its own
        row); in bf16 they differ by rounding, because the batches hold other texts and other
        padding, which can move a score whose embeddings are nearly collapsed (docs/demo.md).
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._cache: dict[tuple[str, str], Any] = {}
            self.encoded = 0
            self.requested = 0

        def encode_texts(self, texts: Sequence[str], instruction: str = "", **kwargs: Any) -> Any:
            import numpy as np

            self.requested += len(texts)
            missing = list(dict.fromkeys(t for t in texts if (instruction, t) not in self._cache))
            if missing:
                embeddings = super().encode_texts(missing, instruction, **kwargs)
                self.encoded += len(missing)
                for text, row in zip(missing, embeddings, strict=True):
                    self._cache[(instruction, text)] = row
            if not texts:
                return super().encode_texts(texts, instruction, **kwargs)
            return np.stack([self._cache[(instruction, t)] for t in texts]).astype(np.float32, copy=False)

    return CachingEncoder


def evaluate_model(
    key: str,
    base: Path,
    adapter: Path | None,
    eval_dir: Path,
    results_dir: Path,
    *,
    dtype: str,
    batch_size: int,
    max_length: int,
    doc_max_length: int,
    log: Log,
    label: str | None = None,
) -> dict[str, float]:
    """Evaluate one model on the local tasks as ``mteb_eval_custom.py`` does; ``{task: main score}``.

    Results go to ``<results_dir>/demo__<key>/<fingerprint>/<task>.json``; tasks with complete
    results there are skipped (mteb's layout and skip rules, as in ``mteb_eval_custom.py``).
    """
    from llm2vec.evaluation.runner import (
        OutputFolderCache,
        build_tasks,
        collect_instructions,
        evaluate_tasks,
        fingerprinted_model,
        load_llm2vec,
        plan_tasks,
    )
    from llm2vec.reporting.results_io import load_run

    tasks = build_tasks(None, eval_dir)
    instructions = collect_instructions(tasks, None)
    cache = OutputFolderCache(results_dir)
    model_meta, _ = fingerprinted_model(
        cache, base, adapter, name=f"demo/{key}", dtype=dtype, max_length=max_length, doc_max_length=doc_max_length
    )
    plans = plan_tasks(tasks, cache, model_meta)
    to_run = [plan for plan in plans if plan.run]
    for plan in plans:
        if not plan.run:
            log(f"  {plan.name}: results exist, skipped")
    if to_run:
        log(f"  loading {label or key}: {base}" + (f" + adapter {adapter}" if adapter else "") + f" ({dtype})")
        model = load_llm2vec(
            str(base), str(adapter) if adapter else None, device="cpu", dtype=dtype,
            max_length=max_length, doc_max_length=doc_max_length,
        )
        encoder = caching_encoder_class()(
            model, instructions, model_meta=model_meta, batch_size=batch_size, show_progress_bar=True
        )
        for plan in to_run:
            wall = time.time()
            with warnings.catch_warnings():
                # mteb's logistic regression (100 iterations) warns on most demo classification runs
                warnings.filterwarnings("ignore", message=".*failed to converge.*")
                warnings.filterwarnings("ignore", module="sklearn")
                scores = evaluate_tasks(encoder, [plan], cache, batch_size=batch_size)
            log(f"  {plan.name}: {100 * scores.get(plan.name, float('nan')):.2f} ({format_seconds(time.time() - wall)})")
        log(f"  embedded {encoder.encoded} distinct texts for {encoder.requested} requested")
        del encoder, model
    run = load_run(cache.get_task_result_path("_", model_meta).parent)
    return {task: score / 100 for task, score in run.scores.items()}


def has_complete_results(folder: Path, eval_dir: Path) -> bool:
    """Whether ``folder`` has a task file for every local task spec of ``eval_dir``."""
    names = []
    for spec_path in sorted(eval_dir.glob("*.json")):
        spec = read_json(spec_path)
        for item in spec if isinstance(spec, list) else [spec]:
            if isinstance(item, dict) and "name" in item:
                names.append(item["name"])
    return bool(names) and all((folder / f"{name}.json").is_file() for name in names)


