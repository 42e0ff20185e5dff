"""The paper's published numbers, shipped as JSON package data in ``data/paper_results/``.

Each file holds one table of the paper (Su et al. 2025): a ``source`` ("Table 14, Su et al.
2025"), a ``results`` mapping ``{model/variant key: {task or category: score}}`` and notes on OCR
corrections and on inconsistencies inside the paper. Keys name the base model and the variant,
e.g. ``llama3.2-1b-anchor``, ``qwen2.5-1.5b-baseline``, ``llama3.2-1b-onlyq2d``.

- Table 1 / 2 / 3: category scores (``Retrieval`` ... ``Summarization``, ``Average``).
- Tables 14 / 15: per-task scores of the 56 tasks (``CQADupstackRetrieval`` counted once).
- Tables 4 / 5 / 9 / 10: 15-task subset scores (Table 9 per Stage II step, the data of Figure 2).

:func:`paper_reference` gathers what the paper reports for one key (per-task scores when Tables
14-15 have them, category scores from Tables 1-3) for the comparison columns of
:mod:`llm2vec.reporting.tables`. The files are read with ``importlib.resources``; another folder
can be given per call or with ``$LLM2VEC_PAPER_RESULTS``. See docs/evaluation.md.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "PAPER_RESULTS_DIR",
    "CATEGORY_TABLES",
    "PER_TASK_TABLES",
    "PaperTable",
    "PaperReference",
    "paper_results_dir",
    "list_tables",
    "load_table",
    "available_references",
    "paper_reference",
    "early_stage_scores",
]

#: the packaged folder of the JSON files (a ``Traversable``; ``LLM2VEC_PAPER_RESULTS`` overrides it)
PAPER_RESULTS_DIR: Traversable = resources.files("llm2vec.reporting") / "data" / "paper_results"

#: tables with category scores, in the order they are consulted
CATEGORY_TABLES: tuple[str, ...] = ("table1_main", "table3_objective_ablation", "table2_comparison")
#: tables with per-task scores
PER_TASK_TABLES: tuple[str, ...] = ("table14_per_task", "table15_per_task")


def paper_results_dir(directory: str | os.PathLike | None = None) -> Traversable:
    """``directory``, else ``$LLM2VEC_PAPER_RESULTS``, else the packaged :data:`PAPER_RESULTS_DIR`."""
    if directory is not None:
        return Path(directory)
    env = os.environ.get("LLM2VEC_PAPER_RESULTS")
    return Path(env) if env else PAPER_RESULTS_DIR


@dataclass(frozen=True)
class PaperTable:
    """One table of the paper: ``results[key][column] = score`` plus its metadata."""

    name: str
    source: str
    results: dict[str, dict[str, Any]]
    meta: dict[str, Any] = field(default_factory=dict)

    def keys(self) -> list[str]:
        return list(self.results)


@dataclass(frozen=True)
class PaperReference:
    """What the paper reports for one model/variant.

    ``per_task`` maps the 56 paper tasks to scores (None if the paper has no per-task table for
    it), ``categories`` maps category names and ``Average`` to the published category scores.
    """

    key: str
    per_task: dict[str, float] | None
    categories: dict[str, float] | None
    sources: tuple[str, ...]
    reported_average: float | None = None

    @property
    def label(self) -> str:
        return f"Paper ({self.key})"


def _json_files(directory: Traversable) -> list[Traversable]:
    if not directory.is_dir():
        return []
    return sorted((f for f in directory.iterdir() if f.name.endswith(".json") and f.is_file()), key=lambda f: f.name)


def _resolve_name(name: str, directory: Traversable) -> Traversable:
    names = [f.name for f in _json_files(directory)]
    prefixed = [n for n in names if n.startswith(f"{name}_")]  # "table14" -> table14_per_task.json
    for candidate in (name, f"{name}.json", *prefixed):
        file = directory / candidate
        if file.is_file():
            return file
    available = ", ".join(n.removesuffix(".json") for n in names) or "none"
    raise FileNotFoundError(f"no paper table '{name}' in {directory}; available: {available}")


def list_tables(directory: str | os.PathLike | None = None) -> list[str]:
    """The table names (file stems) present in the paper results folder."""
    return [f.name.removesuffix(".json") for f in _json_files(paper_results_dir(directory))]


# Keyed on the text, so an edited file is parsed again; reading the small files each time is cheap
# and works for packaged data that is not on the file system.
@lru_cache(maxsize=64)
def _parse_table(path: str, name: str, text: str) -> PaperTable:
    data = json.loads(text)
    if not isinstance(data, dict) or "source" not in data:
        raise ValueError(f"{path}: a paper table needs a 'source' key")
    results = data.pop("results", {})  # Table 8 lists tasks only (its "categories")
    if not isinstance(results, dict) or not all(isinstance(v, dict) for v in results.values()):
        raise ValueError(f"{path}: 'results' must map keys to {{column: score}} objects")
    return PaperTable(name=name, source=str(data.pop("source")), results=results, meta=data)


def load_table(name: str, directory: str | os.PathLike | None = None) -> PaperTable:
    """Load a table by file stem (``table14_per_task``) or prefix (``table14``)."""
    file = _resolve_name(name, paper_results_dir(directory))
    return _parse_table(str(file), file.name.removesuffix(".json"), file.read_text(encoding="utf-8"))


def available_references(directory: str | os.PathLike | None = None) -> list[str]:
    """Every key that has per-task or category scores (usable as ``--paper``)."""
    keys: set[str] = set()
    for name in (*PER_TASK_TABLES, *CATEGORY_TABLES):
        try:
            keys.update(load_table(name, directory).results)
        except FileNotFoundError:
            continue
    return sorted(keys)


def paper_reference(key: str, directory: str | os.PathLike | None = None) -> PaperReference:
    """Per-task (Tables 14-15) and category (Tables 1, 3, 2) scores the paper gives for ``key``.

    Raises:
        KeyError: no table has ``key``; the message lists the available keys.
    """
    per_task: dict[str, float] | None = None
    categories: dict[str, float] | None = None
    reported_average: float | None = None
    sources: list[str] = []
    for name in PER_TASK_TABLES:
        try:
            table = load_table(name, directory)
        except FileNotFoundError:
            continue
        if key in table.results:
            per_task = {task: float(score) for task, score in table.results[key].items()}
            reported_average = table.meta.get("reported_average", {}).get(key)
            sources.append(table.source)
            break
    for name in CATEGORY_TABLES:
        try:
            table = load_table(name, directory)
        except FileNotFoundError:
            continue
        if key in table.results:
            categories = {column: float(score) for column, score in table.results[key].items()}
            sources.append(table.source)
            break
    if per_task is None and categories is None:
        raise KeyError(
            f"the paper has no results for '{key}'; available: {', '.join(available_references(directory))}"
        )
    if reported_average is None and categories is not None:
        reported_average = categories.get("Average")
    return PaperReference(key, per_task, categories, tuple(sources), reported_average)


def early_stage_scores(key: str, directory: str | os.PathLike | None = None) -> tuple[list[int], list[float]]:
    """Table 9 (Figure 2): Stage II steps and 15-task subset scores for ``key``.

    Raises:
        KeyError: Table 9 has no row ``key``.
    """
    table = load_table("table9_early_stage", directory)
    if key not in table.results:
        raise KeyError(f"Table 9 has no row '{key}'; available: {', '.join(table.results)}")
    row = table.results[key]
    steps = sorted(int(step) for step in row)
    return steps, [float(row[str(step)]) for step in steps]
