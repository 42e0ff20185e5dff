"""MTEB result tables in the paper's layouts, with the paper's numbers beside the user's.

Two Markdown layouts: categories (Table 1: the seven categories and the 56-task average, one row
per results folder, then the paper's row and one difference row per folder) and tasks (Tables
14-15: one row per task, one column per results folder, the paper's column and the differences).
Tasks and categories come from :mod:`llm2vec.evaluation.task_lists` (``MTEB56``); CQADupstack is
folded into one retrieval task. Nothing incomplete is averaged as if complete: a category with
missing tasks shows its mean over the tasks present with a count, ``45.10 (3/4)``. Tasks outside
MTEB56 (e.g. local tasks) go to an ``Other`` section. Details: docs/evaluation.md, "Tables".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from llm2vec.reporting.paper_results import PaperReference
from llm2vec.evaluation.task_lists import CATEGORIES, CQADUPSTACK_AGGREGATE, CQADUPSTACK_SUBSETS, MTEB56, SUBSET15

__all__ = [
    "CATEGORY_ABBREVIATIONS",
    "OTHER",
    "PAPER_TASKS",
    "SUBSET15_TASKS",
    "CategoryScore",
    "Summary",
    "RunScores",
    "category_of",
    "normalize_scores",
    "summarize",
    "category_table",
    "task_table",
    "make_report",
]

OTHER = "Other"

#: the column headers of Table 1
CATEGORY_ABBREVIATIONS: dict[str, str] = {
    "Retrieval": "Retr.",
    "Reranking": "Rerank.",
    "Clustering": "Clust.",
    "PairClassification": "PairClass.",
    "Classification": "Class.",
    "STS": "STS",
    "Summarization": "Summ.",
}

#: the 56 tasks as the paper counts them (CQADupstack once) -> category
PAPER_TASKS: dict[str, str] = {}
for _name, _category in MTEB56.items():
    PAPER_TASKS[CQADUPSTACK_AGGREGATE if _name in CQADUPSTACK_SUBSETS else _name] = _category
#: the 15-task ablation subset of Table 8
SUBSET15_TASKS: tuple[str, ...] = tuple(SUBSET15)

_CATEGORY_TASKS: dict[str, list[str]] = {c: sorted(t for t, k in PAPER_TASKS.items() if k == c) for c in CATEGORIES}
_DASH = "—"


def category_of(task: str) -> str:
    """The category of a paper task or CQADupstack forum, else ``Other``."""
    if task in CQADUPSTACK_SUBSETS:
        return "Retrieval"
    return PAPER_TASKS.get(task, OTHER)


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values)


def normalize_scores(scores: Mapping[str, float]) -> tuple[dict[str, float], list[str]]:
    """Fold the twelve CQADupstack forums into ``CQADupstackRetrieval``; return notes on it.

    The aggregate file (if mteb evaluated ``CQADupstackRetrieval`` itself) wins over the forums;
    with some forums missing and no aggregate, CQADupstack is left out (reported missing).
    """
    result = {task: float(score) for task, score in scores.items() if task not in CQADUPSTACK_SUBSETS}
    forums = {task: float(scores[task]) for task in CQADUPSTACK_SUBSETS if task in scores}
    notes: list[str] = []
    if not forums:
        return result, notes
    if CQADUPSTACK_AGGREGATE in result:
        mean = _mean(forums.values())
        if len(forums) == len(CQADUPSTACK_SUBSETS) and abs(mean - result[CQADUPSTACK_AGGREGATE]) > 0.01:
            notes.append(
                f"{CQADUPSTACK_AGGREGATE}: the aggregate file ({result[CQADUPSTACK_AGGREGATE]:.2f}) differs from "
                f"the mean of the 12 forums ({mean:.2f}); the aggregate is used"
            )
        return result, notes
    if len(forums) == len(CQADUPSTACK_SUBSETS):
        result[CQADUPSTACK_AGGREGATE] = _mean(forums.values())
    else:
        missing = [t for t in CQADUPSTACK_SUBSETS if t not in forums]
        notes.append(
            f"{CQADUPSTACK_AGGREGATE}: only {len(forums)}/12 forums present (missing: {', '.join(missing)}); "
            "not counted"
        )
    return result, notes


@dataclass
class CategoryScore:
    """A category's mean over the tasks present, and which tasks are missing."""

    name: str
    tasks: list[str]
    present: dict[str, float]

    @property
    def missing(self) -> list[str]:
        return [t for t in self.tasks if t not in self.present]

    @property
    def complete(self) -> bool:
        return not self.missing and bool(self.tasks)

    @property
    def mean(self) -> float | None:
        return _mean(self.present.values()) if self.present else None

    @property
    def count(self) -> str:
        return f"{len(self.present)}/{len(self.tasks)}"


