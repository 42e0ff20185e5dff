"""Users' own query/positive(/negative) pairs in JSONL files."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from llm2vec.dataset.jsonl_reader import DatasetError, DatasetNotFoundError, iter_jsonl
from llm2vec.dataset.task_chunked import TaskChunkedDataset, TaskSamples, chunk_size_for

logger = logging.getLogger(__name__)

PathInput = str | os.PathLike[str]


def resolve_jsonl_paths(paths: PathInput | Sequence[PathInput]) -> list[Path]:
    """Expand files and directories (their ``*.jsonl``, sorted by name) into a file list.

    Raises:
        DatasetNotFoundError: if a path does not exist.
        DatasetError: if nothing is given, a directory has no ``*.jsonl`` file, or a file is
            listed twice (it would silently double its weight in the mixture).
    """
    given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not given:
        raise DatasetError("No JSONL path given")
    resolved: list[Path] = []
    for entry in given:
        path = Path(entry)
        if path.is_dir():
            found = sorted(p for p in path.glob("*.jsonl") if p.is_file())
            if not found:
                raise DatasetError(f"Directory {path} contains no *.jsonl file")
            resolved.extend(found)
        elif path.is_file():
            resolved.append(path)
        else:
            raise DatasetNotFoundError(f"JSONL training data not found: {path} does not exist")
    seen: dict[Path, Path] = {}
    for path in resolved:
        key = path.resolve()
        if key in seen:
            raise DatasetError(f"JSONL file listed twice: {seen[key]} and {path}")
        seen[key] = path
    return resolved


def _task_names(paths: Sequence[Path]) -> list[str]:
    """Name each task by its file stem, or by its path where stems collide."""
    stems = [path.stem for path in paths]
    return [stem if stems.count(stem) == 1 else str(path) for stem, path in zip(stems, paths)]


class JsonlPairsDataset(TaskChunkedDataset):
    """Query/document pairs from JSONL files, in task-homogeneous chunks; one file = one task.

    Each non-blank line is an object with ``query`` and ``positive`` (non-empty strings), an
    optional ``negative`` and an optional ``instruction``. The query becomes
    ``f"{instruction}; " + SEPARATOR + query`` when an instruction applies (the line's own, else
    ``default_instruction``) and ``SEPARATOR + query`` otherwise; documents get only the
    separator. Chunking and shuffling are those of ``E5Dataset``.

    Args:
        paths: a JSONL file, a directory (its ``*.jsonl`` files, sorted by name), or a sequence
            of either.
        per_device_batch_size: samples per micro-batch on one device.
        world_size: number of data-parallel processes.
        seed: run seed; the same seed gives the same order.
        default_instruction: instruction for lines without an ``instruction`` key.
        require_negatives: make a line without ``negative`` an error (Stage II).

    Raises:
        DatasetNotFoundError: if a path does not exist.
        DatasetError: on a malformed line (naming file, line and key) or if no chunk can be
            formed.
    """

    def __init__(
        self,
        paths: PathInput | Sequence[PathInput],
        per_device_batch_size: int,
        world_size: int = 1,
        seed: int = 42,
        default_instruction: str | None = None,
        require_negatives: bool = False,
    ) -> None:
        chunk_size = chunk_size_for(per_device_batch_size, world_size)
        if default_instruction is not None and (
            not isinstance(default_instruction, str) or not default_instruction.strip()
        ):
            raise DatasetError(
                "default_instruction must be a non-empty string or None, "
                f"got {default_instruction!r}"
            )
        self.paths = resolve_jsonl_paths(paths)
        tasks = [
            self._read_file(path, name, default_instruction, require_negatives)
            for path, name in zip(self.paths, _task_names(self.paths))
        ]
        super().__init__(tasks, chunk_size, seed)

    @staticmethod
    def _read_file(
        path: Path, name: str, default_instruction: str | None, require_negatives: bool
    ) -> TaskSamples:
        task = TaskSamples(name)
        logger.info("Reading %s", path)
        for line in iter_jsonl(path):
            query, positive, negative = line.pair_texts(require_negatives)
            instruction = line.optional_text("instruction")
            task.append(query, positive, negative, instruction or default_instruction)
        return task
