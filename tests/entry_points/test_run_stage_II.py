"""experiments/run_stage_II.py end to end on CPU: Stage I -> Stage II -> reload, the loss falls
and held-out retrieval improves, resume repeats the uninterrupted run, and the gradient cache
changes nothing but the memory."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from llm2vec import LLM2Vec
from llm2vec.dataset import load_train_dataset
from llm2vec.loss.hard_negative_nll_loss import cosine_similarity_matrix
from llm2vec.testing.tiny_data import write_tiny_pairs_dir
from llm2vec.training.checkpoints import COMPLETE_MARKER
from tests.helpers import TINY_STAGE_I_CONFIG, TINY_STAGE_II_CONFIG, logged_steps, run_entry_point
from tests.stage_II_batch import ADAPTER_FILES, TEXTS, encode


def _stage_two_overrides(base: Path, data: Path) -> list[str]:
    return ["--model_name_or_path", str(base), "--dataset_file_path", str(data), "--disable_tqdm", "true"]


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, tiny_data_dir: Path) -> dict[str, Path]:
    """Stage I (4 steps) on the tiny Llama, then the tiny Stage II config (60 steps) on its output."""
    root = tmp_path_factory.mktemp("stage_II_pipeline")
    stage_one, stage_two = root / "s1", root / "s2"
    run_entry_point(
        "run_stage_I.py", TINY_STAGE_I_CONFIG,
        "--output_dir", str(stage_one), "--model_name_or_path", str(tiny_llama_dir),
        "--dataset_file_path", str(tiny_data_dir), "--stop_after_n_steps", "4", "--save_steps", "4",
        "--disable_tqdm", "true",
    )
    run_entry_point(
        "run_stage_II.py", TINY_STAGE_II_CONFIG,
        "--output_dir", str(stage_two), "--save_merged_model", "true", *_stage_two_overrides(stage_one, tiny_data_dir),
    )
    return {"stage_one": stage_one, "stage_two": stage_two, "data": tiny_data_dir}


def _tiny_config() -> dict[str, Any]:
    return json.loads(TINY_STAGE_II_CONFIG.read_text())


@pytest.mark.slow
def test_stage_II_output_reloads_with_the_trained_embeddings(pipeline: dict[str, Path]) -> None:
    stage_one, stage_two = pipeline["stage_one"], pipeline["stage_two"]
    steps = _tiny_config()["stop_after_n_steps"]
    final_checkpoint = stage_two / f"checkpoint-{steps}"
    for folder in (stage_two, final_checkpoint):
        for name in ADAPTER_FILES:
            assert (folder / name).is_file(), folder / name
    assert (final_checkpoint / COMPLETE_MARKER).is_file()
    adapter_config = json.loads((stage_two / "adapter_config.json").read_text())
    assert adapter_config["r"] == 8 and adapter_config["lora_alpha"] == 16

    reloaded = LLM2Vec.from_pretrained(stage_one, peft_model_name_or_path=stage_two)
    assert reloaded.pooling_mode == "eos_token"
    embeddings = encode(reloaded, TEXTS)
    # <output_dir>/merged was written from the weights in memory at the end of training.
    merged = encode(LLM2Vec.from_pretrained(stage_two / "merged"), TEXTS)
    assert torch.allclose(embeddings, merged, atol=1e-5), (embeddings - merged).abs().max()
    base = encode(LLM2Vec.from_pretrained(stage_one), TEXTS)
    assert (embeddings - base).abs().max() > 1e-2, "training must have changed the embeddings"
    final = load_file(stage_two / "adapter_model.safetensors")
    at_last_step = load_file(final_checkpoint / "adapter_model.safetensors")
    assert final.keys() == at_last_step.keys() and all(torch.equal(final[k], at_last_step[k]) for k in final)


HELD_OUT_FILES = ("nq", "squad")
GROUP = 16  # candidates per retrieval group: the tiny config's batch size


def _held_out_accuracy(model: LLM2Vec, data_dir: Path) -> tuple[float, float]:
    """Top-1 query -> positive retrieval on held-out pairs, texts formatted as in training.

    Returns the accuracy among all held-out positives and the mean accuracy among the positives of
    consecutive groups of ``GROUP`` pairs (same task, as in a training batch; chance 1 / GROUP).
    """
    dataset = load_train_dataset("E5", data_dir, per_device_batch_size=8, world_size=1, seed=0, files=HELD_OUT_FILES)
    samples = [dataset[i] for i in range(len(dataset))]
    queries = encode(model, [s.query for s in samples])
    documents = encode(model, [s.positive for s in samples])
    scores = cosine_similarity_matrix(queries, documents)
    overall = (scores.argmax(dim=1) == torch.arange(len(samples))).float().mean().item()
    grouped = [
        (scores[i : i + GROUP, i : i + GROUP].argmax(dim=1) == torch.arange(GROUP)).float().mean().item()
        for i in range(0, len(samples), GROUP)
    ]
    return overall, sum(grouped) / len(grouped)


@pytest.mark.slow
def test_stage_II_loss_falls_and_held_out_retrieval_improves(
    pipeline: dict[str, Path], tmp_path: Path, record_property: Callable[[str, Any], None]
) -> None:
    stage_one, stage_two = pipeline["stage_one"], pipeline["stage_two"]
    config = _tiny_config()
    steps, every = config["stop_after_n_steps"], config["logging_steps"]
    logged = logged_steps(stage_two / f"checkpoint-{steps}" / "trainer_state.json")
    assert sorted(logged) == list(range(every, steps + 1, every))
    assert all(0.0 <= entry["accuracy"] <= 1.0 for entry in logged.values())
    first, last = logged[every]["loss"], logged[steps]["loss"]
    assert last < first - 0.4, (first, last)

    held_out = write_tiny_pairs_dir(tmp_path / "held_out", files=HELD_OUT_FILES, n_per_file=64, seed=20251)
    before, before_grouped = _held_out_accuracy(LLM2Vec.from_pretrained(stage_one), held_out)
    after, after_grouped = _held_out_accuracy(
        LLM2Vec.from_pretrained(stage_one, peft_model_name_or_path=stage_two), held_out
    )
    numbers = {
        "loss_first": first,
        "loss_last": last,
        "top1_all": (before, after),
        "top1_of_16": (before_grouped, after_grouped),
    }
    record_property("stage_II_tiny", numbers)
    print(f"tiny Stage II: {numbers}")
    assert after > before, numbers
    assert after_grouped > before_grouped + 0.1, numbers


@pytest.mark.slow
def test_resume_from_a_checkpoint_repeats_the_uninterrupted_losses(pipeline: dict[str, Path], tmp_path: Path) -> None:
    stage_one, straight = pipeline["stage_one"], pipeline["stage_two"]
    config = _tiny_config()
    steps, middle = config["stop_after_n_steps"], config["save_steps"]
    # The run was killed right after writing checkpoint-<middle>: that is all its output_dir holds.
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(straight / f"checkpoint-{middle}", interrupted / f"checkpoint-{middle}")
    run_entry_point(
        "run_stage_II.py", TINY_STAGE_II_CONFIG,
        "--output_dir", str(interrupted), "--resume_from_checkpoint", "last",
        *_stage_two_overrides(stage_one, pipeline["data"]),
    )
    expected = logged_steps(straight / f"checkpoint-{steps}" / "trainer_state.json")
    resumed = logged_steps(interrupted / f"checkpoint-{steps}" / "trainer_state.json")
    later = [step for step in expected if step > middle]
    assert later and [step for step in resumed if step > middle] == later
    for step in later:
        for key in ("loss", "accuracy", "grad_norm"):
            assert resumed[step][key] == pytest.approx(expected[step][key], abs=1e-5), (step, key)
    final = load_file(straight / "adapter_model.safetensors")
    again = load_file(interrupted / "adapter_model.safetensors")
    assert max((final[k] - again[k]).abs().max().item() for k in final) < 1e-5


@pytest.mark.slow
def test_entry_point_with_gradient_cache_repeats_the_uncached_run(tmp_path, tiny_llama_dir, tiny_data_dir):
    def run(name: str, cache: str) -> list[dict]:
        output = tmp_path / name
        run_entry_point(
            "run_stage_II.py", TINY_STAGE_II_CONFIG,
            "--output_dir", str(output), "--model_name_or_path", str(tiny_llama_dir),
            "--dataset_file_path", str(tiny_data_dir), "--stop_after_n_steps", "3", "--logging_steps", "1",
            "--lora_dropout", "0", "--gradient_cache_mini_batch_size", cache, "--disable_tqdm", "true",
        )
        return list(logged_steps(output / "checkpoint-3" / "trainer_state.json").values())

    plain, cached = run("plain", "null"), run("cached", "4")
    assert len(plain) == len(cached) == 3
    for a, b in zip(plain, cached):
        for key in ("loss", "grad_norm", "accuracy"):
            assert b[key] == pytest.approx(a[key], abs=1e-5), key
