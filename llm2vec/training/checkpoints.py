"""Checkpoint folders: completeness markers and finding the newest complete one to resume from."""

from __future__ import annotations

import logging
import re
import shutil
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


def checkpoint_step(checkpoint_dir: str | Path) -> int | None:
    """N of a ``checkpoint-N`` folder, None for any other name."""
    match = _CHECKPOINT_RE.match(Path(checkpoint_dir).name)
    return int(match.group(1)) if match else None


def checkpoint_folders(output_dir: str | Path) -> list[tuple[int, Path]]:
    """``(step, folder)`` of every ``checkpoint-N`` folder of ``output_dir``, oldest first."""
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        return []
    return sorted(
        (int(m.group(1)), p) for p in output_dir.iterdir() if p.is_dir() and (m := _CHECKPOINT_RE.match(p.name))
    )


def last_complete_checkpoint(output_dir: str | Path) -> Path | None:
    """The highest-numbered ``checkpoint-N`` of ``output_dir`` that was written completely."""
    for _, path in reversed(checkpoint_folders(output_dir)):
        if is_complete(path):
            return path
        logger.warning("skipping %s: it has no %s marker (interrupted while saving)", path, COMPLETE_MARKER)
    return None


def resolve_resume_checkpoint(resume: str | None, output_dir: str | Path) -> str | None:
    """``resume_from_checkpoint`` as a folder: ``last`` means the newest complete checkpoint.

    ``last`` in a folder without a complete checkpoint starts the run from step 0 and says so: the
    first submission of a job that always passes ``last``, or a run killed while writing its first
    checkpoint (nothing of it can be resumed).
    """
    if resume is None:
        return None
    if resume == "last":
        found = last_complete_checkpoint(output_dir)
        if found is not None:
            return str(found)
        if checkpoint_folders(output_dir):
            logger.warning(
                "resume_from_checkpoint=last: %s has no complete checkpoint (the run was interrupted while "
                "writing its first one); starting from step 0", output_dir,
            )
        else:
            logger.info("resume_from_checkpoint=last: %s has no checkpoint yet; starting the run", output_dir)
        return None
    path = Path(resume)
    if not path.is_dir():
        raise FileNotFoundError(f"resume_from_checkpoint {path} is not a folder")
    if not is_complete(path):
        raise ValueError(f"{path} has no {COMPLETE_MARKER} marker: it was interrupted while being saved")
    return str(path)


def remove_old_checkpoints(output_dir: str | Path, keep: int | None, protected: str | None = None) -> None:
    """Keep the ``keep`` newest complete checkpoints (and ``protected``); delete the older ones.

    Called once the newest checkpoint is complete, so a complete one exists at every moment. A
    folder loses its marker before it is deleted, so a deletion cut short never looks complete.
    """
    if keep is None or keep <= 0:
        return
    complete = [path for _, path in checkpoint_folders(output_dir) if is_complete(path)]
    spare = {Path(protected).resolve()} if protected else set()
    for path in complete[: max(len(complete) - keep, 0)]:
        if path.resolve() in spare:
            continue
        clear_complete(path)
        shutil.rmtree(path)