@dataclass
class Summary:
    """Category means, the 56-task average (None unless complete) and the ``Other`` tasks."""

    scores: dict[str, float]
    categories: dict[str, CategoryScore]
    other: dict[str, float]
    notes: list[str] = field(default_factory=list)

    @property
    def n_present(self) -> int:
        return sum(len(c.present) for c in self.categories.values())

    @property
    def missing(self) -> list[str]:
        return [t for c in self.categories.values() for t in c.missing]

    @property
    def average(self) -> float | None:
        """The mean of the 56 tasks, only when all are present."""
        if self.missing:
            return None
        return _mean(s for c in self.categories.values() for s in c.present.values())

    @property
    def other_average(self) -> float | None:
        return _mean(self.other.values()) if self.other else None

    @property
    def has_mteb(self) -> bool:
        return self.n_present > 0

    def subset15_average(self) -> float | None:
        """The Table 8 subset mean, only when all 15 tasks are present."""
        if not all(t in self.scores for t in SUBSET15_TASKS):
            return None
        return _mean(self.scores[t] for t in SUBSET15_TASKS)


def summarize(scores: Mapping[str, float]) -> Summary:
    """Group ``{task: score}`` (mteb names, scores x 100) into the paper's categories."""
    normalized, notes = normalize_scores(scores)
    categories = {
        c: CategoryScore(c, list(tasks), {t: normalized[t] for t in tasks if t in normalized})
        for c, tasks in _CATEGORY_TASKS.items()
    }
    other = {t: s for t, s in sorted(normalized.items()) if t not in PAPER_TASKS}
    return Summary(normalized, categories, other, notes)


@dataclass
class RunScores:
    """A named set of scores (one results folder)."""

    name: str
    scores: dict[str, float]
    skipped: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- cells
