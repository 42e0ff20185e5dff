"""Part llm2vec14: its training texts, the untrained model as llm2vec would load it, and its plan."""

from __future__ import annotations

import json
from pathlib import Path

from llm2vec.llm2vec import LLM2Vec
from repro_small.llm2vec_campaign import LLM2VEC_SETTINGS, build_llm2vec_plan, build_llm2vec_suite, llm2vec_view
from repro_small.plan import Evaluate, Train


def _proxy_suite(root: Path) -> Path:
    (root / "train").mkdir(parents=True)
    (root / "eval").mkdir()
    (root / "eval" / "task.json").write_text("{}")
    pairs = [{"query": "Whales  sleep", "positive": "Whales rest\nhalf the brain."},
             {"query": "Markets fall", "positive": "Whales rest half the brain."}]  # the same text, other spacing
    (root / "train" / "a.jsonl").write_text("\n".join(json.dumps(p) for p in pairs) + "\n")
    (root / "manifest.json").write_text(json.dumps({"content_sha256": "abc", "spread_texts": "eval/task.json"}))
    return root


def test_training_texts_are_the_distinct_texts_of_the_pairs(tmp_path: Path) -> None:
    suite = build_llm2vec_suite(tmp_path / "l2v", _proxy_suite(tmp_path / "proxy"), log=lambda m: None)
    texts = (suite / "train" / "texts.txt").read_text().splitlines()
    assert texts == ["Whales sleep", "Whales rest half the brain.", "Markets fall"]
    assert (suite / "eval" / "task.json").is_file()
    assert build_llm2vec_suite(tmp_path / "l2v", tmp_path / "proxy", log=lambda m: None) == suite  # built once


def test_the_view_loads_with_llm2vecs_settings(tiny_llama_dir: Path, tmp_path: Path) -> None:
    view = llm2vec_view(tiny_llama_dir, tmp_path / "view")
    assert json.loads((view / "llm2vec_config.json").read_text()) == LLM2VEC_SETTINGS
    settings = LLM2Vec.resolve_config(view)
    assert (settings.enable_bidirectional, settings.pooling_mode, settings.tokenization) == (True, "mean", "llm2vec")
    assert LLM2Vec.resolve_config(tiny_llama_dir).tokenization == "anchor"  # the base itself is untouched


def test_simcse_starts_from_mntp_and_each_step_is_scored() -> None:
    plan = build_llm2vec_plan((1, 2))
    jobs = {job.name: job for job in plan.jobs}
    for seed in (1, 2):
        mntp, simcse = jobs[f"l2v-MNTP-s{seed}"], jobs[f"l2v-SimCSE-s{seed}"]
        assert isinstance(mntp, Train) and (mntp.stage, mntp.base) == ("mntp", "smollm2")
        assert isinstance(simcse, Train) and (simcse.stage, simcse.base) == ("simcse", mntp.name)
        scored = jobs[f"{simcse.name}@final"]
        assert isinstance(scored, Evaluate) and (scored.base, scored.adapter, scored.tasks) == (mntp.name, simcse.name, "full")
        assert plan.jobs.index(mntp) < plan.jobs.index(simcse) < plan.jobs.index(scored)
    assert jobs["l2v-Untrained-bidirectional-mean"].base == "smollm2-llm2vec"
