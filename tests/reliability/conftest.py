"""Entry points run in forked children that a kill point may kill (see faults.py)."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from . import faults

REPO = Path(__file__).resolve().parents[2]
RunEntry = Callable[..., int]


@pytest.fixture(scope="session")
def forkserver() -> multiprocessing.context.BaseContext:
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([faults.__name__, *faults.PRELOAD])
    return context


@pytest.fixture
def run_entry(forkserver, tmp_path: Path) -> RunEntry:
    """``run_entry(script, argv, point=None, hit=1) -> exit code`` (-9 when the kill point fired).

    ``script`` is relative to the repository; the child's output goes to ``tmp_path/runs.log``.
    """
    log = tmp_path / "runs.log"

    def run(script: str, argv: Sequence[str], point: str | None = None, hit: int = 1) -> int:
        child = forkserver.Process(
            target=faults.run_entry, args=(str(REPO / script), [str(a) for a in argv], point, hit, str(log))
        )
        child.start()
        child.join(timeout=600)
        if child.exitcode is None:
            child.kill()
            raise AssertionError(f"{script} did not finish within 600 s; log: {log}")
        return child.exitcode

    run.log = log  # type: ignore[attr-defined]
    return run
