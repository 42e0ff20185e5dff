"""What the demo reports about the machine it ran on, and whether bf16 pays off on its CPU."""

from __future__ import annotations

import contextlib
import os
import platform
import time
from pathlib import Path
from typing import Any

from anchor_demo.run_files import load_average


def _cpuinfo_field(name: str) -> str | None:
    """The first value of ``name`` in /proc/cpuinfo (None where there is no such file or field)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == name:
                return value.strip()
    return None


def cpu_model() -> str | None:
    """The CPU's model name from /proc/cpuinfo."""
    return _cpuinfo_field("model name")


def cpu_flags(names: tuple[str, ...]) -> list[str]:
    """Which of the instruction-set flags ``names`` the CPU has, sorted."""
    return sorted(set((_cpuinfo_field("flags") or "").split()) & set(names))


def detect_cpu_bf16(size: int = 384, repeats: int = 5) -> dict[str, Any]:
    """Whether bf16 matrix multiplication is fast on this CPU (worth bf16 autocast).

    oneDNN reports bf16 support also where it only emulates it, so a small matmul is timed in
    both dtypes (best of ``repeats``): bf16 is used when it is at least 1.2x faster than float32.
    """
    import torch

    info: dict[str, Any] = {"cpu_capability": None, "cpu_flags": [], "mkldnn_bf16": None}
    with contextlib.suppress(Exception):
        info["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    with contextlib.suppress(Exception):
        info["mkldnn_bf16"] = bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    info["cpu_flags"] = cpu_flags(("avx512_bf16", "amx_bf16", "amx_tile", "avx512f"))
    if info["mkldnn_bf16"] is False:
        info.update(bf16=False, reason="oneDNN reports no bf16 support")
        return info

    def best(dtype: Any) -> float:
        a = torch.randn(size, size, dtype=dtype)
        b = torch.randn(size, size, dtype=dtype)
        a @ b  # warm-up
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in range(4):
                a @ b
            times.append(time.perf_counter() - start)
        return min(times)

    try:
        fp32, bf16 = best(torch.float32), best(torch.bfloat16)
    except RuntimeError as error:  # no bf16 kernel at all
        info.update(bf16=False, reason=f"bf16 matmul failed: {error}")
        return info
    speedup = fp32 / bf16 if bf16 > 0 else 0.0
    info.update(
        bf16=speedup >= 1.2,
        matmul_speedup=round(speedup, 2),
        reason=f"bf16 matmul {speedup:.2f}x the float32 speed",
    )
    return info




def machine_info() -> dict[str, Any]:
    import torch
    import transformers

    cpu = cpu_model() or platform.processor() or platform.machine()
    memory = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                memory = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
    return {
        "cpu": cpu,
        "logical_cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "memory_gb": memory,
        "load_average": load_average(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        **{name: _version(name) for name in ("peft", "mteb")},
    }


def _version(distribution: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return None


def machine_info_line() -> str:
    info = machine_info()
    return (
        f"{info['cpu']}, {info['logical_cpus']} logical CPUs, {info['torch_threads']} torch threads, "
        f"{info['memory_gb']} GB, load average {info['load_average']}, torch {info['torch']}"
    )


