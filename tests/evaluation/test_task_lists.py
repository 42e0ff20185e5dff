"""The paper's task lists: known to mteb, complete instructions, the right counts and subsets."""

from __future__ import annotations

import json
import os
from pathlib import Path

import mteb
import pytest

from llm2vec.evaluation.instructions import default_instructions_path, load_task_instructions
from llm2vec.evaluation.task_lists import (
    CATEGORIES,
    CQADUPSTACK_SUBSETS,
    MTEB56,
    NAMED_LISTS,
    SUBSET15,
    build_mteb_task,
    category_counts,
    paper_task_name,
    resolve_task_names,
)

REPO = Path(__file__).resolve().parents[2]
# mteb's task types of the MTEB v1 categories (CQADupstack forums are retrieval tasks)
STS_TASKS = ("BIOSSES", "SICK-R", "STS12", "STS13", "STS14", "STS15", "STS16", "STS17", "STS22", "STSBenchmark")


def test_named_lists_count_like_the_paper():
    assert len(MTEB56) == 67  # 56 tasks, CQADupstack as its 12 forums
    assert len({paper_task_name(name) for name in MTEB56}) == 56
    assert category_counts(MTEB56) == {
        "Retrieval": 15,
        "Reranking": 4,
        "Clustering": 11,
        "PairClassification": 3,
        "Classification": 12,
        "STS": 10,
        "Summarization": 1,
    }
    assert len(SUBSET15) == 15
    assert category_counts(SUBSET15) == {
        "Retrieval": 3,
        "Reranking": 2,
        "Clustering": 3,
        "PairClassification": 1,
        "Classification": 3,
        "STS": 3,
        "Summarization": 0,
    }
    assert set(SUBSET15) <= set(MTEB56)
    assert set(CATEGORIES) == set(MTEB56.values())


def test_every_listed_task_is_an_mteb_task_of_its_category_and_nothing_is_downloaded():
    for name, category in MTEB56.items():
        task = build_mteb_task(name)  # reads mteb's registry only (the hub is offline in tests)
        assert task.metadata.name == name
        assert task.metadata.type == category, name
        assert not task.data_loaded
    # the paper's single CQADupstack task is mteb's aggregate of exactly these forums
    aggregate = mteb.get_task("CQADupstackRetrieval")
    assert [t.metadata.name for t in aggregate.metadata.tasks] == list(CQADUPSTACK_SUBSETS)


@pytest.mark.parametrize(
    ("name", "split", "subsets"),
    [
        ("STS17", "test", ["en-en"]),
        ("STS22", "test", ["en"]),
        ("AmazonCounterfactualClassification", "test", ["en"]),
        ("AmazonReviewsClassification", "test", ["en"]),
        ("MassiveIntentClassification", "test", ["en"]),
        ("MassiveScenarioClassification", "test", ["en"]),
        ("MTOPDomainClassification", "test", ["en"]),
        ("MTOPIntentClassification", "test", ["en"]),
        ("MSMARCO", "dev", ["default"]),
        ("SciFact", "test", ["default"]),
    ],
)
def test_tasks_run_on_the_english_subset_and_split_of_mteb_v1(name, split, subsets):
    task = build_mteb_task(name)
    assert list(task.eval_splits) == [split]
    assert list(task.hf_subsets) == subsets


def test_every_mteb56_task_has_an_instruction_ending_with_a_colon():
    instructions = load_task_instructions()
    missing = [name for name in MTEB56 if name not in instructions]
    assert missing == []
    for name in (*STS_TASKS, *CQADUPSTACK_SUBSETS, "CQADupstackRetrieval"):
        assert name in instructions
    assert {instructions[name] for name in STS_TASKS} == {"Retrieve semantically similar text:"}
    for name, instruction in instructions.items():
        assert instruction.endswith(":") and instruction == instruction.strip(), name
        assert "  " not in instruction, name
    assert instructions["ArguAna"] == "Given a claim, find documents that refute the claim:"


def test_instructions_ship_with_the_package_and_the_release_path_links_to_them():
    packaged = default_instructions_path()
    assert packaged == REPO / "llm2vec" / "evaluation" / "data" / "task_to_instructions.json"
    # the release's documented --task_to_instructions_fp is a relative symlink to the packaged file
    release_path = REPO / "test_configs" / "mteb" / "task_to_instructions.json"
    assert release_path.is_symlink() and not Path(os.readlink(release_path)).is_absolute()
    assert release_path.resolve() == Path(str(packaged)).resolve()
    assert load_task_instructions(release_path) == load_task_instructions()


def test_instructions_path_is_read_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="instructions file missing.json not found"):
        load_task_instructions("missing.json")
    (tmp_path / "mine.json").write_text(json.dumps({"SciFact": "Find evidence:"}))
    assert load_task_instructions("mine.json") == {"SciFact": "Find evidence:"}


def test_instruction_keys_are_mteb_task_names():
    for name in load_task_instructions():
        mteb.get_task(name)  # KeyError for a misspelt name


def test_task_lists_json_matches_the_module():
    data = json.loads((REPO / "test_configs" / "mteb" / "task_lists.json").read_text())
    assert data == {key: dict(value) for key, value in NAMED_LISTS.items()}


def test_resolve_task_names():
    assert resolve_task_names("SciFact") == ["SciFact"]
    assert resolve_task_names("SciFact, STS12 ,SciFact") == ["SciFact", "STS12"]
    assert resolve_task_names(["SciFact", "ArguAna,NQ"]) == ["SciFact", "ArguAna", "NQ"]
    assert resolve_task_names("subset15") == list(SUBSET15)
    assert resolve_task_names("MTEB56") == list(MTEB56)
    assert resolve_task_names("subset15,SummEval") == [*SUBSET15, "SummEval"]
    assert resolve_task_names("CQADupstackRetrieval") == list(CQADUPSTACK_SUBSETS)
    with pytest.raises(ValueError):
        resolve_task_names(" , ")
