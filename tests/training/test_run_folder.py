"""The run lock and the start/resume/no-op decision of an output folder, in process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from llm2vec.training.checkpoints import mark_complete
from llm2vec.training.run_folder import (
    FINISHED_NAME,
    LOCK_NAME,
    RunFolderError,
    _process_start,
    acquire_lock,
    clear_run,
    mark_finished,
    plan_start,
    release_lock,
)


def _checkpoint(folder: Path, step: int, complete: bool = True) -> Path:
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    if complete:
        mark_complete(path)
    return path


def test_an_empty_or_missing_folder_starts_fresh_whatever_the_resume(tmp_path: Path) -> None:
    for resume in (None, "last"):
        start = plan_start(tmp_path / "new", resume, stop_after_n_steps=4, start_over=False)
        assert start.resume_from is None and not start.finished


def test_a_folder_holding_a_run_needs_resume_or_start_over(tmp_path: Path) -> None:
    _checkpoint(tmp_path, 2)
    with pytest.raises(RunFolderError, match="holds a partial run .*--resume_from_checkpoint last.*--overwrite_output_dir"):
        plan_start(tmp_path, None, 4, start_over=False)
    assert plan_start(tmp_path, "last", 4, False).resume_from == str(tmp_path / "checkpoint-2")
    assert plan_start(tmp_path, None, 4, start_over=True).resume_from is None
    mark_finished(tmp_path, 4)
    with pytest.raises(RunFolderError, match="holds a run finished at step 4"):
        plan_start(tmp_path, None, 4, start_over=False)


@pytest.mark.parametrize("stop, finished", [(4, True), (3, True), (None, True), (6, False)])
def test_a_finished_run_is_a_no_op_unless_the_stop_is_raised(tmp_path: Path, stop, finished) -> None:
    _checkpoint(tmp_path, 4)
    mark_finished(tmp_path, 4)
    start = plan_start(tmp_path, "last", stop, start_over=False)
    assert start.finished is finished
    assert start.resume_from == (None if finished else str(tmp_path / "checkpoint-4"))


def test_clear_run_removes_what_a_run_wrote_and_nothing_else(tmp_path: Path) -> None:
    _checkpoint(tmp_path, 2)
    (tmp_path / "merged").mkdir()
    for name in ("model.safetensors", "config.json", "llm2vec_config.json", "adapter_config.json", FINISHED_NAME):
        (tmp_path / name).write_text("x")
    (tmp_path / "notes.txt").write_text("mine")
    clear_run(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_the_lock_is_exclusive_while_its_holder_lives_and_taken_over_after(tmp_path: Path) -> None:
    path = acquire_lock(tmp_path)
    holder = json.loads(path.read_text())
    assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
    with pytest.raises(RunFolderError, match=f"in use by another run: pid {os.getpid()}"):
        acquire_lock(tmp_path)  # the same process counts as a live holder too
    release_lock(tmp_path)
    assert not path.exists()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    path.write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname(), "process_start": "1"}))
    acquire_lock(tmp_path)  # its process is gone
    assert json.loads(path.read_text())["pid"] == os.getpid()
    release_lock(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == []  # no temporaries left


def test_a_reused_pid_does_not_keep_a_stale_lock(tmp_path: Path) -> None:
    """The pid exists, but it is another process than the one that took the lock."""
    (tmp_path / LOCK_NAME).write_text(json.dumps(
        {"pid": os.getpid(), "host": socket.gethostname(), "process_start": "not " + str(_process_start(os.getpid()))}
    ))
    acquire_lock(tmp_path)
    release_lock(tmp_path)


def test_a_lock_of_another_host_is_never_taken_over(tmp_path: Path) -> None:
    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": 1, "host": "elsewhere", "command": "python run.py"}))
    with pytest.raises(RunFolderError, match=f"pid 1 on elsewhere .*delete {tmp_path / LOCK_NAME}"):
        acquire_lock(tmp_path)
