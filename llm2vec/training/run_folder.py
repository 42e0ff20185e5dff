"""One run per output folder: a lock for the length of the run, and whether to start, resume or stop.

A run takes ``<output_dir>/.run.lock`` before anything is loaded and writes
``training_complete.json`` after its last file. With these two files the entry points refuse a
second run into a folder that is in use, refuse a fresh start into a folder that holds a run
(``overwrite_output_dir`` starts over on purpose), and turn a repeated resume of a finished run
into a no-op. The guarantees and their tests: docs/reliability.md.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm2vec.files import pid_alive, remove_stale_temporaries, temporary_path, write_text_atomically
from llm2vec.training.checkpoints import checkpoint_folders, is_complete, resolve_resume_checkpoint

logger = logging.getLogger(__name__)

LOCK_NAME = ".run.lock"
FINISHED_NAME = "training_complete.json"
#: what a run writes into its output folder besides checkpoints (``overwrite_output_dir`` removes them)
_RUN_FILES = (
    FINISHED_NAME, "config.json", "generation_config.json", "llm2vec_config.json", "training_args.bin",
    "adapter_config.json", "adapter_model.safetensors", "adapter_base.json", "tokenizer.json",
    "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "trainer_state.json",
)
_RUN_PATTERNS = ("model*.safetensors", "model.safetensors.index.json", "pytorch_model*.bin")
_RUN_FOLDERS = ("merged",)


class RunFolderError(RuntimeError):
    """The output folder cannot take this run; the message says why and what to do."""


# ---------------------------------------------------------------------------- lock
def _process_start(pid: int) -> str | None:
    """The start time of ``pid`` in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _holder_alive(holder: dict[str, Any]) -> bool:
    if holder.get("host") != socket.gethostname():
        return True  # cannot be checked from here: only its owner, or a person, can release it
    pid = holder.get("pid")
    if not isinstance(pid, int) or not pid_alive(pid):
        return False
    started = holder.get("process_start")
    return started is None or started == _process_start(pid)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def acquire_lock(folder: Path) -> Path:
    """Take ``folder``'s run lock, replacing a stale one (its process is gone).

    Raises:
        RunFolderError: another live run holds it (the message names its pid, host and command).
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK_NAME
    me = {
        "pid": os.getpid(), "host": socket.gethostname(), "process_start": _process_start(os.getpid()),
        "command": " ".join([Path(sys.executable).name, *sys.argv]), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    staged = temporary_path(path)
    staged.write_text(json.dumps(me) + "\n")
    try:
        for _ in range(3):
            try:
                os.link(staged, path)  # atomic: the lock appears with its content, or not at all
                return path
            except FileExistsError:
                holder = _read_json(path)
            if holder is not None and _holder_alive(holder):
                raise RunFolderError(
                    f"{folder} is in use by another run: pid {holder.get('pid')} on {holder.get('host')} "
                    f"({holder.get('command')}), started {holder.get('started')}. Wait for it, use another "
                    f"output_dir, or delete {path} if that run is gone"
                )
            logger.warning("taking over the stale lock of a run that is gone: %s (%s)", path, holder)
            stale = temporary_path(path, "stale-lock")
            try:  # of two runs that find it stale, only one renames it away
                os.rename(path, stale)
                stale.unlink()
            except FileNotFoundError:
                pass
        raise RunFolderError(f"could not take the lock {path}; another run keeps taking it")
    finally:
        staged.unlink(missing_ok=True)


def release_lock(folder: Path) -> None:
    """Remove ``folder``'s lock if this process holds it."""
    path = folder / LOCK_NAME
    holder = _read_json(path)
    if holder is not None and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
        path.unlink(missing_ok=True)


# ---------------------------------------------------------------------------- state of a folder
def finished_step(folder: Path) -> int | None:
    """The step at which the run in ``folder`` finished, or None if it has not."""
    record = _read_json(folder / FINISHED_NAME)
    step = None if record is None else record.get("global_step")
    return step if isinstance(step, int) else None


def mark_finished(folder: Path, global_step: int) -> None:
    """Written after every other file of the run (atomically)."""
    record = {"global_step": global_step, "finished": time.strftime("%Y-%m-%d %H:%M:%S")}
    write_text_atomically(folder / FINISHED_NAME, json.dumps(record) + "\n")


