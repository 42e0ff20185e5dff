"""Files that a crash never leaves half-written.

A file is written under a temporary name ``.<name>.<pid>.tmp`` in its own folder, flushed to
disk and renamed over its final name, so readers see the old content or the new, never a part.
A process killed before the rename leaves its temporary behind; :func:`remove_stale_temporaries`
removes those whose process is gone.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

_TEMPORARY = re.compile(r"^\..+\.(\d+)\.tmp$")


def temporary_path(path: str | os.PathLike, tag: str | None = None) -> Path:
    """The temporary name of ``path`` for this process (``tag`` in place of the file name)."""
    path = Path(path)
    return path.with_name(f".{tag or path.name}.{os.getpid()}.tmp")


def write_atomically(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Call ``write(temporary)``, flush it to disk, then rename it to ``path`` in one step."""
    path = Path(path)
    staged = temporary_path(path)
    try:
        write(staged)
        with staged.open("rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(staged, path)
    finally:
        staged.unlink(missing_ok=True)
    return path


def write_text_atomically(path: str | os.PathLike, text: str) -> Path:
    """:func:`write_atomically` for a text file."""
    return write_atomically(path, lambda target: target.write_text(text, encoding="utf-8"))


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this machine."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporaries (files or folders) in ``folder`` whose process is gone; returns them."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    for entry in folder.iterdir():
        match = _TEMPORARY.match(entry.name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


def set_aside(path: str | os.PathLike) -> Path:
    """Rename an unreadable file to ``<name>.corrupt`` (``.corrupt.1``, ... if taken); returns the new path."""
    path = Path(path)
    aside = path.with_name(path.name + ".corrupt")
    number = 0
    while aside.exists():
        number += 1
        aside = path.with_name(f"{path.name}.corrupt.{number}")
    os.replace(path, aside)
    return aside


def replace_folder(staged: str | os.PathLike, target: str | os.PathLike) -> Path:
    """Move the complete folder ``staged`` to ``target``, replacing what is there in two renames.

    The old ``target`` is first renamed to a temporary name (removed afterwards), so at every
    moment ``target`` is either the old complete folder or the new one.
    """
    staged, target = Path(staged), Path(target)
    old = temporary_path(target, f"{target.name}.old")
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)
    return target


@contextmanager
def staged_folder(target: str | os.PathLike, log: Callable[[str], object] | None = None) -> Iterator[Path]:
    """An empty folder to build ``target`` in; it replaces ``target`` only when the block completes.

    The folder is ``target``'s temporary name for this process. If the block raises, the folder
    is removed and ``target`` stays as it was; a process killed inside the block leaves the
    folder behind, and the next :func:`staged_folder` beside it removes it once that process is
    gone (``log`` is told).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    for leftover in remove_stale_temporaries(target.parent):
        if log is not None:
            log(f"removed {leftover}, left by an interrupted run")
    staging = temporary_path(target)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    replace_folder(staging, target)
