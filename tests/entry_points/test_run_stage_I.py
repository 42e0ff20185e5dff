"""experiments/run_stage_I.py end to end on CPU: trains, checkpoints, reloads, resumes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from llm2vec import LLM2Vec
from llm2vec.training.checkpoints import COMPLETE_MARKER
from tests.helpers import TINY_STAGE_I_CONFIG, logged_steps, run_entry_point


def run_stage_one(output_dir: Path, model_dir: Path, data_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    return run_entry_point(
        "run_stage_I.py", TINY_STAGE_I_CONFIG,
        "--output_dir", str(output_dir),
        "--model_name_or_path", str(model_dir),
        "--dataset_file_path", str(data_dir),
        "--logging_steps", "1",
        "--disable_tqdm", "true",
        *overrides,
    )


@pytest.mark.slow
def test_tiny_stage_one_trains_saves_and_reloads(tmp_path, tiny_llama_dir, tiny_data_dir):
    output = tmp_path / "run"
    run_stage_one(output, tiny_llama_dir, tiny_data_dir, "--stop_after_n_steps", "16", "--save_steps", "8")
    checkpoint = output / "checkpoint-16"
    assert (checkpoint / COMPLETE_MARKER).is_file() and (output / "checkpoint-8" / COMPLETE_MARKER).is_file()
    for folder in (output, checkpoint):
        assert (folder / "llm2vec_config.json").is_file() and (folder / "tokenizer_config.json").is_file()

    losses = logged_steps(checkpoint / "trainer_state.json")
    assert set(losses) == set(range(1, 17))
    assert {"q2d_loss", "d2q_loss"} <= set(losses[1])
    first = sum(losses[s]["loss"] for s in (1, 2, 3)) / 3
    last = sum(losses[s]["loss"] for s in (14, 15, 16)) / 3
    assert last < first - 0.3, (first, last)
    for step in (1, 16):  # the logged total is the alpha-weighted sum of the logged directions
        assert losses[step]["loss"] == pytest.approx(
            0.2 * losses[step]["q2d_loss"] + 0.8 * losses[step]["d2q_loss"], abs=2e-3
        )

    causal_lm = AutoModelForCausalLM.from_pretrained(output, dtype=torch.float32)
    initial = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    assert not torch.equal(causal_lm.lm_head.weight, initial.lm_head.weight), "the lm_head was trained and saved"
    encoder = LLM2Vec.from_pretrained(output)
    assert encoder.llm2vec_config.alpha == 0.2 and encoder.pooling_mode == "eos_token"
    assert encoder.encode(["a query about rivers"], show_progress_bar=False).shape == (1, 32)


@pytest.mark.slow
def test_resumed_run_repeats_the_uninterrupted_losses(tmp_path, tiny_llama_dir, tiny_data_dir):
    common = ("--save_steps", "4", "--learning_rate", "0.003")
    straight = tmp_path / "straight"
    run_stage_one(straight, tiny_llama_dir, tiny_data_dir, "--stop_after_n_steps", "8", *common)
    interrupted = tmp_path / "interrupted"
    run_stage_one(interrupted, tiny_llama_dir, tiny_data_dir, "--stop_after_n_steps", "4", *common)
    # A half-written checkpoint (no completion marker) must be skipped when resuming from "last".
    (interrupted / "checkpoint-6").mkdir()
    run_stage_one(
        interrupted, tiny_llama_dir, tiny_data_dir,
        "--stop_after_n_steps", "8", "--resume_from_checkpoint", "last", *common,
    )
    expected = logged_steps(straight / "checkpoint-8" / "trainer_state.json")
    resumed = logged_steps(interrupted / "checkpoint-8" / "trainer_state.json")
    for step in range(5, 9):
        for key in ("loss", "q2d_loss", "d2q_loss"):
            assert resumed[step][key] == pytest.approx(expected[step][key], abs=1e-5), (step, key)


@pytest.mark.slow
def test_loss_computation_switches_change_nothing_but_the_cost(tmp_path, tiny_llama_dir, tiny_data_dir):
    """packed + fused (defaults) vs padded + checkpointed chunks: the same logged losses."""
    common = ("--stop_after_n_steps", "3", "--save_steps", "3", "--learning_rate", "0.003")
    default = tmp_path / "default"
    run_stage_one(default, tiny_llama_dir, tiny_data_dir, *common)
    padded = tmp_path / "padded"
    run_stage_one(
        padded, tiny_llama_dir, tiny_data_dir, *common,
        "--packing", "false", "--ce_implementation", "chunked", "--ce_chunk_size", "7",
    )
    expected = logged_steps(default / "checkpoint-3" / "trainer_state.json")
    observed = logged_steps(padded / "checkpoint-3" / "trainer_state.json")
    assert set(observed) == {1, 2, 3}
    for step in (1, 2, 3):  # step 3 also compares the weights two optimizer steps produced
        for key in ("loss", "q2d_loss", "d2q_loss"):
            assert observed[step][key] == pytest.approx(expected[step][key], abs=1e-5), (step, key)
