"""``run_entry``: an entry point in a forked child that a kill point may end (tests/forked_runs.py)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import pytest

from tests.forked_runs import run_forked

RunEntry = Callable[..., int]


@pytest.fixture
def run_entry(tmp_path: Path) -> RunEntry:
    """``run_entry(script, argv, point=None, hit=1) -> exit code`` (-9 when the kill point fired).

    The output of every run of the test is appended to ``run_entry.log`` (a file).
    """
    log = tmp_path / "runs.log"

    def run(script: str, argv: Sequence[object], point: str | None = None, hit: int = 1) -> int:
        result = run_forked(script, argv, point=point, hit=hit)
        with log.open("a") as handle:
            handle.write(result.stdout)
        return result.returncode

    run.log = log  # type: ignore[attr-defined]
    return run
