"""One evaluation job: a model on the suite's tasks, as ``mteb_eval_custom.py`` scores them.

LLM2Vec models go through the library's evaluation runner (results keyed by the model's content
fingerprint, finished tasks skipped) with the demo's encoder that embeds each distinct text once;
all-MiniLM-L6-v2 goes through mteb's own sentence-transformers wrapper. A job may also measure
the spread of the embeddings: the mean cosine between every two of a fixed sample of texts (near
1 when the embeddings have collapsed onto one direction).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llm2vec.evaluation.anchor_probe import mean_pairwise_cosine
from repro_small.plan import Evaluate

if TYPE_CHECKING:
    from repro_small.jobs import Executor

SPREAD_SAMPLE = 200


def suite_tasks(suite: Path, names: tuple[str, ...] | None) -> list[Any]:
    """The suite's local tasks, all or those in ``names`` (in the suite's order)."""
    from llm2vec.evaluation.runner import build_tasks

    tasks = build_tasks(None, suite / "eval")
    if names is None:
        return tasks
    missing = sorted(set(names) - {task.metadata.name for task in tasks})
    if missing:
        raise ValueError(f"{suite / 'eval'} has no tasks {missing}")
    return [task for task in tasks if task.metadata.name in names]


def spread_texts(suite: Path, count: int = SPREAD_SAMPLE) -> list[str]:
    """A fixed sample of the suite's texts: the first ``count`` lines of its clustering data."""
    manifest = json.loads((suite / "manifest.json").read_text())
    path = suite / manifest["spread_texts"]
    texts = [json.loads(line)["text"] for line in path.read_text().splitlines() if line.strip()]
    return texts[:count]




def evaluate_job(executor: Executor, job: Evaluate) -> dict[str, Any]:
    settings = executor.settings
    names = {"curve": settings.curve_tasks, "ood": settings.ood_tasks, "full": None}[job.tasks]
    tasks = suite_tasks(settings.suite, names)
    base = executor.model_path(job.base)
    adapter = None
    if job.adapter is not None:
        folder = settings.runs_dir / job.adapter
        adapter = folder / f"checkpoint-{job.step}" if job.step is not None else folder
    if job.base == "minilm":
        scores, spread = _sentence_transformer(base, tasks, settings, job)
    else:
        scores, spread = _llm2vec(base, adapter, tasks, settings, job)
    record: dict[str, Any] = {"kind": "evaluate", "base": str(base), "adapter": str(adapter) if adapter else None,
                              "scores": scores}
    if spread is not None:
        record["mean_pairwise_cosine"] = spread
    average = sum(scores.values()) / len(scores)
    record["summary"] = f"{len(scores)} tasks, average {100 * average:.2f}" + (
        f", mean pairwise cosine {spread:.3f}" if spread is not None else "")
    return record


def _llm2vec(base: Path, adapter: Path | None, tasks: list[Any], settings: Any, job: Evaluate) -> tuple[dict, float | None]:
    from anchor_demo.demo_evaluation import caching_encoder_class
    from llm2vec.evaluation.runner import (
        OutputFolderCache,
        collect_instructions,
        evaluate_tasks,
        fingerprinted_model,
        load_llm2vec,
        plan_tasks,
    )

    dtype = "float32" if settings.precision == "float32" else job.dtype
    max_length = job.max_length or settings.eval_max_length
    doc_max_length = job.doc_max_length or settings.eval_doc_max_length
    instructions = collect_instructions(tasks, None)
    cache = OutputFolderCache(settings.results_dir)
    meta, _ = fingerprinted_model(
        cache, base, adapter, name=f"repro/{job.name.split('@')[0]}", dtype=dtype,
        max_length=max_length, doc_max_length=doc_max_length, pooling_mode=job.pooling_mode, merge_peft=True,
    )
    plans = plan_tasks(tasks, cache, meta)
    to_run = [plan for plan in plans if plan.run]
    spread = None
    if to_run or job.spread:
        # Merged: an unmerged LoRA adapter makes CPU encoding several times slower.
        model = load_llm2vec(base, adapter, device="cpu", dtype=dtype, max_length=max_length,
                             doc_max_length=doc_max_length, pooling_mode=job.pooling_mode,
                             merge_peft=True)
        if job.spread:
            embeddings = model.encode(spread_texts(settings.suite), batch_size=settings.eval_batch_size,
                                      show_progress_bar=False)
            spread = mean_pairwise_cosine(embeddings)
        if to_run:
            encoder = caching_encoder_class()(model, instructions, model_meta=meta, batch_size=settings.eval_batch_size,
                                              show_progress_bar=False)
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=".*failed to converge.*")
                warnings.filterwarnings("ignore", module="sklearn")
                evaluate_tasks(encoder, to_run, cache, batch_size=settings.eval_batch_size)
    return _scores(cache.get_task_result_path("_", meta).parent, tasks), spread


def _sentence_transformer(path: Path, tasks: list[Any], settings: Any, job: Evaluate) -> tuple[dict, float | None]:
    """mteb's own wrapper around a sentence-transformers folder (no instructions: MiniLM has none)."""
    import mteb
    from mteb.models.sentence_transformer_wrapper import SentenceTransformerEncoderWrapper

    from llm2vec.evaluation.runner import OutputFolderCache

    encoder = SentenceTransformerEncoderWrapper(str(path), device="cpu")
    cache = OutputFolderCache(settings.results_dir / "sentence-transformers")
    scores = {}
    for task in tasks:
        result = mteb.evaluate(encoder, task, cache=cache, overwrite_strategy="only-missing",
                               encode_kwargs={"batch_size": settings.eval_batch_size}, co2_tracker=False,
                               raise_error=True, show_progress_bar=False)
        for task_result in result.task_results:
            scores[task_result.task_name] = float(task_result.get_score())
    return scores, None


def _scores(folder: Path, tasks: list[Any]) -> dict[str, float]:
    """Main score (0-1) of every task from the result files in ``folder``."""
    from mteb import TaskResult

    scores = {}
    for task in tasks:
        name = task.metadata.name
        scores[name] = float(TaskResult.from_disk(folder / f"{name}.json").get_score())
    return scores
