"""Tests of the E5 training mixture loader (``llm2vec.dataset.E5Dataset``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from llm2vec.dataset import (
    E5_INSTRUCTIONS,
    DatasetError,
    E5Dataset,
    TrainSample,
    load_train_dataset,
)
from llm2vec.dataset.jsonl_reader import DatasetNotFoundError

SEP = "!@#$%^&*()"

ALL_FILES = [
    "allnli", "dureader", "eli5_question_answer", "fever", "hotpot_qa", "miracl", "mrtydi",
    "msmarco_passage", "msmarco_document", "nq", "quora_duplicates", "squad", "t2ranking",
    "trivia_qa",
]


def write_e5_file(data_dir: Path, name: str, count: int, negatives: bool = True) -> Path:
    """Write ``count`` E5-format lines whose texts say which file and line they come from."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / f"{name}.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        for i in range(count):
            record = {"query": f"{name} q{i}", "positive": f"{name} p{i}"}
            if negatives:
                record["negative"] = f"{name} n{i}"
            handle.write(json.dumps(record) + "\n")
    return path


def write_lines(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def good_line(i: int) -> str:
    return json.dumps({"query": f"q{i}", "positive": f"p{i}", "negative": f"n{i}"})


def all_samples(dataset: E5Dataset) -> list[TrainSample]:
    return [dataset[i] for i in range(len(dataset))]


@pytest.fixture
def mixture(tmp_path: Path) -> Path:
    data_dir = tmp_path / "echo-data"
    write_e5_file(data_dir, "allnli", 10)
    write_e5_file(data_dir, "nq", 7)
    write_e5_file(data_dir, "fever", 5)
    return data_dir


def test_instruction_table_matches_paper() -> None:
    assert list(E5_INSTRUCTIONS) == ALL_FILES
    assert E5_INSTRUCTIONS["allnli"] == (
        "Given a premise, retrieve a hypothesis that is entailed by the premise",
        "Retrieve semantically similar text",
    )
    assert E5_INSTRUCTIONS["quora_duplicates"] == (
        "Given a question, retrieve questions that are semantically equivalent to the given "
        "question",
        "Find questions that have the same meaning as the input question",
    )
    assert E5_INSTRUCTIONS["squad"] == ("Retrieve Wikipedia passages that answer the question",)
    assert [len(v) for k, v in E5_INSTRUCTIONS.items() if len(v) != 1] == [2, 2]


def test_chunks_are_task_homogeneous_and_tails_dropped(mixture: Path) -> None:
    dataset = E5Dataset(mixture, per_device_batch_size=2, world_size=2, seed=0,
                        files=["allnli", "nq", "fever"])
    assert dataset.chunk_size == 4
    # allnli 10 -> 2 chunks (2 dropped), nq 7 -> 1 (3 dropped), fever 5 -> 1 (1 dropped).
    assert len(dataset) == 16
    assert Counter(dataset.tasks_per_chunk()) == {"allnli": 2, "nq": 1, "fever": 1}
    assert dataset.samples_dropped == {"allnli": 2, "nq": 3, "fever": 1}
    assert dataset.samples_read == {"allnli": 10, "nq": 7, "fever": 5}

    samples = all_samples(dataset)
    for k, task in enumerate(dataset.tasks_per_chunk()):
        chunk = samples[k * 4 : (k + 1) * 4]
        assert {s.task for s in chunk} == {task}
        assert all(s.positive.startswith(f"{SEP}{task} p") for s in chunk)
    # The per-device batches accelerate hands to ranks 0 and 1 (batch k*W + r) are single-task.
    for start in range(0, len(samples), 2):
        assert len({s.task for s in samples[start : start + 2]}) == 1
    # No sample is repeated.
    assert len({s.query for s in samples}) == 16


def test_same_seed_same_order_different_seed_different_order(mixture: Path) -> None:
    def order(seed: int) -> list[str]:
        dataset = E5Dataset(mixture, 2, world_size=1, seed=seed, files=["allnli", "nq", "fever"])
        return [s.query for s in all_samples(dataset)]

    assert order(7) == order(7)
    assert order(7) != order(8)
    assert sorted(order(7)) == sorted(order(8))


def test_files_given_in_other_order_give_same_data_order(mixture: Path) -> None:
    a = E5Dataset(mixture, 2, seed=3, files=["allnli", "nq", "fever"])
    b = E5Dataset(mixture, 2, seed=3, files=["fever", "allnli", "nq.jsonl"])
    assert all_samples(a) == all_samples(b)


def test_text_format_exact(tmp_path: Path) -> None:
    write_e5_file(tmp_path, "fever", 1)
    dataset = E5Dataset(tmp_path, per_device_batch_size=1, files=["fever"])
    assert dataset[0] == TrainSample(
        query="Given a claim, retrieve documents that support or refute the claim; "
        "!@#$%^&*()fever q0",
        positive="!@#$%^&*()fever p0",
        negative="!@#$%^&*()fever n0",
        task="fever",
    )


@pytest.mark.parametrize("name", ["allnli", "quora_duplicates"])
def test_two_instructions_alternate_by_line_index(tmp_path: Path, name: str) -> None:
    write_e5_file(tmp_path, name, 5)
    dataset = E5Dataset(tmp_path, per_device_batch_size=1, files=[name])
    by_line = {s.query.rsplit(" q", 1)[1]: s.query for s in all_samples(dataset)}
    first, second = E5_INSTRUCTIONS[name]
    assert by_line["0"] == f"{first}; {SEP}{name} q0"
    assert by_line["1"] == f"{second}; {SEP}{name} q1"
    assert by_line["2"] == f"{first}; {SEP}{name} q2"
    assert by_line["3"] == f"{second}; {SEP}{name} q3"
    assert by_line["4"] == f"{first}; {SEP}{name} q4"


def test_files_restriction_reads_only_those_files(tmp_path: Path) -> None:
    write_e5_file(tmp_path, "nq", 4)
    write_e5_file(tmp_path, "squad", 4)
    dataset = E5Dataset(tmp_path, per_device_batch_size=2, files=["squad"])
    assert set(dataset.tasks_per_chunk()) == {"squad"}
    assert len(dataset) == 4
    assert dataset[0].query.startswith(
        f"Retrieve Wikipedia passages that answer the question; {SEP}squad q"
    )


def test_unknown_file_name_lists_valid_names(mixture: Path) -> None:
    with pytest.raises(DatasetError) as error:
        E5Dataset(mixture, 2, files=["nq", "wikipedia"])
    message = str(error.value)
    assert "wikipedia" in message
    for name in ALL_FILES:
        assert name in message


def test_missing_directory_names_every_file_and_the_source(tmp_path: Path) -> None:
    missing = tmp_path / "cache" / "echo-data"
    with pytest.raises(DatasetNotFoundError) as error:
        E5Dataset(missing, 2)
    assert isinstance(error.value, FileNotFoundError)
    assert isinstance(error.value, ValueError)
    message = str(error.value)
    for name in ALL_FILES:
        assert f"{name}.jsonl" in message
    assert "https://github.com/jakespringer/echo-embeddings#training" in message
    assert str(missing) in message


def test_missing_file_is_named_before_reading(tmp_path: Path) -> None:
    write_e5_file(tmp_path, "nq", 4)
    with pytest.raises(DatasetNotFoundError) as error:
        E5Dataset(tmp_path, 2, files=["nq", "fever"])
    message = str(error.value)
    assert "missing file(s) fever.jsonl" in message
    assert "https://github.com/jakespringer/echo-embeddings#training" in message


def test_nested_unzip_directory_is_pointed_out(tmp_path: Path) -> None:
    write_e5_file(tmp_path / "echo-data", "nq", 4)
    with pytest.raises(DatasetNotFoundError, match="Found nq.jsonl in"):
        E5Dataset(tmp_path, 2, files=["nq"])


def test_malformed_json_names_file_and_line(tmp_path: Path) -> None:
    write_lines(tmp_path / "nq.jsonl", [good_line(0), good_line(1), '{"query": "q2", '])
    with pytest.raises(DatasetError, match=r"nq\.jsonl:3: malformed JSON"):
        E5Dataset(tmp_path, 1, files=["nq"])


def test_non_object_line_is_an_error(tmp_path: Path) -> None:
    write_lines(tmp_path / "nq.jsonl", [good_line(0), '["q1", "p1"]'])
    with pytest.raises(DatasetError, match=r"nq\.jsonl:2: expected a JSON object, got list"):
        E5Dataset(tmp_path, 1, files=["nq"])


def test_missing_key_names_file_line_and_key(tmp_path: Path) -> None:
    write_lines(tmp_path / "nq.jsonl", [good_line(0), json.dumps({"query": "q1"})])
    with pytest.raises(DatasetError, match=r"nq\.jsonl:2: missing key 'positive'"):
        E5Dataset(tmp_path, 1, files=["nq"])


@pytest.mark.parametrize(
    ("record", "match"),
    [
        ({"query": "  \t", "positive": "p"}, r"nq\.jsonl:2: key 'query' is empty"),
        ({"query": "q", "positive": ""}, r"nq\.jsonl:2: key 'positive' is empty"),
        ({"query": "q", "positive": 5}, r"nq\.jsonl:2: key 'positive' must be a string, got int"),
        ({"query": "q", "positive": "p", "negative": " "}, r"nq\.jsonl:2: key 'negative' is empty"),
    ],
)
def test_bad_text_names_file_line_and_key(tmp_path: Path, record: dict, match: str) -> None:
    write_lines(tmp_path / "nq.jsonl", [good_line(0), json.dumps(record)])
    with pytest.raises(DatasetError, match=match):
        E5Dataset(tmp_path, 1, files=["nq"])


def test_blank_lines_are_skipped_and_line_numbers_stay_physical(tmp_path: Path) -> None:
    write_lines(tmp_path / "nq.jsonl", [good_line(0), "", "   ", good_line(1), ""])
    assert len(E5Dataset(tmp_path, 1, files=["nq"])) == 2

    write_lines(tmp_path / "nq.jsonl", [good_line(0), "", "{oops"])
    with pytest.raises(DatasetError, match=r"nq\.jsonl:3:"):
        E5Dataset(tmp_path, 1, files=["nq"])


def test_negative_optional_unless_required(tmp_path: Path) -> None:
    write_e5_file(tmp_path, "nq", 2, negatives=False)
    dataset = E5Dataset(tmp_path, 2, files=["nq"])
    assert [s.negative for s in all_samples(dataset)] == [None, None]
    with pytest.raises(DatasetError, match=r"nq\.jsonl:1: missing key 'negative'"):
        E5Dataset(tmp_path, 2, files=["nq"], require_negatives=True)

    write_e5_file(tmp_path, "nq", 2)
    dataset = E5Dataset(tmp_path, 2, files=["nq"], require_negatives=True)
    assert sorted(s.negative for s in all_samples(dataset)) == [f"{SEP}nq n0", f"{SEP}nq n1"]


def test_zero_chunks_is_an_error(mixture: Path) -> None:
    with pytest.raises(DatasetError, match="larger than the number of samples of every file"):
        E5Dataset(mixture, per_device_batch_size=4, world_size=3, files=["allnli", "nq", "fever"])


def test_file_smaller_than_a_chunk_is_dropped_whole(mixture: Path) -> None:
    dataset = E5Dataset(mixture, per_device_batch_size=3, world_size=2,
                        files=["allnli", "nq", "fever"])
    assert Counter(dataset.tasks_per_chunk()) == {"allnli": 1, "nq": 1}
    assert dataset.samples_dropped == {"allnli": 4, "nq": 1, "fever": 5}
    assert len(dataset) == 12


@pytest.mark.parametrize(("batch", "world"), [(0, 1), (2, 0), (-1, 1), (True, 1), (2.0, 1)])
def test_invalid_batch_geometry(mixture: Path, batch: object, world: object) -> None:
    with pytest.raises(DatasetError, match="must be a positive integer"):
        E5Dataset(mixture, batch, world_size=world, files=["nq"])  # type: ignore[arg-type]


def test_indexing_bounds(mixture: Path) -> None:
    dataset = E5Dataset(mixture, 5, files=["allnli"])
    assert len(dataset) == 10
    assert dataset[-1] == dataset[9]
    with pytest.raises(IndexError):
        dataset[10]


def test_load_train_dataset_e5(mixture: Path) -> None:
    dataset = load_train_dataset("e5", str(mixture), 2, 2, 0, files=["allnli", "nq", "fever"])
    assert isinstance(dataset, E5Dataset)
    reference = E5Dataset(mixture, 2, world_size=2, seed=0, files=["allnli", "nq", "fever"])
    assert all_samples(dataset) == all_samples(reference)


def test_load_train_dataset_rejects_unknown_name_and_default_instruction(mixture: Path) -> None:
    with pytest.raises(DatasetError, match="valid names are: E5, jsonl"):
        load_train_dataset("msmarco", str(mixture), 2, 1, 0)
    with pytest.raises(DatasetError, match="default_instruction applies only"):
        load_train_dataset("E5", str(mixture), 2, 1, 0, files=["nq"], default_instruction="x")
