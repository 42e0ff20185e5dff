"""experiments/mteb_eval_custom.py on two processes (torchrun, gloo) equals one process on every
local task type, and an adapter changed in place never reuses the embeddings of the old one."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import torch

from llm2vec.evaluation.data_parallel import Ranks, counted_in_parallel, split_by_tokens
from llm2vec.evaluation.embedding_cache import EmbeddingCache
from tests.forked_runs import run_forked
from tests.helpers import REPO, free_port, run_checked, subprocess_env, torchrun, write_local_task_specs

SCRIPT = REPO / "experiments" / "mteb_eval_custom.py"
TASK_TYPES = ("tiny_sts", "tiny_classification", "tiny_retrieval", "tiny_clustering", "tiny_pair_classification",
              "tiny_reranking")


def _scores(output: Path) -> dict[str, float]:
    return {
        path.stem: json.loads(path.read_text())["scores"]["test"][0]["main_score"]
        for path in sorted(output.glob("*/*/Tiny*.json"))
    }


def _cached(output: Path) -> dict[bytes, torch.Tensor]:
    (folder,) = (output / "embedding_cache").iterdir()
    cache = EmbeddingCache(folder)
    keys = list(cache._index)
    return {key: torch.from_numpy(vector) for key, vector in zip(keys, (cache.get(keys)[i] for i in range(len(keys))))}


def _argv(model: Path, tasks: Path, output: Path, *extra: str) -> list[str]:
    return ["--base_model_name_or_path", str(model), "--local_tasks", str(tasks), "--output_dir", str(output),
            "--batch_size", "4", "--cache_chunk_texts", "8", "--device", "cpu", *extra]


def test_split_by_tokens_balances_and_covers() -> None:
    lengths = [50, 3, 40, 7, 7, 30, 12, 1]
    shares = split_by_tokens(lengths, 2)
    assert sorted(i for share in shares for i in share) == list(range(len(lengths)))
    sums = [sum(lengths[i] for i in share) for share in shares]
    assert abs(sums[0] - sums[1]) <= max(lengths)
    assert sums == [76, 74]  # 50,12,7,7 | 40,30,3,1 (longest first, each to the lighter share)
    assert split_by_tokens([5, 5], 3) == [[0], [1], []]


def test_token_counting_is_shared_among_ranks() -> None:
    """Each of 3 ranks counts every third text; all of them receive every count, in order."""
    texts = [f"text {i} " * (i + 1) for i in range(8)]
    calls: dict[int, list[str]] = {}

    def count_for(rank: int):
        def count(items: list[str]) -> list[int]:
            calls[rank] = items
            return [len(item.split()) for item in items]
        return count

    class SimulatedRanks(Ranks):
        """Rank 0 of 3; gather runs the other ranks' counting as theirs would."""

        def gather(self, value):
            others = [(list(range(r, len(texts), 3)), count_for(r)(texts[r::3])) for r in (1, 2)]
            return [value, *others]

    counts = counted_in_parallel(SimulatedRanks(0, 3), texts, count_for(0))
    assert counts == [2 * (i + 1) for i in range(8)]
    assert calls[0] == texts[0::3] and len(calls[0]) == 3  # rank 0 tokenized 3 of the 8 texts
    assert counted_in_parallel(Ranks(), texts, count_for(0)) == counts