def remove_interrupted_files(folder: Path) -> None:
    """Remove what interrupted runs left: checkpoints never marked complete, dead temporaries."""
    remove_stale_temporaries(folder)
    for _, checkpoint in checkpoint_folders(folder):
        if not is_complete(checkpoint):
            logger.warning("removing %s: it was never completed (the run was interrupted while saving it)", checkpoint)
            shutil.rmtree(checkpoint)


def holds_run(folder: Path) -> bool:
    """Whether ``folder`` holds a finished or partial run (checkpoints, a final model, the marker)."""
    return bool(checkpoint_folders(folder)) or (folder / FINISHED_NAME).exists() or (folder / "llm2vec_config.json").exists()


def clear_run(folder: Path) -> None:
    """Remove what a run wrote into ``folder`` (checkpoints, final model, marker); nothing else."""
    for _, checkpoint in checkpoint_folders(folder):
        shutil.rmtree(checkpoint)
    for name in _RUN_FOLDERS:
        shutil.rmtree(folder / name, ignore_errors=True)
    for name in _RUN_FILES:
        (folder / name).unlink(missing_ok=True)
    for pattern in _RUN_PATTERNS:
        for path in folder.glob(pattern):
            path.unlink()


# ---------------------------------------------------------------------------- the decision
@dataclass
class RunStart:
    """How a run begins: from ``resume_from`` (a checkpoint folder) or from scratch (None).

    ``finished_at`` is set when the run in the folder is already finished: there is nothing to
    do. ``global_step`` is filled in by the training when it ends.
    """

    output_dir: Path
    resume_from: str | None = None
    finished_at: int | None = None
    global_step: int | None = None

    @property
    def finished(self) -> bool:
        return self.finished_at is not None


def plan_start(output_dir: str | os.PathLike, resume: str | None, stop_after_n_steps: int | None, start_over: bool) -> RunStart:
    """Decide how the run in ``output_dir`` begins (see the module docstring).

    Raises:
        RunFolderError: a fresh start into a folder holding a run, without ``start_over``.
    """
    folder = Path(output_dir)
    if start_over:
        return RunStart(folder)
    done = finished_step(folder)
    if resume is None:
        if holds_run(folder):
            state = f"a run finished at step {done}" if done is not None else "a partial run (checkpoints)"
            raise RunFolderError(
                f"{folder} already holds {state}; continue it with --resume_from_checkpoint last, or start over "
                "with --overwrite_output_dir true (which deletes its checkpoints and model)"
            )
        return RunStart(folder)
    if done is not None and (stop_after_n_steps is None or stop_after_n_steps <= done):
        return RunStart(folder, finished_at=done)
    try:
        return RunStart(folder, resume_from=resolve_resume_checkpoint(resume, folder))
    except (ValueError, FileNotFoundError) as error:
        raise RunFolderError(str(error)) from error


@contextmanager
def claim_output_dir(training_args: Any) -> Iterator[RunStart]:
    """Lock the run's output folder for the block and decide how the run begins.

    The main process takes the lock and prepares the folder first; the others decide from what it
    left, so every process makes the same decision. On a normal exit after training, the main
    process writes the finished marker, then releases the lock.
    """
    folder = Path(training_args.output_dir)
    main = training_args.process_index == 0
    locked = False
    try:
        with training_args.main_process_first(desc="claiming the output folder"):
            if main:
                acquire_lock(folder)
                locked = True
            start = plan_start(
                folder, training_args.resume_from_checkpoint, training_args.stop_after_n_steps,
                training_args.overwrite_output_dir,
            )
            if main and not start.finished:
                if training_args.overwrite_output_dir:
                    clear_run(folder)
                remove_interrupted_files(folder)
                # A run that continues is not finished until it says so again.
                (folder / FINISHED_NAME).unlink(missing_ok=True)
        if start.finished:
            print(f"run already finished at step {start.finished_at}: {folder}", flush=True)
        yield start
        if main and start.global_step is not None and training_args.should_save:
            mark_finished(folder, start.global_step)
    finally:
        if locked:
            release_lock(folder)
