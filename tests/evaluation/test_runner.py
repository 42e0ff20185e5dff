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


def test_the_fingerprint_follows_weights_settings_and_dtype_not_paths(tmp_path, tiny_llama_dir):
    from llm2vec.llm2vec_contrastive import LLM2VecContrastive, LoraSettings

    def revision(base, adapter=None, **kwargs):
        return runner.evaluation_fingerprint(base, adapter, **{"dtype": "float32", **kwargs})[0]

    reference = revision(tiny_llama_dir)
    assert len(reference) == 16
    assert revision(shutil.copytree(tiny_llama_dir, tmp_path / "elsewhere")) == reference  # same weights
    assert revision(tiny_llama_dir, dtype="bfloat16") != reference
    assert revision(tiny_llama_dir, max_length=64) != reference
    assert revision(tiny_llama_dir, attn_implementation="eager") != reference
    assert revision(tiny_llama_dir, pooling_mode="mean") != reference
    assert revision(tiny_llama_dir, pooling_mode="eos_token") == reference  # the checkpoint's own setting
    model = LLM2VecContrastive.from_pretrained(tiny_llama_dir)
    model.add_lora(LoraSettings(lora_r=4), init_lora_weights=False)
    adapter = model.save(tmp_path / "adapter")
    with_adapter = revision(tiny_llama_dir, adapter)
    assert with_adapter != reference
    for parameter in model.parameters():  # trained again into the same folder: new weights
        if parameter.requires_grad:
            parameter.data.add_(0.5)
    model.save(adapter)
    retrained = revision(tiny_llama_dir, adapter)
    assert retrained != with_adapter
    # merging rounds the merged weights in bf16: keyed apart, but a no-op without an adapter
    assert revision(tiny_llama_dir, adapter, merge_peft=True) != retrained
    assert revision(tiny_llama_dir, merge_peft=True) == reference
