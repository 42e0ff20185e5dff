"""Plain sentences, one per line, each paired with itself: the data of unsupervised SimCSE.

llm2vec's SimCSE recipe trains on ``wiki1m_for_simcse.txt`` (a million Wikipedia sentences): the
query and the positive are the same sentence, and the two encodings differ only by dropout; the
other sentences of the batch are the negatives. Any UTF-8 text file of one sentence per line
works (``dataset_name: "text"``, or ``"Wiki1M"`` as in llm2vec's configs); a folder means its
``*.txt`` files, one task each.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from llm2vec.dataset.jsonl_reader import DatasetError, DatasetNotFoundError
from llm2vec.dataset.task_chunked import TaskChunkedDataset, TaskSamples, chunk_size_for

logger = logging.getLogger(__name__)


def resolve_text_paths(path: str | os.PathLike[str]) -> list[Path]:
    """A text file, or the ``*.txt`` files of a folder sorted by name.

    Raises:
        DatasetNotFoundError: ``path`` does not exist.
        DatasetError: a folder without ``*.txt`` files.
    """
    given = Path(path)
    if given.is_file():
        return [given]
    if given.is_dir():
        found = sorted(p for p in given.glob("*.txt") if p.is_file())
        if not found:
            raise DatasetError(f"Directory {given} contains no *.txt file")
        return found
    raise DatasetNotFoundError(f"text training data not found: {given} does not exist")


def iter_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, stripped line) of a UTF-8 file, blank lines included.

    Raises:
        DatasetError: a line that is not UTF-8, naming file and line.
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                yield number, raw.decode("utf-8").strip()
            except UnicodeDecodeError as error:
                raise DatasetError(f"{path}:{number}: not UTF-8 text ({error.reason}); convert the file to UTF-8") from error


def read_sentences(path: Path, name: str) -> TaskSamples:
    """The lines of ``path`` as (sentence, same sentence) samples; blank lines are counted and left out.

    Raises:
        DatasetError: a line that is not UTF-8 (naming file and line), or a file without a sentence.
    """
    task = TaskSamples(name)
    blank = 0
    for _, line in iter_text_lines(path):
        if not line:
            blank += 1
            continue
        task.append(line, line, None, None)
    if len(task) == 0:
        raise DatasetError(f"{path} holds no sentence (one per line)")
    if blank:
        logger.warning("%s: %d blank line(s) left out, %d sentences read", path, blank, len(task))
    return task


class TextLinesDataset(TaskChunkedDataset):
    """Each sentence of the text files as query and positive, in task-homogeneous chunks (one file = one task).

    Args:
        path: a text file or a folder of ``*.txt`` files.
        per_device_batch_size: samples per micro-batch on one device.
        world_size: number of data-parallel processes.
        seed: run seed; the same seed gives the same order.
    """

    def __init__(self, path: str | os.PathLike[str], per_device_batch_size: int, world_size: int = 1,
                 seed: int = 42) -> None:
        self.paths = resolve_text_paths(path)
        tasks = [read_sentences(p, p.stem) for p in self.paths]
        super().__init__(tasks, chunk_size_for(per_device_batch_size, world_size), seed)


def check_text_options(files: Sequence[str] | None, require_negatives: bool, default_instruction: str | None) -> None:
    """Refuse options that do not apply to sentence files (each would change the run silently)."""
    if require_negatives:
        raise DatasetError("sentence files have no hard negatives; this run needs a dataset with negatives (E5, jsonl)")
    if files is not None:
        raise DatasetError("dataset_files applies to E5 and jsonl; give the text file or folder as dataset_file_path")
    if default_instruction is not None:
        raise DatasetError("default_instruction applies only to the 'jsonl' dataset; SimCSE sentences have none")
