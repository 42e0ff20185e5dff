"""What MTEB56 asks an encoder to embed, from the descriptive statistics mteb ships.

mteb 2.x carries, for every task, the number of texts and their minimum, mean and maximum length
in characters per split and text group (``mteb/descriptive_stats/<type>/<task>.json``: documents
and queries of retrieval and reranking, the texts of classification and clustering, both sides of
STS and pair classification, the summaries of SummEval). This module reads them for the paper's
tasks (English subsets of multilingual ones, the task's first evaluation split) so that the
encode benchmark draws realistic lengths and docs/evaluation.md can project the cost of a run.

What it does not count: classification tasks also embed a small training sample (mteb's
undersampled ``n_experiments`` x ``samples_per_label`` texts), and texts repeated within a task
are counted each time (mteb embeds them each time; the embedding cache does not).
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from llm2vec.evaluation.task_lists import resolve_task_names

#: subsets evaluated for multilingual tasks (as in the paper's English tables)
ENGLISH_SUBSETS = ("en", "en-en")
#: spread assumed for lengths within a group (lognormal sigma); the statistics give min/mean/max only
DEFAULT_SIGMA = 0.8


@dataclass(frozen=True)
class TextGroup:
    """One group of texts of one task: how many, and how long in characters."""

    task: str
    task_type: str
    group: str
    count: int
    min_chars: int
    mean_chars: float
    max_chars: int
    unique: int  # distinct texts (what an embedding cache computes)

    @property
    def characters(self) -> float:
        return self.count * self.mean_chars


def _stats_file(task_type: str, task: str) -> Any:
    return resources.files("mteb") / "descriptive_stats" / task_type / f"{task}.json"


def _groups_of(statistics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    groups = {}
    for key, value in statistics.items():
        if isinstance(value, dict) and "average_text_length" in value:
            groups[key.removesuffix("_statistics")] = value
    return groups


def task_text_groups(task: str) -> list[TextGroup]:
    """The text groups of one mteb task (first evaluation split; English subsets if multilingual)."""
    import mteb

    metadata = mteb.get_task(task).metadata
    path = _stats_file(metadata.type, task)
    if not path.is_file():
        raise FileNotFoundError(f"mteb ships no descriptive statistics for {task} ({path})")
    split = metadata.eval_splits[-1] if "test" in metadata.eval_splits else metadata.eval_splits[0]
    statistics = json.loads(path.read_text(encoding="utf-8"))[split]
    per_subset = statistics.get("hf_subset_descriptive_stats")
    parts = [per_subset[s] for s in ENGLISH_SUBSETS if per_subset and s in per_subset] or [statistics]
    groups: list[TextGroup] = []
    for part in parts:
        for name, values in _groups_of(part).items():
            count = int(round(values["total_text_length"] / values["average_text_length"])) if values["average_text_length"] else 0
            if count:
                groups.append(TextGroup(
                    task, metadata.type, name.removesuffix("_text"), count, int(values["min_text_length"]),
                    float(values["average_text_length"]), int(values["max_text_length"]),
                    int(values.get("unique_texts") or count),
                ))
    return groups


def mteb56_text_groups(tasks: str | Sequence[str] = "mteb56") -> list[TextGroup]:
    """The text groups of every task of ``tasks`` (a task list name or names)."""
    names = resolve_task_names(tasks)
    return [group for name in names for group in task_text_groups(name)]


def sample_lengths(
    groups: Sequence[TextGroup], n: int, seed: int = 0, sigma: float = DEFAULT_SIGMA
) -> list[tuple[TextGroup, int]]:
    """``n`` (group, length in characters) draws: a group in proportion to its number of texts,
    then a lognormal length with the group's mean, clipped to its minimum and maximum."""
    rng = random.Random(seed)
    weights = [g.count for g in groups]
    drawn = []
    for group in rng.choices(list(groups), weights=weights, k=n):
        mu = math.log(max(group.mean_chars, 1.0)) - sigma * sigma / 2
        length = int(round(rng.lognormvariate(mu, sigma)))
        drawn.append((group, min(group.max_chars, max(group.min_chars, length))))
    return drawn
