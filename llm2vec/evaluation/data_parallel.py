"""Data-parallel evaluation over torch.distributed: which process is which, and how texts are shared.

Every rank runs the same mteb evaluation (same tasks, same texts, same order: mteb's data
loading is deterministic), so every ``encode`` call happens on every rank with the same inputs.
Each call's texts are split across ranks balanced by tokens, each rank embeds its share, and the
shares are gathered back in input order on every rank; only rank 0 writes results and the
embedding cache. Launch with ``torchrun --nproc_per_node N`` or ``accelerate launch``: both set
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``, which :func:`init_from_environment` reads.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Ranks:
    """This process's place among the evaluation's processes."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def parallel(self) -> bool:
        return self.world_size > 1

    @classmethod
    def current(cls) -> Ranks:
        """The ranks of the initialised default process group, or a single process."""
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size())
        return cls()

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank (picklable objects)."""
        if not self.parallel:
            return value
        holder = [value if self.is_main else None]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def gather(self, value: Any) -> list[Any]:
        """Every rank's ``value``, in rank order, on every rank."""
        if not self.parallel:
            return [value]
        gathered: list[Any] = [None] * self.world_size
        dist.all_gather_object(gathered, value)
        return gathered


def init_from_environment(device: str | None = None, timeout_minutes: float = 120.0) -> tuple[Ranks, str | None]:
    """Join the process group a launcher describes (``WORLD_SIZE`` > 1), else stay single.

    Returns the ranks and the device this rank should use: ``cuda:<LOCAL_RANK>`` on GPUs (NCCL),
    the given device (or cpu) otherwise (gloo). The timeout bounds how long a rank waits for the
    others, e.g. while rank 0 alone reads a large cache.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return Ranks(), device
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        device = f"cuda:{local_rank}"
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=timedelta(minutes=timeout_minutes))
    return Ranks.current(), device or "cpu"


def finish(ranks: Ranks) -> None:
    """Leave the process group :func:`init_from_environment` joined (a no-op for one process)."""
    if ranks.parallel and dist.is_initialized():
        # No barrier: after an error on one rank, the others must not wait for it forever.
        dist.destroy_process_group()


def split_by_tokens(lengths: Sequence[int], parts: int) -> list[list[int]]:
    """Indices of ``lengths`` dealt into ``parts`` shares of nearly equal token sums.

    Longest first, each item to the share with the fewest tokens so far (ties: the lower share),
    so the largest share exceeds the mean by at most one item. Each share keeps the items in the
    order they were dealt (longest first). Deterministic: every rank computes the same shares.
    """
    if parts < 1:
        raise ValueError(f"parts must be positive, got {parts}")
    shares: list[list[int]] = [[] for _ in range(parts)]
    heap = [(0, part) for part in range(parts)]
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        total, part = heapq.heappop(heap)
        shares[part].append(index)
        heapq.heappush(heap, (total + lengths[index], part))
    return shares


def counted_in_parallel(ranks: Ranks, items: Sequence[Any], count: Callable[[list[Any]], list[int]]) -> list[int]:
    """``count(items)`` with each rank counting every ``world_size``-th item, gathered in order.

    Used for the token counts that :func:`split_by_tokens` balances: tokenizing the whole of
    every encode call on every rank costs ``world_size`` times the tokenization of a rank's share,
    which with many GPUs rivals the forward passes themselves.
    """
    mine = list(range(ranks.rank, len(items), ranks.world_size))
    counts = count([items[i] for i in mine])
    if len(counts) != len(mine):
        raise ValueError(f"count returned {len(counts)} values for {len(mine)} items")
    result = [0] * len(items)
    for indices, values in ranks.gather((mine, counts)):
        for index, value in zip(indices, values):
            result[index] = value
    return result
