"""Sample storage and the task-chunked ``Dataset`` base shared by the E5 and JSONL datasets.

Batches are task-homogeneous. The contrastive loss uses in-batch negatives, which are only meaningful within one task (a
Chinese web query against English Wikipedia passages is a trivially easy negative). So each
task's samples are shuffled and cut into chunks of ``per_device_batch_size * world_size``; the
chunks of all tasks are shuffled together and read in order. The trainer reads the dataset
sequentially and accelerate gives rank ``r`` batch ``k * world_size + r``, so chunk ``k`` is
exactly the ``world_size`` per-device batches of global step ``k``: every micro-batch, on every
rank, holds samples of a single task.
"""

from __future__ import annotations

import logging
import random
from array import array
from collections.abc import Sequence
from dataclasses import dataclass

from torch.utils.data import Dataset

from llm2vec.dataset.jsonl_reader import DatasetError
from llm2vec.tokenization import SEPARATOR

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TrainSample:
    """One training example, with texts already in the model's input format.

    Attributes:
        query: ``"{instruction}; " + SEPARATOR + query`` (or ``SEPARATOR + query`` when the
            sample has no instruction).
        positive: ``SEPARATOR + positive``; documents never get an instruction.
        negative: ``SEPARATOR + negative``, or ``None`` when the source line has no negative.
        task: the task the sample belongs to (the source file name without ``.jsonl``); all
            samples of one micro-batch share it.
    """

    query: str
    positive: str
    negative: str | None
    task: str


def chunk_size_for(per_device_batch_size: int, world_size: int) -> int:
    """Return ``per_device_batch_size * world_size`` after checking both are positive ints.

    Raises:
        DatasetError: if either value is not a positive integer.
    """
    checks = (("per_device_batch_size", per_device_batch_size), ("world_size", world_size))
    for name, value in checks:
        # bool is an int subclass; True as a batch size is a config mistake, not 1.
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise DatasetError(f"{name} must be a positive integer, got {value!r}")
    return per_device_batch_size * world_size


def plan_chunks(
    task_sizes: Sequence[int], chunk_size: int, rng: random.Random
) -> list[tuple[int, list[int]]]:
    """Shuffle each task, cut it into full chunks, and shuffle the chunks of all tasks.

    Args:
        task_sizes: number of samples of each task, in a fixed task order (the order decides
            how the random stream is consumed, so it must not depend on e.g. dict order).
        chunk_size: samples per chunk; a task's last chunk is dropped when it is shorter.
        rng: the random source, seeded by the caller with the run seed.

    Returns:
        The chunks in reading order, each as ``(task_index, sample_indices_within_task)``.
    """
    chunks: list[tuple[int, list[int]]] = []
    for task_index, size in enumerate(task_sizes):
        order = list(range(size))
        rng.shuffle(order)
        for start in range(0, size - chunk_size + 1, chunk_size):
            chunks.append((task_index, order[start : start + chunk_size]))
    rng.shuffle(chunks)
    return chunks


class TaskSamples:
    """The raw texts of one task, kept column-wise.

    Only the raw strings from the files are stored; the instruction prefix and the separator are
    added in ``sample()``. Storing formatted texts would copy every string once more (and repeat
    a ~80-character instruction 1.5M times) for the whole run.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.queries: list[str] = []
        self.positives: list[str] = []
        self.negatives: list[str | None] = []
        # Index into ``prefixes`` per sample; a typed array costs 4 bytes per sample, a list of
        # ints up to 36.
        self.prefix_ids = array("I")
        self.prefixes: list[str] = []
        self._prefix_index: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self.queries)

    def append(
        self, query: str, positive: str, negative: str | None, instruction: str | None
    ) -> None:
        """Add one sample; ``instruction`` is ``None`` for a query without instruction."""
        prefix = SEPARATOR if instruction is None else f"{instruction}; " + SEPARATOR
        prefix_id = self._prefix_index.get(prefix)
        if prefix_id is None:
            prefix_id = self._prefix_index[prefix] = len(self.prefixes)
            self.prefixes.append(prefix)
        self.queries.append(query)
        self.positives.append(positive)
        self.negatives.append(negative)
        self.prefix_ids.append(prefix_id)

    def sample(self, index: int) -> TrainSample:
        """Return sample ``index`` with its texts in model input format."""
        negative = self.negatives[index]
        return TrainSample(
            query=self.prefixes[self.prefix_ids[index]] + self.queries[index],
            positive=SEPARATOR + self.positives[index],
            negative=None if negative is None else SEPARATOR + negative,
            task=self.name,
        )


class TaskChunkedDataset(Dataset[TrainSample]):
    """Samples of several tasks, ordered in task-homogeneous chunks of ``chunk_size``.

    See ``llm2vec.dataset.task_chunked`` for why and how the order is built. Indices are meant to be
    read with a sequential sampler.

    Attributes:
        chunk_size: ``per_device_batch_size * world_size``; ``len(self)`` is a multiple of it.
        samples_read: samples read per task, before dropping the tails.
        samples_dropped: samples per task left out because they did not fill a chunk.
    """

    def __init__(self, tasks: Sequence[TaskSamples], chunk_size: int, seed: int) -> None:
        self.chunk_size = chunk_size
        self._tasks = list(tasks)
        chunks = plan_chunks([len(task) for task in self._tasks], chunk_size, random.Random(seed))
        # Flat, typed order arrays: one entry per chunk and one per kept sample, instead of
        # 1.5M tuples.
        self._chunk_tasks = array("I", (task_index for task_index, _ in chunks))
        self._rows = array("Q")
        for _, rows in chunks:
            self._rows.extend(rows)

        kept = {task.name: 0 for task in self._tasks}
        for task_index in self._chunk_tasks:
            kept[self._tasks[task_index].name] += chunk_size
        self.samples_read = {task.name: len(task) for task in self._tasks}
        self.samples_dropped = {name: self.samples_read[name] - kept[name] for name in kept}
        for name, read in self.samples_read.items():
            if not read:
                logger.warning("Task %r: the file holds no samples", name)
            elif not kept[name]:
                logger.warning(
                    "Task %r: all %d samples dropped, fewer than one chunk of %d "
                    "(per_device_batch_size x world_size)", name, read, chunk_size,
                )

        if not chunks:
            sizes = ", ".join(f"{name}={read}" for name, read in self.samples_read.items())
            raise DatasetError(
                f"No training batch can be formed: per_device_batch_size x world_size = "
                f"{chunk_size} is larger than the number of samples of every file ({sizes}); "
                "batches never mix files, so lower the batch size or add data"
            )
        logger.info(
            "Training data: %d samples in %d chunks of %d (dropped tails: %s)",
            len(self._rows), len(self._chunk_tasks), chunk_size, self.samples_dropped,
        )

    def __len__(self) -> int:
        return len(self._rows)

    def __getitem__(self, index: int) -> TrainSample:
        size = len(self._rows)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError(f"sample index {index} out of range for {size} samples")
        task = self._tasks[self._chunk_tasks[index // self.chunk_size]]
        return task.sample(self._rows[index])

    def tasks_per_chunk(self) -> list[str]:
        """Return the task name of every chunk, in reading order."""
        return [self._tasks[task_index].name for task_index in self._chunk_tasks]
