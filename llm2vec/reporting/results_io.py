"""Reading mteb result folders into ``{task name: main score x 100}``.

mteb 2.x writes ``<output>/<model_name>/<revision>/<TaskName>.json`` (plus ``model_meta.json`` and
``run_settings.jsonl``), each task file a serialized ``mteb.TaskResult`` with ``main_score`` per
split and subset. ``TaskResult.get_score`` would average over everything in the file; the paper's
numbers are MTEB v1 English, so this module picks one split and the English subsets first, as
``MTEB(eng, v1)`` does (``task_lists.EVAL_SETTINGS`` for MTEB56 tasks, fallbacks for other tasks),
and returns the mean ``main_score`` of those entries times 100. Files written by mteb before 1.11
are converted with ``mteb.TaskResult.from_disk``. The selection rules: docs/evaluation.md, "Tables".
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm2vec.evaluation.task_lists import CQADUPSTACK_AGGREGATE, EVAL_SETTINGS, MTEB56

__all__ = [
    "ENGLISH_SUBSETS",
    "NON_TASK_FILES",
    "TaskScore",
    "ResultsRun",
    "ResultsReadError",
    "required_split",
    "find_results_folder",
    "read_task_file",
    "load_run",
    "read_results_dir",
]

#: subset names of the English part of multilingual tasks in MTEB v1
ENGLISH_SUBSETS: tuple[str, ...] = ("en", "en-en")
#: JSON files of a results folder that are not task results
NON_TASK_FILES: frozenset[str] = frozenset({"model_meta.json", "fingerprint.json"})  # the latter: mteb_eval_custom's key record
_FALLBACK_SPLITS: tuple[str, ...] = ("test", "dev", "validation")


class ResultsReadError(ValueError):
    """A task file cannot give a score for the required split/subsets."""


@dataclass(frozen=True)
class TaskScore:
    """One task's score (0-100) and where it came from."""

    task: str
    score: float
    split: str
    subsets: tuple[str, ...]
    path: Path


@dataclass
class ResultsRun:
    """The scores of one results folder.

    ``scores`` maps task names (as written by mteb: CQADupstack as its twelve forums, or as
    ``CQADupstackRetrieval`` if that aggregate was evaluated) to scores x 100; ``skipped`` maps
    files or tasks that gave no score to the reason.
    """

    name: str
    path: Path
    scores: dict[str, float]
    details: dict[str, TaskScore] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)


def _is_mteb_task(task: str) -> bool:
    return task in MTEB56 or task == CQADUPSTACK_AGGREGATE


def required_split(task: str) -> str | None:
    """The MTEB v1 split of an MTEB56 task (``dev`` for MSMARCO, else ``test``); None for others."""
    if not _is_mteb_task(task):
        return None
    splits = EVAL_SETTINGS.get(task, {}).get("eval_splits")
    return splits[0] if splits else "test"


def _choose_split(task: str, available: list[str], split: str | None) -> str:
    wanted = split or required_split(task)
    if wanted is not None:
        if wanted not in available:
            raise ResultsReadError(f"{task}: no '{wanted}' split (found: {', '.join(available) or 'none'})")
        return wanted
    if len(available) == 1:
        return available[0]
    for name in _FALLBACK_SPLITS:
        if name in available:
            return name
    if not available:
        raise ResultsReadError(f"{task}: the file has no scores")
    return sorted(available)[0]


def _is_english(entry: Mapping[str, Any]) -> bool:
    languages = entry.get("languages") or []
    return bool(languages) and all(str(lang).split("-")[0] in ("eng", "en") for lang in languages)


