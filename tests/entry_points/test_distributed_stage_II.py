"""Stage II on two CPU processes against one: the DDP loss and LoRA gradients of one step
(``distributed_stage_II_worker.py``), and ``experiments/run_stage_II.py`` under torchrun."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from tests.helpers import (
    REPO,
    TINY_STAGE_II_CONFIG,
    logged_steps,
    run_checked,
    run_entry_point,
    subprocess_env,
    torchrun,
)
from tests.stage_II_batch import UNION_SIZE, build_model, features, lora_gradients

WORKER = Path(__file__).resolve().parent / "distributed_stage_II_worker.py"


@pytest.mark.slow
def test_two_processes_give_the_loss_and_lora_gradients_of_one_process_on_the_union(
    tiny_llama_dir: Path, tmp_path: Path
) -> None:
    prefix = tmp_path / "ddp"
    command = [*torchrun(2), str(WORKER), str(tiny_llama_dir), str(prefix)]
    run_checked(command, env=subprocess_env(PYTHONPATH=str(REPO)), timeout=300)

    model = build_model(tiny_llama_dir)
    output = model(**features(model, 0, UNION_SIZE))
    output.loss.backward()
    reference = lora_gradients(model)
    assert min(g.abs().max().item() for g in reference.values()) > 1e-5, "every LoRA weight needs a gradient"

    for rank in (0, 1):
        saved = torch.load(f"{prefix}.rank{rank}.pt")
        assert saved["world"] == 2
        assert saved["loss"].item() == pytest.approx(output.loss.item(), abs=1e-5)
        assert saved["accuracy"].item() == pytest.approx(output.accuracy.item())
        grads = {name.removeprefix("module."): g for name, g in saved["grads"].items()}
        assert grads.keys() == reference.keys()
        difference = max((grads[n] - reference[n]).abs().max().item() for n in reference)
        assert difference < 1e-5, f"rank {rank}: max |grad difference| {difference:.3g}"
        # also per tensor, relative to its own size (some LoRA A gradients are small)
        for name in reference:
            relative = (grads[name] - reference[name]).abs().max() / reference[name].abs().max()
            assert relative < 1e-3, (rank, name, relative.item())


@pytest.mark.slow
def test_torchrun_training_repeats_the_single_process_run_on_the_same_batches(
    tiny_llama_dir: Path, tiny_data_dir: Path, tmp_path: Path
) -> None:
    """2 processes x 8 pairs train exactly like 1 process x 16 (the data chunks give the same union)."""
    common = [
        "--model_name_or_path", str(tiny_llama_dir), "--dataset_file_path", str(tiny_data_dir),
        "--disable_tqdm", "true",
        "--stop_after_n_steps", "4", "--save_steps", "4", "--logging_steps", "1",
        "--lora_dropout", "0",  # dropout masks depend on how rows are split over processes
    ]
    single, double = tmp_path / "single", tmp_path / "double"
    run_entry_point(
        "run_stage_II.py", TINY_STAGE_II_CONFIG, "--output_dir", str(single), "--per_device_train_batch_size", "16",
        *common,
    )
    run_entry_point(
        "run_stage_II.py", TINY_STAGE_II_CONFIG, "--output_dir", str(double), "--per_device_train_batch_size", "8",
        *common, launcher=torchrun(2),
    )
    expected = logged_steps(single / "checkpoint-4" / "trainer_state.json")
    logged = logged_steps(double / "checkpoint-4" / "trainer_state.json")
    assert sorted(logged) == sorted(expected) == [1, 2, 3, 4]
    for step in expected:
        for key in ("loss", "grad_norm", "accuracy"):
            assert logged[step][key] == pytest.approx(expected[step][key], abs=1e-5), (step, key)
    one, two = load_file(single / "adapter_model.safetensors"), load_file(double / "adapter_model.safetensors")
    assert max((one[k] - two[k]).abs().max().item() for k in one) < 1e-4
