"""Sample storage and the task-chunked ``Dataset`` base shared by the E5 and JSONL datasets."""

from __future__ import annotations

import logging
import random
from array import array
from collections.abc import Sequence

from torch.utils.data import Dataset

from llm2vec.dataset.chunking import plan_chunks
from llm2vec.dataset.data_types import TrainSample
from llm2vec.dataset.errors import DatasetError
from llm2vec.separator import SEPARATOR

logger = logging.getLogger(__name__)


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

    See ``llm2vec.dataset.chunking`` for why and how the order is built. Indices are meant to be
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
