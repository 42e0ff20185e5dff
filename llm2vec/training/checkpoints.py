"""Checkpoint folders: completeness markers and finding the newest complete one to resume from."""

from __future__ import annotations

import logging
import re
from pathlib import Path

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "checkpoint_complete"
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def mark_complete(checkpoint_dir: str | Path) -> None:
    """Written last, so a folder without it was interrupted while being written."""
    (Path(checkpoint_dir) / COMPLETE_MARKER).write_text("ok\n")


def clear_complete(checkpoint_dir: str | Path) -> None:
    """Remove the marker before a folder is (re)written."""
    (Path(checkpoint_dir) / COMPLETE_MARKER).unlink(missing_ok=True)


def is_complete(checkpoint_dir: str | Path) -> bool:
    return (Path(checkpoint_dir) / COMPLETE_MARKER).is_file()


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The highest-numbered ``checkpoint-N`` of ``output_dir`` that was written completely."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return None
    found = sorted(
        ((int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT_RE.match(p.name))),
        reverse=True,
    )
    for _, path in found:
        if is_complete(path):
            return path
        logger.warning("skipping %s: it has no %s marker (interrupted while saving)", path, COMPLETE_MARKER)
    return None


def resolve_resume_checkpoint(resume: str | None, output_dir: str | Path) -> str | None:
    """``resume_from_checkpoint`` as a folder: ``last`` means the newest complete checkpoint."""
    if resume is None:
        return None
    if resume == "last":
        found = last_complete_checkpoint(output_dir)
        if found is None:
            logger.warning("resume_from_checkpoint=last but %s has no complete checkpoint; starting anew", output_dir)
        return None if found is None else str(found)
    path = Path(resume)
    if not path.is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint {path} is not a folder")
    if not is_complete(path):
        raise ValueError(f"{path} has no {COMPLETE_MARKER} marker: it was interrupted while being saved")
    return str(path)