def _choose_entries(task: str, entries: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    by_subset: dict[str, Mapping[str, Any]] = {}
    for entry in entries:
        by_subset[str(entry.get("hf_subset", "default"))] = entry
    wanted = EVAL_SETTINGS.get(task, {}).get("hf_subsets")
    if wanted:
        missing = [s for s in wanted if s not in by_subset]
        if missing:
            raise ResultsReadError(
                f"{task}: subset(s) {', '.join(missing)} missing (found: {', '.join(by_subset) or 'none'})"
            )
        return [by_subset[s] for s in wanted]
    english = [by_subset[s] for s in ENGLISH_SUBSETS if s in by_subset]
    if english:
        return english
    if "default" in by_subset:
        return [by_subset["default"]]
    if len(by_subset) == 1:
        return list(by_subset.values())
    chosen = [entry for entry in by_subset.values() if _is_english(entry)]
    if not chosen:
        raise ResultsReadError(f"{task}: no English subset among {', '.join(by_subset)}")
    return chosen


def _scores_from_legacy(path: Path) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """Convert a pre-1.11 mteb file with mteb itself (needs the task in mteb's registry)."""
    try:
        from mteb import TaskResult
    except ImportError as error:  # pragma: no cover - mteb is an eval dependency
        raise ResultsReadError(f"{path}: old mteb format and mteb is not installed") from error
    try:
        result = TaskResult.from_disk(path)
    except Exception as error:  # mteb raises many types for unknown tasks / formats
        raise ResultsReadError(f"{path}: cannot read this mteb result file ({error})") from error
    return result.task_name, {split: [dict(e) for e in entries] for split, entries in result.scores.items()}


def read_task_file(path: str | os.PathLike, split: str | Mapping[str, str] | None = None) -> TaskScore:
    """The score (x 100) of one mteb task file, on the MTEB v1 split and English subsets.

    ``split`` forces a split, for this file or (a mapping) per task name.

    Raises:
        ResultsReadError: the file is not a task result, or lacks the split/subsets.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ResultsReadError(f"{path}: not valid JSON ({error})") from error
    if not isinstance(data, dict):
        raise ResultsReadError(f"{path}: not an mteb task result")
    if "scores" in data and isinstance(data["scores"], dict):
        task = str(data.get("task_name") or path.stem)
        scores = data["scores"]
    elif "mteb_version" in data or "mteb_dataset_name" in data:
        task, scores = _scores_from_legacy(path)
    else:
        raise ResultsReadError(f"{path}: not an mteb task result (no 'scores')")
    if isinstance(split, Mapping):
        split = split.get(task)
    chosen_split = _choose_split(task, list(scores), split)
    entries = scores[chosen_split]
    if isinstance(entries, dict):  # {subset: {...}} as in TaskResult.from_task_results' input
        entries = [{"hf_subset": name, **value} for name, value in entries.items()]
    chosen = _choose_entries(task, list(entries))
    values = []
    for entry in chosen:
        value = entry.get("main_score")
        if value is None or not isinstance(value, (int, float)) or math.isnan(float(value)):
            raise ResultsReadError(
                f"{task}: no main_score for subset '{entry.get('hf_subset', 'default')}' of split '{chosen_split}'"
            )
        values.append(float(value))
    subsets = tuple(str(entry.get("hf_subset", "default")) for entry in chosen)
    return TaskScore(task, 100.0 * sum(values) / len(values), chosen_split, subsets, path)


def _task_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*.json") if p.name not in NON_TASK_FILES)


def find_results_folder(path: str | os.PathLike) -> Path:
    """The folder holding the task files: ``path`` itself, or its single ``model/revision`` below.

    Accepts the folder of the task files, a model folder (``<model>/<revision>/*.json``) or an
    mteb output root (``<root>/<model>/<revision>/*.json``).

    Raises:
        FileNotFoundError: ``path`` does not exist or holds no task files.
        ValueError: several result folders below ``path`` (pass one of them).
    """
    root = Path(path)
    if not root.exists():
        raise FileNotFoundError(f"results path {root} does not exist")
    if root.is_file():
        return root.parent
    if _task_files(root):
        return root
    candidates = sorted(
        {p.parent for pattern in ("*/*.json", "*/*/*.json") for p in root.glob(pattern) if p.name not in NON_TASK_FILES}
    )
    if not candidates:
        raise FileNotFoundError(f"no mteb task results (*.json) in {root} or its <model>/<revision> subfolders")
    if len(candidates) > 1:
        listing = "\n  ".join(str(c) for c in candidates)
        raise ValueError(f"{root} holds several result folders; pass one of them:\n  {listing}")
    return candidates[0]


_REVISION = re.compile(r"[0-9a-f]{7,40}|no_revision_available|external|main")


def _default_name(folder: Path) -> str:
    """The model name of an mteb ``<model>/<revision>`` folder (mteb writes ``/`` as ``__``)."""
    model = folder.parent.name if _REVISION.fullmatch(folder.name) and folder.parent.name else folder.name
    name = model.replace("__", "/")
    # A hub revision names a version of the model; mteb_eval_custom's fingerprint is not news to a reader.
    if folder.name != "no_revision_available" and _REVISION.fullmatch(folder.name) and not (folder / "fingerprint.json").is_file():
        name += f"@{folder.name[:8]}"
    return name


def load_run(
    path: str | os.PathLike, name: str | None = None, splits: Mapping[str, str] | None = None
) -> ResultsRun:
    """Read every task file of a results folder (see :func:`find_results_folder`).

    ``splits`` overrides the split of some tasks. Files that give no score are listed in
    ``skipped`` with the reason instead of raising, so one bad file does not hide the others.
    """
    root = Path(path)
    folder = find_results_folder(root)
    files = [root] if root.is_file() else _task_files(folder)
    run = ResultsRun(name=name or _default_name(folder), path=folder, scores={})
    for file in files:
        try:
            score = read_task_file(file, split=splits)
        except ResultsReadError as error:
            run.skipped[file.name] = str(error)
            continue
        if score.task in run.scores:
            run.skipped[file.name] = f"{score.task}: duplicate of {run.details[score.task].path.name}"
            continue
        run.scores[score.task] = score.score
        run.details[score.task] = score
    return run


def read_results_dir(path: str | os.PathLike, splits: Mapping[str, str] | None = None) -> dict[str, float]:
    """``{task name: main score x 100}`` of an mteb results folder (see :func:`load_run`)."""
    return load_run(path, splits=splits).scores