@pytest.mark.slow
def test_two_processes_equal_one_on_every_task_type(tmp_path, tiny_llama_dir) -> None:
    tasks = write_local_task_specs(tmp_path / "tasks", TASK_TYPES)
    single = tmp_path / "single"
    run = run_forked(SCRIPT, _argv(tiny_llama_dir, tasks, single), env=subprocess_env())
    assert run.returncode == 0, run.stderr[-4000:]
    parallel = tmp_path / "parallel"
    result = run_checked([*torchrun(2), str(SCRIPT), *_argv(tiny_llama_dir, tasks, parallel)], timeout=900)
    assert "with 2 process(es)" in result.stdout

    expected, got = _scores(single), _scores(parallel)
    assert sorted(expected) == sorted(got) and len(expected) == len(TASK_TYPES)
    for task, score in expected.items():
        assert got[task] == pytest.approx(score, abs=1e-4), task
    one, two = _cached(single), _cached(parallel)
    assert one.keys() == two.keys() and len(one) > 50
    assert max((one[k] - two[k]).abs().max().item() for k in one) <= 1e-5
    # rank 0 alone wrote results and cache chunks
    assert {p.name.split("-")[1] for p in (parallel / "embedding_cache").glob("*/chunk-*")} == {"rank0"}

    # a second parallel run reads everything from the cache
    again = run_checked([*torchrun(2), str(SCRIPT), *_argv(tiny_llama_dir, tasks, parallel, "--overwrite")],
                        timeout=900)
    assert re.search(r"texts embedded: 0, read from the embedding cache: [1-9]", again.stdout), again.stdout[-2000:]
    assert _scores(parallel) == got


def _adapter(base: Path, folder: Path, seed: int) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    model = AutoModel.from_pretrained(base)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.copy_(torch.randn(parameter.shape, generator=generator) * 0.5)
    peft_model.save_pretrained(folder)
    return folder


@pytest.mark.slow
def test_an_adapter_changed_in_place_is_embedded_again(tmp_path, tiny_llama_dir) -> None:
    tasks = write_local_task_specs(tmp_path / "tasks", ["tiny_sts"])
    adapter = _adapter(tiny_llama_dir, tmp_path / "adapter", seed=1)
    cache = tmp_path / "cache"

    def run(output: Path, *extra: str) -> tuple[str, dict[str, float]]:
        argv = _argv(tiny_llama_dir, tasks, output, "--peft_model_name_or_path", str(adapter), *extra)
        result = run_forked(SCRIPT, argv, env=subprocess_env())
        assert result.returncode == 0, result.stderr[-4000:]
        return result.stdout, _scores(output)

    first_log, first = run(tmp_path / "first", "--embedding_cache_dir", str(cache))
    assert "read from the embedding cache: 0" in first_log
    _adapter(tiny_llama_dir, adapter, seed=2)  # same path, other weights
    second_log, second = run(tmp_path / "second", "--embedding_cache_dir", str(cache))
    assert "read from the embedding cache: 0" in second_log  # the old adapter's embeddings are not reused
    assert second["TinySTS"] != pytest.approx(first["TinySTS"], abs=1e-3)
    assert len(list(cache.iterdir())) == 2
    _, fresh = run(tmp_path / "fresh", "--no_cache")
    assert fresh["TinySTS"] == pytest.approx(second["TinySTS"], abs=1e-6)
    report = run_forked(SCRIPT, ["--output_dir", str(tmp_path), "--embedding_cache_dir", str(cache), "--cache_report"],
                        env=subprocess_env())
    assert report.returncode == 0 and "2 model folder(s)" in report.stdout
    assert report.stdout.count(": 48 embeddings in 6 chunk(s)") == 2, report.stdout  # 48 texts, chunks of 8


@pytest.mark.slow
def test_accelerate_launch_runs_two_processes(tmp_path, tiny_llama_dir) -> None:
    """`accelerate launch --multi_gpu` starts the processes through torch's launcher; without GPUs
    the evaluation joins them with gloo."""
    tasks = write_local_task_specs(tmp_path / "tasks", ["tiny_sts"])
    single = run_forked(SCRIPT, _argv(tiny_llama_dir, tasks, tmp_path / "single"), env=subprocess_env())
    assert single.returncode == 0, single.stderr[-4000:]
    launcher = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
                "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
                "--main_process_port", str(free_port())]
    result = run_checked([*launcher, str(SCRIPT), *_argv(tiny_llama_dir, tasks, tmp_path / "accelerate")], timeout=600)
    assert "with 2 process(es)" in result.stdout
    assert _scores(tmp_path / "accelerate")["TinySTS"] == pytest.approx(_scores(tmp_path / "single")["TinySTS"], abs=1e-4)
