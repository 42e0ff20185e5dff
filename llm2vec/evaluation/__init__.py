"""MTEB evaluation: an mteb 2.x encoder over LLM2Vec, the paper's task lists and instructions,
local JSONL tasks, and the pieces of ``experiments/mteb_eval_custom.py``.

Modules:
    task_lists     ``MTEB56`` / ``SUBSET15``, ``resolve_task_names``, MTEB v1 English splits/subsets
    instructions   Table 13 instructions (packaged: ``data/task_to_instructions.json``)
    mteb_encoder   ``LLM2VecMTEBEncoder`` (instruction for queries / symmetric tasks, none for documents)
    local_tasks    mteb tasks read from local JSONL files (STS, retrieval, reranking, classification,
                   clustering, pair classification)
    anchor_probe   ``probe_anchors``: does a Stage I model's reconstruction use its anchor (own vs
                   another pair's anchors)
    runner         task planning (skip finished tasks), model loading, ``mteb.evaluate`` calls,
                   ``OutputFolderCache`` (results in ``<output_dir>/<model>/<revision>/<task>.json``)

Names are imported lazily, so ``import llm2vec.evaluation`` does not import mteb.
See docs/evaluation.md.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "MTEB56": "task_lists",
    "SUBSET15": "task_lists",
    "CQADUPSTACK_SUBSETS": "task_lists",
    "resolve_task_names": "task_lists",
    "build_mteb_task": "task_lists",
    "build_mteb_tasks": "task_lists",
    "load_task_instructions": "instructions",
    "MissingInstructionError": "instructions",
    "LLM2VecMTEBEncoder": "mteb_encoder",
    "build_model_meta": "mteb_encoder",
    "LocalTaskSpec": "local_tasks",
    "load_local_tasks": "local_tasks",
    "load_local_task_specs": "local_tasks",
    "make_local_task": "local_tasks",
    "OutputFolderCache": "runner",
    "AnchorProbe": "anchor_probe",
    "probe_anchors": "anchor_probe",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
