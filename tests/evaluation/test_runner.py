"""The evaluation runner: which tasks run (done, changed local data, --overwrite) and building
MTEB and local tasks together with their instructions."""

from __future__ import annotations

import json
import shutil

import mteb
import pytest

from llm2vec.evaluation import runner
from llm2vec.evaluation.local_tasks import load_local_tasks
from llm2vec.evaluation.mteb_encoder import build_model_meta
from llm2vec.evaluation.runner import OutputFolderCache
from tests.helpers import LOCAL_TASKS as DATA


def test_plan_skips_done_tasks_and_reruns_changed_local_data(tmp_path):
    shutil.copytree(DATA / "tiny_retrieval", tmp_path / "tiny_retrieval")
    spec = json.loads((DATA / "tiny_retrieval.json").read_text())
    (tmp_path / "tiny_retrieval.json").write_text(json.dumps(spec))
    cache = OutputFolderCache(tmp_path / "out")
    meta = build_model_meta("org/model")
    assert cache.get_task_result_path("TinyRetrieval", meta) == (
        tmp_path / "out" / "org__model" / "no_revision_available" / "TinyRetrieval.json"
    )

    (task,) = load_local_tasks(tmp_path / "tiny_retrieval.json")
    (plan,) = runner.plan_tasks([task], cache, meta)
    assert plan.run and plan.overwrite_strategy == "only-missing"

    scores = {"test": {"default": {"ndcg_at_10": 0.5, "main_score": 0.5}}}
    cache.save_to_cache(mteb.TaskResult.from_task_results(task, scores, evaluation_time=0.0), meta)
    (plan,) = runner.plan_tasks([task], cache, meta)
    assert not plan.run
    (plan,) = runner.plan_tasks([task], cache, meta, overwrite=True)
    assert plan.run and plan.overwrite_strategy == "always"

    with open(tmp_path / "tiny_retrieval" / "queries.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "q_new", "text": "a new query"}) + "\n")
    (task,) = load_local_tasks(tmp_path / "tiny_retrieval.json")
    (plan,) = runner.plan_tasks([task], cache, meta)
    assert plan.run and plan.overwrite_strategy == "always" and "changed" in plan.reason


def test_mteb_tasks_and_local_tasks_are_built_together():
    tasks = runner.build_tasks("SciFact,STS17", DATA / "tiny_sts.json")
    assert [t.metadata.name for t in tasks] == ["SciFact", "STS17", "TinySTS"]
    assert list(tasks[1].hf_subsets) == ["en-en"]
    instructions = runner.collect_instructions(tasks, None)
    assert instructions["TinySTS"] == "Retrieve semantically similar text:"
    with pytest.raises(ValueError, match="no tasks"):
        runner.build_tasks(None, None)
