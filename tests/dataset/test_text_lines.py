"""Sentence files for SimCSE: each sentence is its own positive; bad input is named."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from llm2vec.dataset import load_train_dataset
from llm2vec.dataset.jsonl_reader import DatasetError, DatasetNotFoundError
from llm2vec.tokenization import SEPARATOR


def _load(path: Path, **options):
    return load_train_dataset("Wiki1M", path, per_device_batch_size=2, world_size=1, seed=1, **options)


def test_each_sentence_is_query_and_positive(tmp_path: Path, caplog) -> None:
    path = tmp_path / "wiki.txt"
    path.write_text("The first sentence.\n\n  The second one.  \nA third.\nAnd a fourth.\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        dataset = _load(path)
    assert len(dataset) == 4
    samples = [dataset[i] for i in range(len(dataset))]
    assert {s.query for s in samples} == {SEPARATOR + t for t in ("The first sentence.", "The second one.", "A third.",
                                                                  "And a fourth.")}
    assert all(s.query == s.positive and s.negative is None and s.task == "wiki" for s in samples)
    assert "1 blank line(s) left out, 4 sentences read" in caplog.text
    # "text" is the same reader; a folder means its *.txt files, one task each
    (tmp_path / "more.txt").write_text("x y\nz w\n", encoding="utf-8")
    folder = load_train_dataset("text", tmp_path, per_device_batch_size=2, world_size=1, seed=1)
    assert sorted({folder[i].task for i in range(len(folder))}) == ["more", "wiki"]


def test_bad_input_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbroken \xff line\n")
    with pytest.raises(DatasetError, match=r"bad\.txt:2: not UTF-8"):
        _load(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DatasetError, match="holds no sentence"):
        _load(empty)
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        _load(tmp_path / "missing.txt")
    (tmp_path / "sub").mkdir()
    with pytest.raises(DatasetError, match="no \\*.txt file"):
        _load(tmp_path / "sub")
    good = tmp_path / "good.txt"
    good.write_text("a\nb\n")
    for options, message in (({"require_negatives": True}, "no hard negatives"),
                             ({"files": ["good"]}, "dataset_files applies to E5 and jsonl"),
                             ({"default_instruction": "Represent"}, "default_instruction applies only")):
        with pytest.raises(DatasetError, match=message):
            _load(good, **options)
