"""The pieces of ``experiments/mteb_eval_custom.py``: pick tasks, check instructions, skip what
is done, load the model, run mteb and write its results.

Results are written by mteb itself (``mteb.evaluate`` with a result cache, so partial results are
kept per subset and completed later) to ``<output_dir>/<model name>/<fingerprint>/<task name>.json``
with ``model_meta.json``, ``run_settings.jsonl`` and ``fingerprint.json`` next to them (mteb's
layout, :class:`OutputFolderCache`, with files written atomically). The model name is readable
(``organization/model``, ``/`` written as ``__``); the fingerprint, in mteb's revision slot, is what
determines the embeddings (:func:`evaluation_fingerprint`), so two models never share a folder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mteb import ResultCache
from mteb.models.model_meta import ModelMeta

from llm2vec.evaluation.data_parallel import Ranks
from llm2vec.evaluation.embedding_cache import EmbeddingCache, embedding_fingerprint
from llm2vec.evaluation.instructions import (
    MissingInstructionError,
    check_instructions,
    default_instructions_path,
    load_task_instructions,
)
from llm2vec.evaluation.local_tasks import LocalTaskError
from llm2vec.evaluation.task_lists import build_mteb_tasks, resolve_task_names
from llm2vec.files import remove_stale_temporaries, set_aside, temporary_path, write_atomically, write_text_atomically
from llm2vec.fingerprint import chain_fingerprint, digest, file_digest
from llm2vec.model_sources import ModelSourceError

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
    "evaluation_fingerprint",
    "fingerprinted_model",
    "default_device",
    "resolve_dtype",
    "load_llm2vec",
    "evaluate_tasks",
    "embedding_cache_for",
]


DTYPES = ("bfloat16", "float16", "float32")
#: bad input rather than a bug: ``mteb_eval_custom.py`` prints these as one line
USER_ERRORS = (MissingInstructionError, FileNotFoundError, LocalTaskError, ModelSourceError)
FINGERPRINT_NAME = "fingerprint.json"

logger = logging.getLogger(__name__)


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

    def save_to_cache(self, task_result: Any, model_name: str | ModelMeta, model_revision: str | None = None, **kwargs: Any) -> None:
        """mteb's files, each written in a staging folder and renamed into place, the result last,
        so that a run killed while writing leaves the previous complete files or none."""
        path = self.get_task_result_path(task_result.task_name, model_name, model_revision)
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path.parent)
        staging = temporary_path(path.parent / "staging")
        shutil.rmtree(staging, ignore_errors=True)
        try:
            staged_cache = OutputFolderCache(staging)
            staged_path = staged_cache.get_task_result_path(task_result.task_name, model_name, model_revision)
            staged_path.parent.mkdir(parents=True)
            settings = path.parent / "run_settings.jsonl"
            if settings.is_file():  # mteb merges new run settings into the existing file
                shutil.copyfile(settings, staged_path.parent / settings.name)
            super(OutputFolderCache, staged_cache).save_to_cache(task_result, model_name, model_revision, **kwargs)
            written = sorted(staged_path.parent.iterdir(), key=lambda p: p == staged_path)
            for staged_file in written:
                write_atomically(path.parent / staged_file.name, lambda target, f=staged_file: shutil.copyfile(f, target))
        finally:
            shutil.rmtree(staging, ignore_errors=True)


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
        try:
            existing = TaskResult.from_disk(path)
        except Exception as error:  # noqa: BLE001 - any unreadable file is treated the same way
            aside = set_aside(path)
            logger.warning("%s cannot be read (%s); moved to %s, %s runs again", path, error, aside, task.metadata.name)
            print(f"warning: {path} cannot be read; moved to {aside} and running {task.metadata.name} again")
            plans.append(TaskPlan(task, path, True, "always", "unreadable results set aside"))
            continue
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


def _fingerprinted_settings(settings: Any) -> dict[str, Any]:
    # Settings added after results were cached are left out at their default, so that adding one
    # does not make every cached evaluation stale.
    fields = asdict(settings)
    for name, default in (("tokenization", "anchor"), ("llm2vec_model_name", None)):
        if name in fields and fields[name] == default:
            del fields[name]
    return fields


def evaluation_fingerprint(
    base_model_name_or_path: str | os.PathLike,
    peft_model_name_or_path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    dtype: str,
    max_length: int | None = None,
    doc_max_length: int | None = None,
    pooling_mode: str | None = None,
    attn_implementation: str | None = None,
    instructions_path: str | os.PathLike | None = None,
    merge_peft: bool = False,
) -> tuple[str, dict[str, Any]]:
    """What determines the embeddings of an evaluation, and its digest (16 hex digits).

    The weights of the base and of every adapter by content (hub ids by name), the encoder
    settings as ``from_pretrained`` will resolve them, the dtype, the attention implementation and
    the instructions file's content. Loads no weights; reads (and hashes) the weight files.
    """
    from llm2vec.llm2vec import LLM2Vec

    adapters = LLM2Vec._adapter_paths(peft_model_name_or_path)
    settings = LLM2Vec.resolve_config(
        base_model_name_or_path, adapters, max_length=max_length, doc_max_length=doc_max_length,
        pooling_mode=pooling_mode,
    )
    instructions = Path(instructions_path) if instructions_path is not None else default_instructions_path()
    parts = {
        "sources": [str(base_model_name_or_path), *adapters],
        "weights": chain_fingerprint([base_model_name_or_path, *adapters]),
        "settings": _fingerprinted_settings(settings),
        "dtype": dtype,
        "attn_implementation": attn_implementation or "default",
        "instructions": file_digest(instructions),
    }
    if merge_peft and adapters:  # absent otherwise, so that earlier fingerprints stay valid
        parts["merged_adapters"] = True
    return digest({k: v for k, v in parts.items() if k != "sources"})[:16], parts


def fingerprinted_model(
    cache: OutputFolderCache,
    base_model_name_or_path: str | os.PathLike,
    peft_model_name_or_path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    name: str | None,
    dtype: str,
    max_length: int,
    doc_max_length: int,
    pooling_mode: str | None = None,
    attn_implementation: str | None = None,
    instructions_path: str | os.PathLike | None = None,
    merge_peft: bool = False,
) -> tuple[ModelMeta, dict[str, Any]]:
    """The mteb metadata of a model whose results folder is keyed by :func:`evaluation_fingerprint`,
    and the record the key digests (for the embedding cache); the folder's ``fingerprint.json``
    records what the key stands for."""
    from llm2vec.evaluation.mteb_encoder import build_model_meta

    revision, parts = evaluation_fingerprint(
        base_model_name_or_path, peft_model_name_or_path, dtype=dtype, max_length=max_length,
        doc_max_length=doc_max_length, pooling_mode=pooling_mode, attn_implementation=attn_implementation,
        instructions_path=instructions_path, merge_peft=merge_peft,
    )
    meta = build_model_meta(
        base_model_name_or_path, peft_model_name_or_path, name=name, revision=revision, max_tokens=max_length
    )
    folder = cache.get_task_result_path("_", meta).parent
    folder.mkdir(parents=True, exist_ok=True)
    write_text_atomically(folder / FINGERPRINT_NAME, json.dumps(parts, indent=2, default=str) + "\n")
    return meta, parts


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def dtype_name(dtype: str | None, device: str | None) -> str:
    """The name of the dtype evaluation runs in: ``dtype``, or the default for ``device``."""
    return str(resolve_dtype(dtype, device or default_device())).removeprefix("torch.")


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
    pooling_mode: str | None = None,
    allow_base_mismatch: bool = False,
    merge_peft: bool = False,
) -> LLM2Vec:
    """``LLM2Vec.from_pretrained`` with the evaluation settings, moved to ``device``, in eval mode.

    ``merge_peft`` merges the last adapter into the weights too: several times faster on a CPU
    (no separate low-rank products in every layer), but in bf16 the merged weights are rounded,
    so the embeddings differ slightly; :func:`evaluation_fingerprint` keys the results by it.
    """
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
        pooling_mode=pooling_mode,
        allow_base_mismatch=allow_base_mismatch,
        merge_peft=merge_peft,
        **kwargs,
    )
    return model.to(device).eval()


def evaluate_tasks(
    encoder: Any,
    plans: Sequence[TaskPlan],
    cache: ResultCache,
    *,
    batch_size: int = 32,
    ranks: Ranks | None = None,
) -> dict[str, float]:
    """Run mteb on every planned task (one ``mteb.evaluate`` call each); ``{task: main score}``.

    Under data parallelism every rank runs the same tasks; only rank 0 writes results. A task is
    then run whole (mteb's ``always``) so that no rank skips a subset another rank encodes;
    the embedding cache makes the subsets already done cheap.
    """
    import mteb

    ranks = ranks or Ranks.current()
    scores: dict[str, float] = {}
    for plan in plans:
        if not plan.run:
            continue
        result = mteb.evaluate(
            encoder,
            plan.task,
            cache=cache if ranks.is_main else None,
            overwrite_strategy="always" if ranks.parallel else plan.overwrite_strategy,
            encode_kwargs={"batch_size": batch_size},
            co2_tracker=False,
            raise_error=True,
            show_progress_bar=False,
        )
        for task_result in result.task_results:
            scores[task_result.task_name] = float(task_result.get_score())
    return scores


def embedding_cache_for(
    root: str | os.PathLike, parts: dict[str, Any], packing: bool | None, ranks: Ranks | None = None
) -> EmbeddingCache:
    """The embedding cache folder of the model ``parts`` describes (see :func:`evaluation_fingerprint`).

    The batching path is part of the key: packed and padded batches agree only up to rounding.
    """
    ranks = ranks or Ranks.current()
    keyed = {**parts, "batching": "default" if packing is None else ("packed" if packing else "padded")}
    return EmbeddingCache(Path(root) / embedding_fingerprint(keyed), keyed, writer=f"rank{ranks.rank}")
