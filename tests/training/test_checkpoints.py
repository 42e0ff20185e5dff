"""Checkpoint folders: the completeness marker, the newest complete checkpoint, and what
``resume_from_checkpoint`` resolves to."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest

from llm2vec.training.checkpoints import (
    clear_complete,
    is_complete,
    last_complete_checkpoint,
    mark_complete,
    remove_old_checkpoints,
    resolve_resume_checkpoint,
)


def _checkpoints(output_dir: Path, complete: Sequence[int], interrupted: Sequence[int] = ()) -> None:
    for step in [*complete, *interrupted]:
        (output_dir / f"checkpoint-{step}").mkdir(parents=True)
    for step in complete:
        mark_complete(output_dir / f"checkpoint-{step}")


def test_marker_is_written_and_cleared(tmp_path: Path) -> None:
    assert not is_complete(tmp_path)
    mark_complete(tmp_path)
    assert is_complete(tmp_path)
    clear_complete(tmp_path)
    clear_complete(tmp_path)  # no marker: nothing to do
    assert not is_complete(tmp_path)


def test_last_complete_checkpoint_is_the_highest_step_with_a_marker(tmp_path: Path) -> None:
    assert last_complete_checkpoint(tmp_path / "absent") is None
    assert last_complete_checkpoint(tmp_path) is None
    _checkpoints(tmp_path, complete=[9, 100], interrupted=[200])
    (tmp_path / "checkpoint-300.tmp").mkdir()  # not a checkpoint-N folder
    (tmp_path / "checkpoint-400").write_text("a file, not a folder")
    # 100 > 9 as numbers (not as strings); 200 was interrupted while saving
    assert last_complete_checkpoint(tmp_path) == tmp_path / "checkpoint-100"


def test_resume_last_takes_the_newest_complete_checkpoint_or_starts_anew(tmp_path: Path) -> None:
    assert resolve_resume_checkpoint(None, tmp_path) is None
    assert resolve_resume_checkpoint("last", tmp_path) is None
    _checkpoints(tmp_path, complete=[4], interrupted=[6])
    assert resolve_resume_checkpoint("last", tmp_path) == str(tmp_path / "checkpoint-4")


def test_resume_from_a_given_folder_needs_a_complete_one(tmp_path: Path) -> None:
    _checkpoints(tmp_path, complete=[4], interrupted=[6])
    assert resolve_resume_checkpoint(str(tmp_path / "checkpoint-4"), "unused") == str(tmp_path / "checkpoint-4")
    with pytest.raises(ValueError, match="checkpoint-6 has no checkpoint_complete marker"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-6"), "unused")
    with pytest.raises(FileNotFoundError, match="checkpoint-8 is not a folder"):
        resolve_resume_checkpoint(str(tmp_path / "checkpoint-8"), "unused")


def test_resume_last_without_a_complete_checkpoint_starts_from_step_zero_and_says_so(tmp_path, caplog) -> None:
    _checkpoints(tmp_path, complete=[], interrupted=[2])
    with caplog.at_level("WARNING"):
        assert resolve_resume_checkpoint("last", tmp_path) is None
    assert "has no complete checkpoint" in caplog.text and "starting from step 0" in caplog.text


def test_old_checkpoints_go_only_once_complete_and_lose_their_mark_first(tmp_path: Path) -> None:
    _checkpoints(tmp_path, complete=[2, 4, 6, 8], interrupted=[10])
    remove_old_checkpoints(tmp_path, keep=2, protected=str(tmp_path / "checkpoint-2"))
    # the two newest complete ones stay, the protected (best) one stays, an incomplete one is not counted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-10", "checkpoint-2", "checkpoint-6", "checkpoint-8"]
    remove_old_checkpoints(tmp_path, keep=None)
    assert len(list(tmp_path.iterdir())) == 4
