"""The public E5 training mixture as curated by echo-embeddings."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from llm2vec.dataset.jsonl_reader import DatasetError, DatasetNotFoundError, iter_jsonl
from llm2vec.dataset.task_chunked import TaskChunkedDataset, TaskSamples, chunk_size_for

logger = logging.getLogger(__name__)

E5_DOWNLOAD_URL = "https://github.com/jakespringer/echo-embeddings#training"
"""Where the echo-embeddings authors distribute the zip of the E5 mixture."""

E5_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "allnli": (
        "Given a premise, retrieve a hypothesis that is entailed by the premise",
        "Retrieve semantically similar text",
    ),
    "dureader": ("Given a Chinese search query, retrieve web passages that answer the question",),
    "eli5_question_answer": (
        "Provided a user question, retrieve the highest voted answers on Reddit ELI5 forum",
    ),
    "fever": ("Given a claim, retrieve documents that support or refute the claim",),
    "hotpot_qa": (
        "Given a multi-hop question, retrieve documents that can help answer the question",
    ),
    "miracl": ("Given a question, retrieve Wikipedia passages that answer the question",),
    "mrtydi": ("Given a question, retrieve Wikipedia passages that answer the question",),
    "msmarco_passage": (
        "Given a web search query, retrieve relevant passages that answer the query",
    ),
    "msmarco_document": (
        "Given a web search query, retrieve relevant documents that answer the query",
    ),
    "nq": ("Given a question, retrieve Wikipedia passages that answer the question",),
    "quora_duplicates": (
        "Given a question, retrieve questions that are semantically equivalent to the given question",
        "Find questions that have the same meaning as the input question",
    ),
    "squad": ("Retrieve Wikipedia passages that answer the question",),
    "t2ranking": (
        "Given a Chinese search query, retrieve web passages that answer the question",
    ),
    "trivia_qa": ("Retrieve Wikipedia passages that answer the question",),
}
"""Query instruction(s) of each E5 file (paper Table 6), in file order.

Files with two instructions alternate them by sample: the 0-based sample index ``i`` of a file
gets ``instructions[i % len(instructions)]``.
"""


def _select_files(files: Sequence[str] | None) -> list[str]:
    """Return the selected E5 file names, in ``E5_INSTRUCTIONS`` order."""
    if files is None:
        return list(E5_INSTRUCTIONS)
    names = [files] if isinstance(files, str) else list(files)
    if not names:
        raise DatasetError("files is empty; use None to train on all E5 files")
    # A trailing ".jsonl" is tolerated since the config names files, and the suffix is harmless.
    names = [name.removesuffix(".jsonl") if isinstance(name, str) else name for name in names]
    unknown = [n for n in names if not isinstance(n, str) or n not in E5_INSTRUCTIONS]
    if unknown:
        raise DatasetError(
            f"Unknown E5 file name(s) {unknown}; valid names are: {', '.join(E5_INSTRUCTIONS)}"
        )
    # The fixed table order, not the config order, decides how the seeded shuffle is consumed,
    # so listing the same files differently gives the same data order.
    return [name for name in E5_INSTRUCTIONS if name in names]


def _missing_data_message(data_dir: Path, names: Sequence[str], problem: str) -> str:
    expected = ", ".join(f"{name}.jsonl" for name in names)
    message = (
        f"E5 training data not found: {problem}. Expected files in {data_dir}: {expected}. "
        f"The data is the E5 mixture curated by echo-embeddings (about 1.5M examples, 3.6 GB): "
        f"download the zip linked at {E5_DOWNLOAD_URL} and unzip it into {data_dir} so that the "
        f"files above are directly inside that directory."
    )
    # Unzipping often adds one directory level; pointing at it saves a confusing second try.
    if data_dir.is_dir():
        nested = sorted(p.parent for p in data_dir.glob(f"*/{names[0]}.jsonl"))
        if nested:
            message += f" Found {names[0]}.jsonl in {nested[0]}: use that directory instead."
    return message


class E5Dataset(TaskChunkedDataset):
    """The echo-embeddings E5 mixture, in task-homogeneous chunks.

    Each line of ``<data_dir>/<name>.jsonl`` holds ``query``, ``positive`` and ``negative``. The
    query gets its file's instruction (see ``E5_INSTRUCTIONS``) and the separator; documents
    get only the separator. Each file's samples are shuffled and cut into chunks of
    ``per_device_batch_size * world_size`` (a short tail is dropped); the chunks of all files
    are shuffled together, so every micro-batch holds one file's samples.

    Args:
        data_dir: directory holding the JSONL files (by convention ``cache/echo-data``).
        per_device_batch_size: samples per micro-batch on one device.
        world_size: number of data-parallel processes.
        seed: run seed; the same seed gives the same order.
        files: restrict training to these file names (without ``.jsonl``); ``None`` for all.
        require_negatives: make a line without ``negative`` an error (Stage II); otherwise the
            negative is optional and returned when present.

    Raises:
        DatasetNotFoundError: if the directory or a selected file is missing.
        DatasetError: on an unknown file name, a malformed line, or if no chunk can be formed.
    """

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        per_device_batch_size: int,
        world_size: int = 1,
        seed: int = 42,
        files: Sequence[str] | None = None,
        require_negatives: bool = False,
    ) -> None:
        chunk_size = chunk_size_for(per_device_batch_size, world_size)
        names = _select_files(files)
        self.data_dir = Path(data_dir)
        if not self.data_dir.is_dir():
            problem = f"directory {self.data_dir} does not exist"
            raise DatasetNotFoundError(_missing_data_message(self.data_dir, names, problem))
        # Check every file before reading any: reading the full mixture takes minutes.
        missing = [name for name in names if not (self.data_dir / f"{name}.jsonl").is_file()]
        if missing:
            listed = ", ".join(f"{name}.jsonl" for name in missing)
            raise DatasetNotFoundError(
                _missing_data_message(self.data_dir, names, f"missing file(s) {listed}")
            )
        tasks = [self._read_file(name, require_negatives) for name in names]
        super().__init__(tasks, chunk_size, seed)

    def _read_file(self, name: str, require_negatives: bool) -> TaskSamples:
        path = self.data_dir / f"{name}.jsonl"
        instructions = E5_INSTRUCTIONS[name]
        task = TaskSamples(name)
        logger.info("Reading %s", path)
        for sample_index, line in enumerate(iter_jsonl(path)):
            query, positive, negative = line.pair_texts(require_negatives)
            task.append(query, positive, negative, instructions[sample_index % len(instructions)])
        return task
