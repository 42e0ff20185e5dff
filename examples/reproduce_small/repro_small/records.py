"""The in-memory form of the suite before it is written: evaluation tasks and training files.

An :class:`EvalTask` holds its local-task spec (docs/evaluation.md, "Local tasks"), its data
files as rows, the corpus it comes from (which decides in-domain or out-of-domain) and the texts
an encoder embeds for it, split into texts that get the task's instruction (queries, texts to
classify or cluster, STS and pair sentences) and texts that do not (retrieval documents,
reranking candidates). The suite counts distinct ``(instruction, text)`` pairs from these, as the
demo's caching encoder embeds them. A :class:`TrainFile` is one ``train/<name>.jsonl`` file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from repro_small.demo_parts import DemoDataError

__all__ = ["EvalTask", "SuiteDataError", "TrainFile", "retrieval_task", "task_spec"]


class SuiteDataError(DemoDataError):
    """A source is malformed, or too small for the requested task sizes (the message says which)."""


@dataclass
class EvalTask:
    """One local evaluation task and its data, ready to be written under ``eval/``."""

    name: str
    corpus: str
    """source corpus family (``bbc``, ``lee``, ``newsgroups``, ``rotten_tomatoes``)"""
    spec: dict[str, Any]
    files: dict[str, list[dict[str, Any]]]
    """data file path relative to ``eval/`` -> its JSONL rows"""
    scored_items: int
    """queries, test texts, texts clustered or pairs: what one point of the main score is spread over"""
    instructed_texts: list[str] = field(default_factory=list)
    plain_texts: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return str(self.spec["type"])

    @property
    def instruction(self) -> str:
        return str(self.spec.get("instruction", ""))

    def texts(self) -> list[str]:
        """Every text of the task (with and without instruction)."""
        return self.instructed_texts + self.plain_texts


@dataclass
class TrainFile:
    """One training file: rows with ``query``, ``positive``, ``negative``, ``instruction``."""

    name: str
    corpus: str
    rows: list[dict[str, str]]

    def texts(self) -> list[str]:
        return [row[key] for row in self.rows for key in ("query", "positive", "negative")]


def task_spec(
    name: str, task_type: str, path: str, instruction: str, description: str, **options: Any
) -> dict[str, Any]:
    """A local task spec with the keys in a fixed order (so the written JSON is stable)."""
    spec = {"name": name, "type": task_type, "path": path, "instruction": instruction, "description": description}
    return {**spec, **options}


def retrieval_task(
    name: str, corpus: str, folder: str, instruction: str, description: str, queries: list[dict[str, Any]],
    documents: list[dict[str, Any]], qrels: list[dict[str, Any]], notes: dict[str, Any],
) -> EvalTask:
    """A retrieval task in ``eval/<folder>/``: queries get the instruction, documents do not."""
    files = {f"{folder}/queries.jsonl": queries, f"{folder}/corpus.jsonl": documents, f"{folder}/qrels.jsonl": qrels}
    return EvalTask(
        name, corpus, task_spec(name, "Retrieval", folder, instruction, description), files, len(queries),
        instructed_texts=[q["text"] for q in queries], plain_texts=[d["text"] for d in documents], notes=notes,
    )
