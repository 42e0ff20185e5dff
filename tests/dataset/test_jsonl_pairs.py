"""Tests of the generic JSONL pairs loader (``llm2vec.dataset.JsonlPairsDataset``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from llm2vec.dataset import (
    DatasetError,
    JsonlPairsDataset,
    TrainSample,
    load_train_dataset,
)
from llm2vec.dataset.jsonl_reader import DatasetNotFoundError

SEP = "!@#$%^&*()"


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def pairs(tag: str, count: int, **extra: str) -> list[dict]:
    return [{"query": f"{tag} q{i}", "positive": f"{tag} p{i}", **extra} for i in range(count)]


def all_samples(dataset: JsonlPairsDataset) -> list[TrainSample]:
    return [dataset[i] for i in range(len(dataset))]


def test_instruction_default_instruction_and_none(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mine.jsonl",
        [
            {"query": "q0", "positive": "p0", "negative": "n0", "instruction": "Find the answer"},
            {"query": "q1", "positive": "p1"},
        ],
    )
    plain = {s.query: s for s in all_samples(JsonlPairsDataset(path, 1))}
    assert plain["Find the answer; " + SEP + "q0"] == TrainSample(
        query="Find the answer; !@#$%^&*()q0",
        positive="!@#$%^&*()p0",
        negative="!@#$%^&*()n0",
        task="mine",
    )
    assert plain[SEP + "q1"] == TrainSample(
        query="!@#$%^&*()q1", positive="!@#$%^&*()p1", negative=None, task="mine"
    )

    defaulted = all_samples(JsonlPairsDataset(path, 1, default_instruction="Retrieve text"))
    assert sorted(s.query for s in defaulted) == [
        "Find the answer; !@#$%^&*()q0",  # the line's own instruction wins
        "Retrieve text; !@#$%^&*()q1",
    ]


def test_directory_input_one_task_per_file(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "data" / "a.jsonl", pairs("a", 9))
    write_jsonl(tmp_path / "data" / "b.jsonl", pairs("b", 6))
    (tmp_path / "data" / "notes.txt").write_text("not data")
    dataset = JsonlPairsDataset(tmp_path / "data", per_device_batch_size=2, world_size=2, seed=1)
    assert [p.name for p in dataset.paths] == ["a.jsonl", "b.jsonl"]
    assert len(dataset) == 12
    assert Counter(dataset.tasks_per_chunk()) == {"a": 2, "b": 1}
    assert dataset.samples_dropped == {"a": 1, "b": 2}
    samples = all_samples(dataset)
    for k, task in enumerate(dataset.tasks_per_chunk()):
        chunk = samples[k * 4 : (k + 1) * 4]
        assert all(s.task == task and s.query.startswith(f"{SEP}{task} q") for s in chunk)


def test_sequence_of_files_and_seeds(tmp_path: Path) -> None:
    a = write_jsonl(tmp_path / "a.jsonl", pairs("a", 8))
    b = write_jsonl(tmp_path / "b.jsonl", pairs("b", 8))

    def order(seed: int) -> list[str]:
        return [s.query for s in all_samples(JsonlPairsDataset([a, str(b)], 2, seed=seed))]

    assert order(0) == order(0)
    assert order(0) != order(1)
    assert len(order(0)) == 16


def test_same_stem_in_two_directories_gets_distinct_tasks(tmp_path: Path) -> None:
    one = write_jsonl(tmp_path / "one" / "data.jsonl", pairs("x", 2))
    two = write_jsonl(tmp_path / "two" / "data.jsonl", pairs("y", 2))
    dataset = JsonlPairsDataset([one, two], 2)
    assert sorted(dataset.tasks_per_chunk()) == [str(one), str(two)]


def test_file_listed_twice_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", pairs("a", 4))
    with pytest.raises(DatasetError, match="listed twice"):
        JsonlPairsDataset([path, tmp_path], 2)


def test_missing_path_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(DatasetNotFoundError, match="nope.jsonl does not exist"):
        JsonlPairsDataset(tmp_path / "nope.jsonl", 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="contains no \\*.jsonl file"):
        JsonlPairsDataset(tmp_path / "empty", 2)


def test_require_negatives(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [{"query": "q0", "positive": "p0", "negative": "n0"}, {"query": "q1", "positive": "p1"}],
    )
    assert sorted(str(s.negative) for s in all_samples(JsonlPairsDataset(path, 1))) == [
        "!@#$%^&*()n0", "None",
    ]
    with pytest.raises(DatasetError, match=r"a\.jsonl:2: missing key 'negative'"):
        JsonlPairsDataset(path, 1, require_negatives=True)


def test_null_negative_counts_as_absent(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"query": "q", "positive": "p", "negative": None}])
    assert JsonlPairsDataset(path, 1)[0].negative is None


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({"query": "q", "positive": "p", "instruction": ""}, r"a\.jsonl:2: key 'instruction' is"),
        ({"query": "q", "positive": "p", "instruction": 3}, r"a\.jsonl:2: key 'instruction' must"),
        ({"positive": "p"}, r"a\.jsonl:2: missing key 'query'"),
        ({"query": ["q"], "positive": "p"}, r"a\.jsonl:2: key 'query' must be a string, got list"),
    ],
)
def test_bad_lines_name_file_line_and_key(tmp_path: Path, record: dict, match: str) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"query": "q", "positive": "p"}, record])
    with pytest.raises(DatasetError, match=match):
        JsonlPairsDataset(path, 1)


def test_invalid_utf8_names_line(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"query": "q", "positive": "p"}\n{"query": "\xff", "positive": "p"}\n')
    with pytest.raises(DatasetError, match=r"a\.jsonl:2: not valid UTF-8"):
        JsonlPairsDataset(path, 1)


def test_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes('\ufeff{"query": "q", "positive": "p"}\n'.encode())
    assert JsonlPairsDataset(path, 1)[0].query == SEP + "q"


def test_invalid_default_instruction(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", pairs("a", 2))
    with pytest.raises(DatasetError, match="default_instruction must be a non-empty string"):
        JsonlPairsDataset(path, 1, default_instruction="  ")


def test_zero_chunks_is_an_error(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", pairs("a", 3))
    write_jsonl(tmp_path / "b.jsonl", pairs("b", 5))
    with pytest.raises(DatasetError, match=r"= 6 is larger than .*a=3, b=5"):
        JsonlPairsDataset(tmp_path, per_device_batch_size=3, world_size=2)


def test_load_train_dataset_jsonl(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", pairs("a", 4))
    write_jsonl(tmp_path / "b.jsonl", pairs("b", 4))
    dataset = load_train_dataset("JSONL", str(tmp_path), 2, 1, 0, default_instruction="Do it")
    assert isinstance(dataset, JsonlPairsDataset)
    assert sorted(dataset.tasks_per_chunk()) == ["a", "a", "b", "b"]
    assert dataset[0].query.startswith("Do it; " + SEP)

    only_b = load_train_dataset("jsonl", str(tmp_path), 2, 1, 0, files=["b"])
    assert only_b.tasks_per_chunk() == ["b", "b"]
    with pytest.raises(DatasetError, match="valid names are: a, b"):
        load_train_dataset("jsonl", str(tmp_path), 2, 1, 0, files=["c"])