def _fmt(value: float | None, digits: int, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _DASH
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _category_cell(category: CategoryScore, digits: int) -> str:
    if not category.present:
        return f"{_DASH} (0/{len(category.tasks)})"
    text = _fmt(category.mean, digits)
    return text if category.complete else f"{text} ({category.count})"


def _average_cell(summary: Summary, digits: int) -> str:
    average = summary.average
    if average is not None:
        return _fmt(average, digits)
    return f"{_DASH} ({summary.n_present}/{len(PAPER_TASKS)})"


def _category_delta(category: CategoryScore, paper: PaperReference | None, digits: int) -> str:
    if paper is None or not category.present:
        return _DASH
    if category.complete and paper.categories and category.name in paper.categories:
        return _fmt(category.mean - paper.categories[category.name], digits, signed=True)  # type: ignore[operator]
    if paper.per_task and all(t in paper.per_task for t in category.present):
        reference = _mean(paper.per_task[t] for t in category.present)
        text = _fmt(category.mean - reference, digits, signed=True)  # type: ignore[operator]
        return text if category.complete else f"{text} ({category.count})"
    return _DASH


def _paper_average(paper: PaperReference) -> float | None:
    if paper.categories and "Average" in paper.categories:
        return paper.categories["Average"]
    return paper.reported_average


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], align_left: int = 1) -> str:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        padded = [c.ljust(w) if i < align_left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "| " + " | ".join(padded) + " |"

    separator = "|" + "|".join(
        (":" + "-" * (w + 1)) if i < align_left else ("-" * (w + 1) + ":") for i, w in enumerate(widths)
    ) + "|"
    return "\n".join([line(header), separator, *(line(r) for r in rows)])


# --------------------------------------------------------------------------------------------- tables
def category_table(
    runs: Sequence[RunScores], paper: PaperReference | None = None, digits: int = 2
) -> str:
    """Table 1's layout: categories and the 56-task average, runs then the paper and differences."""
    summaries = [(run, summarize(run.scores)) for run in runs]
    header = ["Model", *(f"{CATEGORY_ABBREVIATIONS[c]} ({len(_CATEGORY_TASKS[c])})" for c in CATEGORIES),
              f"Avg ({len(PAPER_TASKS)})"]
    rows: list[list[str]] = []
    for run, summary in summaries:
        rows.append([run.name, *(_category_cell(summary.categories[c], digits) for c in CATEGORIES),
                     _average_cell(summary, digits)])
    if paper is not None:
        if paper.categories:
            paper_cells = [_fmt(paper.categories.get(c), digits) for c in CATEGORIES]
        elif paper.per_task:
            paper_cells = [_fmt(_mean(paper.per_task[t] for t in _CATEGORY_TASKS[c]), digits) for c in CATEGORIES]
        else:
            paper_cells = [_DASH] * len(CATEGORIES)
        rows.append([paper.label, *paper_cells, _fmt(_paper_average(paper), digits)])
        for run, summary in summaries:
            average = summary.average
            paper_average = _paper_average(paper)
            delta_average = (
                _fmt(average - paper_average, digits, signed=True)
                if average is not None and paper_average is not None
                else _DASH
            )
            rows.append([f"Δ {run.name} − paper",
                         *(_category_delta(summary.categories[c], paper, digits) for c in CATEGORIES),
                         delta_average])
    return _table(header, rows)


def task_table(runs: Sequence[RunScores], paper: PaperReference | None = None, digits: int = 2) -> str:
    """Tables 14-15's layout: the 56 tasks sorted by name, runs, the paper and differences."""
    summaries = [(run, summarize(run.scores)) for run in runs]
    with_paper = paper is not None and paper.per_task is not None
    header = ["Task", "Category", *(run.name for run in runs)]
    if with_paper:
        header += [paper.label, *(f"Δ {run.name}" for run in runs)]  # type: ignore[union-attr]
    rows: list[list[str]] = []
    for task in sorted(PAPER_TASKS):
        row = [task, PAPER_TASKS[task]]
        values = [summary.scores.get(task) for _, summary in summaries]
        row += [_fmt(v, digits) for v in values]
        if with_paper:
            reference = paper.per_task.get(task)  # type: ignore[union-attr]
            row.append(_fmt(reference, digits))
            row += [
                _fmt(v - reference, digits, signed=True) if v is not None and reference is not None else _DASH
                for v in values
            ]
        rows.append(row)
    average_row = ["Average", f"{len(PAPER_TASKS)} tasks", *(_average_cell(s, digits) for _, s in summaries)]
    if with_paper:
        paper_average = paper.reported_average  # type: ignore[union-attr]
        average_row.append(_fmt(paper_average, digits))
        average_row += [
            _fmt(s.average - paper_average, digits, signed=True)
            if s.average is not None and paper_average is not None
            else _DASH
            for _, s in summaries
        ]
    rows.append(average_row)
    return _table(header, rows, align_left=2)


def _other_table(summaries: Sequence[tuple[RunScores, Summary]], digits: int) -> str | None:
    tasks = sorted({t for _, s in summaries for t in s.other})
    if not tasks:
        return None
    header = ["Task", *(run.name for run, _ in summaries)]
    rows = [[t, *(_fmt(s.other.get(t), digits) for _, s in summaries)] for t in tasks]
    averages = []
    for _, s in summaries:
        present = [t for t in tasks if t in s.other]
        cell = _fmt(s.other_average, digits)
        averages.append(cell if len(present) == len(tasks) else f"{cell} ({len(present)}/{len(tasks)})")
    rows.append([f"Average ({len(tasks)})", *averages])
    return _table(header, rows)


def _missing_lines(run: RunScores, summary: Summary) -> list[str]:
    lines: list[str] = []
    if summary.missing and summary.has_mteb:
        by_category = [
            f"{c}: {', '.join(summary.categories[c].missing)}" for c in CATEGORIES if summary.categories[c].missing
        ]
        lines.append(
            f"- **{run.name}**: {len(summary.missing)} of {len(PAPER_TASKS)} MTEB tasks missing — "
            + "; ".join(by_category)
        )
    for note in summary.notes:
        lines.append(f"- **{run.name}**: {note}")
    for file, reason in run.skipped.items():
        lines.append(f"- **{run.name}**: skipped `{file}`: {reason}")
    return lines


def make_report(
    runs: Sequence[RunScores],
    paper: PaperReference | None = None,
    layout: str = "both",
    digits: int = 2,
) -> str:
    """The Markdown report: the chosen layout(s), the Other tasks, missing tasks and notes.

    ``layout`` is ``categories``, ``tasks`` or ``both``.
    """
    if layout not in ("categories", "tasks", "both"):
        raise ValueError(f"layout must be 'categories', 'tasks' or 'both', got {layout!r}")
    summaries = [(run, summarize(run.scores)) for run in runs]
    any_mteb = any(s.has_mteb for _, s in summaries) or not runs
    parts: list[str] = []
    if any_mteb and layout in ("categories", "both"):
        parts.append("### MTEB categories (paper Table 1 layout)\n\n" + category_table(runs, paper, digits))
        subset_lines = []
        for run, s in summaries:
            value = s.subset15_average()
            if value is not None:
                subset_lines.append(f"{run.name} {value:.{digits}f}")
        if subset_lines:
            text = "15-task subset (Table 8) average: " + ", ".join(subset_lines)
            if paper is not None and paper.per_task is not None:
                text += f"; paper {_mean(paper.per_task[t] for t in SUBSET15_TASKS):.{digits}f}"
            parts.append(text)
    paper_has_tasks = paper is not None and paper.per_task is not None
    if any_mteb and layout in ("tasks", "both") and (runs or paper_has_tasks):
        title = "### MTEB tasks (paper Tables 14-15 layout)\n\n"
        parts.append(title + task_table(runs, paper, digits))
        if paper is not None and paper.per_task is None:
            parts.append(f"The paper has no per-task numbers for '{paper.key}' (only categories: {', '.join(paper.sources)}).")
    other = _other_table(summaries, digits)
    if other is not None:
        parts.append(f"### {OTHER} tasks (not in MTEB56)\n\n" + other)
    notes = [line for run, s in summaries for line in _missing_lines(run, s)]
    if notes:
        parts.append("Missing tasks and notes:\n\n" + "\n".join(notes))
    if paper is not None:
        parts.append("Paper numbers: " + "; ".join(paper.sources) + ".")
    return "\n\n".join(parts) + "\n"
