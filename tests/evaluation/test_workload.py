"""MTEB56's workload from mteb's shipped statistics: counts, English subsets, drawn lengths."""

from __future__ import annotations

from llm2vec.evaluation.workload import mteb56_text_groups, sample_lengths, task_text_groups


def test_a_retrieval_task_has_its_corpus_and_queries() -> None:
    groups = {g.group: g for g in task_text_groups("SciFact")}
    assert set(groups) == {"documents", "queries"}
    assert groups["documents"].count == 5183 and groups["queries"].count == 300
    assert groups["documents"].min_chars == 221 and groups["documents"].max_chars == 10127
    assert round(groups["documents"].mean_chars, 2) == 1499.41


def test_multilingual_tasks_count_their_english_subsets_only() -> None:
    sts17 = task_text_groups("STS17")
    assert {g.group for g in sts17} == {"text1", "text2"}
    assert all(g.count < 1000 for g in sts17)  # en-en has 250 pairs; all subsets together 5,346


def test_mteb56_groups_and_drawn_lengths() -> None:
    groups = mteb56_text_groups()
    assert len({g.task for g in groups}) == 67  # CQADupstack as its 12 forums
    fever = {g.task: g for g in groups if g.group == "documents" and "FEVER" in g.task}
    assert fever["FEVER"].count == 5416568 and fever["ClimateFEVER"].count == 5416593
    draws = sample_lengths(groups, 500, seed=1)
    assert all(g.min_chars <= n <= g.max_chars for g, n in draws)
    assert draws == sample_lengths(groups, 500, seed=1)
