"""What the benchmarks measure about the machine itself, shared by the scripts in this folder."""

from __future__ import annotations

import socket
import time

import torch


def matmul_peak(dtype: torch.dtype, size: int = 4096, repeats: int = 4) -> float:
    """FLOP/s of the best of ``repeats`` square ``torch.matmul`` of ``size`` in ``dtype`` (after one warm-up)."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a local process group)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as handle:
        handle.bind(("127.0.0.1", 0))
        return handle.getsockname()[1]
