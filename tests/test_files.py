"""Atomic writes and the removal of temporaries that killed processes left."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from llm2vec.files import remove_stale_temporaries, temporary_path, write_atomically, write_text_atomically


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    path = write_text_atomically(tmp_path / "result.json", "old")

    def broken(target: Path) -> None:
        target.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, broken)
    assert path.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["result.json"]
    write_text_atomically(path, "new")
    assert path.read_text() == "new"


def test_only_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    mine = temporary_path(tmp_path / "a.json")
    mine.write_text("being written")
    (tmp_path / f".b.json.{dead}.tmp").write_text("left by a killed run")
    (tmp_path / f".staging.{dead}.tmp").mkdir()
    (tmp_path / f".staging.{dead}.tmp" / "x.json").write_text("{}")
    (tmp_path / ".hidden_but_not_temporary").write_text("kept")
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted([f".b.json.{dead}.tmp", f".staging.{dead}.tmp"])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([mine.name, ".hidden_but_not_temporary"])
    assert mine.name == f".a.json.{os.getpid()}.tmp"


def test_a_folder_is_replaced_whole_and_nothing_else_stays(tmp_path: Path) -> None:
    from llm2vec.files import replace_folder

    target = tmp_path / "built"
    target.mkdir()
    (target / "old.txt").write_text("old build")
    staged = tmp_path / ".built.staging"
    staged.mkdir()
    (staged / "new.txt").write_text("new build")
    assert replace_folder(staged, target) == target
    assert [p.name for p in target.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built"]
    fresh = tmp_path / ".other.staging"
    fresh.mkdir()
    replace_folder(fresh, tmp_path / "absent")  # nothing to replace
    assert (tmp_path / "absent").is_dir()


def test_a_staged_folder_replaces_the_target_only_when_its_block_completes(tmp_path: Path) -> None:
    from llm2vec.files import staged_folder

    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout)
    target = tmp_path / "built"
    (tmp_path / f".built.{dead}.tmp").mkdir()  # a build killed half-way
    (tmp_path / f".built.{dead}.tmp" / "part.txt").write_text("half")
    messages: list[str] = []
    with staged_folder(target, log=messages.append) as staging:
        assert staging.is_dir() and not any(staging.iterdir()) and not target.exists()
        (staging / "a.txt").write_text("first build")
    assert [p.name for p in target.iterdir()] == ["a.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built"]
    assert len(messages) == 1 and f".built.{dead}.tmp" in messages[0]

    with pytest.raises(RuntimeError, match="source changed"):
        with staged_folder(target) as staging:
            (staging / "b.txt").write_text("second build, broken")
            raise RuntimeError("source changed")
    assert [p.name for p in target.iterdir()] == ["a.txt"] and (target / "a.txt").read_text() == "first build"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["built"]

    with staged_folder(target) as staging:
        (staging / "c.txt").write_text("third build")
    assert [p.name for p in target.iterdir()] == ["c.txt"]
