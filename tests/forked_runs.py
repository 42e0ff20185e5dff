"""Entry points run as ``python script.py args`` would, in children of a forkserver.

The forkserver imports torch, transformers, mteb and the library once; each child then runs the
script with ``runpy`` as ``__main__`` (its own argument parsing, error handling and exit code),
so a run costs its work instead of a new interpreter's imports (seconds per run). A child may be
armed with a kill point (``kill_points.py``) that ends it like ``kill -9``.
"""

from __future__ import annotations

import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRELOAD = [
    "torch", "transformers", "peft", "mteb", "sklearn.linear_model",
    "llm2vec.training.setup_run", "llm2vec.llm2vec_q2d_d2q", "llm2vec.llm2vec_contrastive",
    "llm2vec.evaluation.runner", "llm2vec.evaluation.local_tasks", "tests.kill_points",
]
KILLED = -9

_context: multiprocessing.context.BaseContext | None = None


def _forkserver() -> multiprocessing.context.BaseContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _child(script: str, argv: list[str], env: dict[str, str], point: str | None, hit: int, log: str) -> None:
    with open(log, "w") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
    os.environ.update(env)
    if "OMP_NUM_THREADS" in env:  # torch read it when the forkserver imported it
        import torch

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    os.chdir(REPO)
    sys.argv = [script, *argv]
    if point is not None:
        from tests.kill_points import install

        install(point, hit)
    code: object = 0
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code
    except BaseException:  # noqa: BLE001 - reported like an uncaught exception of a real process
        import traceback

        traceback.print_exc()
        code = 1
    if not isinstance(code, int):
        if code is not None:
            print(code, file=sys.stderr)
        code = 0 if code is None else 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def run_forked(
    script: str | os.PathLike,
    argv: Sequence[object],
    *,
    env: Mapping[str, str] | None = None,
    point: str | None = None,
    hit: int = 1,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run ``script`` (a path, or relative to the checkout) with ``argv``; its merged output is in
    both ``stdout`` and ``stderr`` of the result, its exit code in ``returncode`` (-9 if killed)."""
    path = Path(script) if Path(script).is_absolute() else REPO / script
    arguments = [str(a) for a in argv]
    with tempfile.NamedTemporaryFile("r", suffix=".log") as log:
        child = _forkserver().Process(
            target=_child, args=(str(path), arguments, dict(env or {}), point, hit, log.name)
        )
        child.start()
        child.join(timeout=timeout)
        if child.exitcode is None:
            child.kill()
            child.join()
            raise AssertionError(f"{path} did not finish within {timeout} s:\n{Path(log.name).read_text()[-4000:]}")
        output = Path(log.name).read_text()
    return subprocess.CompletedProcess([str(path), *arguments], child.exitcode, output, output)
