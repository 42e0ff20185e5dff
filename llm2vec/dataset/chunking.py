"""Task-homogeneous chunking shared by all training datasets.

The contrastive loss uses in-batch negatives, which are only meaningful within one task (a
Chinese web query against English Wikipedia passages is a trivially easy negative). So each
task's samples are shuffled and cut into chunks of ``per_device_batch_size * world_size``; the
chunks of all tasks are shuffled together and read in order. The trainer reads the dataset
sequentially and accelerate gives rank ``r`` batch ``k * world_size + r``, so chunk ``k`` is
exactly the ``world_size`` per-device batches of global step ``k``: every micro-batch, on every
rank, holds samples of a single task.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from llm2vec.dataset.errors import DatasetError


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
