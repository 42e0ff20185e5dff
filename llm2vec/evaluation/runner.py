"""The pieces of ``experiments/mteb_eval_custom.py``: pick tasks, check instructions, skip what
is done, load the model, run mteb and write its results.

Results are written by mteb itself (``mteb.evaluate`` with a result cache, so partial results are
kept per subset and completed later) to ``<output_dir>/<model name>/<revision>/<task name>.json``
with ``model_meta.json`` and ``run_settings.jsonl`` next to them: the layout of mteb's
``MTEB(tasks).run(model, output_folder=output_dir)`` and of the released scripts
(:class:`OutputFolderCache`). The model name is ``organization/model`` with ``/`` written as ``__``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mteb import ResultCache
from mteb.models.model_meta import ModelMeta

from llm2vec.evaluation.instructions import check_instructions, default_instructions_path, load_task_instructions
from llm2vec.evaluation.task_lists import build_mteb_tasks, resolve_task_names

if TYPE_CHECKING:
    import torch
    from mteb import AbsTask

    from llm2vec.llm2vec import LLM2Vec

__all__ = [
    "DTYPES",
    "OutputFolderCache",
    "TaskPlan",
    "build_tasks",
    "collect_instructions",
    "plan_tasks",
    "default_device",
    "resolve_dtype",
    "load_llm2vec",
    "evaluate_tasks",
]


DTYPES = ("bfloat16", "float16", "float32")


class OutputFolderCache(ResultCache):
    """mteb's result cache writing to ``<output_dir>/<model>/<revision>/<task>.json``.

    ``ResultCache`` puts results under ``<cache_path>/results/``; this one drops that level, so
    the output folder has the layout of ``MTEB(...).run(output_folder=...)``. Everything else
    (saving after each subset, resuming, ``model_meta.json``) is mteb's.
    """

    def get_task_result_path(
        self,
        task_name: str,
        model_name: str | ModelMeta,
        model_revision: str | None = None,
        remote: bool = False,
        experiment_name: str | None = None,
    ) -> Path:
        path = super().get_task_result_path(task_name, model_name, model_revision, remote, experiment_name)
        if remote:
            return path
        return self.cache_path / path.relative_to(self.cache_path / "results")


def build_tasks(task_name: str | Sequence[str] | None, local_tasks: str | os.PathLike | None) -> list[AbsTask]:
    """mteb tasks of ``task_name`` (see ``resolve_task_names``) followed by the local tasks."""
    from llm2vec.evaluation.local_tasks import load_local_tasks

    tasks: list[AbsTask] = []
    if task_name:
        tasks.extend(build_mteb_tasks(resolve_task_names(task_name)))
    if local_tasks:
        tasks.extend(load_local_tasks(local_tasks))
    if not tasks:
        raise ValueError("no tasks: give a task name (or mteb56 / subset15) and/or local task specs")
    names = [task.metadata.name for task in tasks]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"tasks given more than once: {duplicates}")
    return tasks


def collect_instructions(
    tasks: Sequence[AbsTask],
    instructions_path: str | os.PathLike | None,
    *,
    allow_missing: bool = False,
) -> dict[str, str]:
    """The instructions file (``None``: the packaged one) merged with the local tasks' own
    instructions (these win).

    Raises ``MissingInstructionError`` naming the tasks without an instruction and the file,
    unless ``allow_missing``; ``FileNotFoundError`` if ``instructions_path`` does not exist.
    """
    from llm2vec.evaluation.local_tasks import local_task_instructions

    instructions = load_task_instructions(instructions_path)
    instructions.update(local_task_instructions(tasks))
    if not allow_missing:
        source = instructions_path if instructions_path is not None else default_instructions_path()
        check_instructions([task.metadata.name for task in tasks], instructions, source)
    return instructions


@dataclass
class TaskPlan:
    """What to do with one task: run it (with an mteb overwrite strategy) or skip it."""

    task: AbsTask
    result_path: Path
    run: bool
    overwrite_strategy: str  # "always" or "only-missing"
    reason: str

    @property
    def name(self) -> str:
        return self.task.metadata.name


def plan_tasks(tasks: Sequence[AbsTask], cache: ResultCache, model_meta: ModelMeta, overwrite: bool = False) -> list[TaskPlan]:
    """Decide per task: re-run all (``overwrite``), skip (complete results exist), or run.

    Partial results are completed (mteb's ``only-missing``); results of a local task whose data
    changed since (another dataset revision) are replaced.
    """
    from mteb import TaskResult

    plans = []
    for task in tasks:
        path = cache.get_task_result_path(task.metadata.name, model_meta)
        if overwrite:
            plans.append(TaskPlan(task, path, True, "always", "--overwrite"))
            continue
        if not path.exists():
            plans.append(TaskPlan(task, path, True, "only-missing", "no results yet"))
            continue
        existing = TaskResult.from_disk(path)
        if getattr(task, "spec", None) is not None and existing.dataset_revision != task.metadata.revision:
            reason = f"local data changed (revision {existing.dataset_revision} -> {task.metadata.revision})"
            plans.append(TaskPlan(task, path, True, "always", reason))
            continue
        missing = existing.get_missing_evaluations(task)
        if missing:
            plans.append(TaskPlan(task, path, True, "only-missing", f"missing splits/subsets {missing}"))
        else:
            plans.append(TaskPlan(task, path, False, "only-missing", "results exist"))
    return plans


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    """``dtype`` by name; by default bfloat16 on a GPU and float32 on the CPU."""
    import torch

    if dtype is None:
        dtype = "float32" if torch.device(device).type == "cpu" else "bfloat16"
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {DTYPES}, got {dtype!r}")
    return getattr(torch, dtype)


def load_llm2vec(
    base_model_name_or_path: str | os.PathLike,
    peft_model_name_or_path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    device: str | None = None,
    dtype: str | None = None,
    attn_implementation: str | None = None,
    max_length: int | None = None,
    doc_max_length: int | None = None,
) -> LLM2Vec:
    """``LLM2Vec.from_pretrained`` with the evaluation settings, moved to ``device``, in eval mode."""
    from llm2vec.llm2vec import LLM2Vec

    device = device or default_device()
    kwargs: dict[str, Any] = {"dtype": resolve_dtype(dtype, device)}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = LLM2Vec.from_pretrained(
        base_model_name_or_path,
        peft_model_name_or_path=peft_model_name_or_path or None,
        max_length=max_length,
        doc_max_length=doc_max_length,
        **kwargs,
    )
    return model.to(device).eval()


def evaluate_tasks(
    encoder: Any,
    plans: Sequence[TaskPlan],
    cache: ResultCache,
    *,
    batch_size: int = 32,
) -> dict[str, float]:
    """Run mteb on every planned task (one ``mteb.evaluate`` call each); ``{task: main score}``."""
    import mteb

    scores: dict[str, float] = {}
    for plan in plans:
        if not plan.run:
            continue
        result = mteb.evaluate(
            encoder,
            plan.task,
            cache=cache,
            overwrite_strategy=plan.overwrite_strategy,
            encode_kwargs={"batch_size": batch_size},
            co2_tracker=False,
            raise_error=True,
            show_progress_bar=False,
        )
        for task_result in result.task_results:
            scores[task_result.task_name] = float(task_result.get_score())
    return scores
