"""One run per output folder: concurrent runs, fresh starts over old runs, finished runs, rotation.

Through ``experiments/run_stage_I.py`` on the tiny model (forked children, see conftest.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from llm2vec.training.checkpoints import COMPLETE_MARKER
from llm2vec.training.run_folder import LOCK_NAME, _process_start

SCRIPT = "experiments/run_stage_I.py"
CONFIG = "train_configs/tiny/stage_I_tiny.json"


def _argv(output: Path, model: Path, data: Path, *extra: str) -> list:
    return [
        CONFIG, "--output_dir", output, "--model_name_or_path", model, "--dataset_file_path", data,
        "--per_device_train_batch_size", "4", "--save_steps", "2", *extra,
    ]


def _weights(folder: Path) -> dict:
    return load_file(folder / "model.safetensors")


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(a[k].equal(b[k]) for k in a)


@pytest.mark.slow
def test_finished_runs_fresh_starts_and_raised_stops(run_entry, tmp_path, tiny_llama_dir, tiny_data_dir):
    run = tmp_path / "run"
    four = _argv(run, tiny_llama_dir, tiny_data_dir, "--stop_after_n_steps", "4")
    assert run_entry(SCRIPT, four) == 0
    final = _weights(run)
    # the same command without resuming: refused, nothing touched
    assert run_entry(SCRIPT, four) == 1
    assert f"{run} already holds a run finished at step 4" in run_entry.log.read_text()
    # resuming a finished run: a no-op that says so
    assert run_entry(SCRIPT, [*four, "--resume_from_checkpoint", "last"]) == 0
    assert f"run already finished at step 4: {run}" in run_entry.log.read_text()
    assert _same(_weights(run), final) and sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    # a raised stop continues from the last checkpoint, to what an uninterrupted 6-step run gives
    six = _argv(run, tiny_llama_dir, tiny_data_dir, "--stop_after_n_steps", "6", "--resume_from_checkpoint", "last")
    assert run_entry(SCRIPT, six) == 0
    straight = tmp_path / "straight"
    assert run_entry(SCRIPT, _argv(straight, tiny_llama_dir, tiny_data_dir, "--stop_after_n_steps", "6")) == 0
    assert _same(_weights(run), _weights(straight))
    assert json.loads((run / "training_complete.json").read_text())["global_step"] == 6
    # starting over on purpose: the old run's checkpoints go, the result is a fresh 4-step run
    assert run_entry(SCRIPT, [*four, "--overwrite_output_dir", "true"]) == 0
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert _same(_weights(run), final)


@pytest.mark.slow
def test_a_partial_run_is_not_mixed_with_a_fresh_one(run_entry, tmp_path, tiny_llama_dir, tiny_data_dir):
    run = tmp_path / "run"
    argv = _argv(run, tiny_llama_dir, tiny_data_dir, "--stop_after_n_steps", "6")
    assert run_entry(SCRIPT, argv, "train_step", 4) == -9  # killed with checkpoint-2 written
    assert run_entry(SCRIPT, argv) == 1
    assert f"{run} already holds a partial run (checkpoints)" in run_entry.log.read_text()


@pytest.mark.slow
def test_a_second_run_into_a_folder_in_use_is_refused_and_a_stale_lock_is_taken(
    run_entry, tmp_path, tiny_llama_dir, tiny_data_dir
):
    run = tmp_path / "run"
    run.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = {"pid": holder.pid, "host": socket.gethostname(), "process_start": _process_start(holder.pid),
                "command": "python experiments/run_stage_I.py other.json", "started": "2026-12-06 10:00:00"}
        (run / LOCK_NAME).write_text(json.dumps(lock))
        argv = _argv(run, tiny_llama_dir, tiny_data_dir, "--stop_after_n_steps", "2")
        assert run_entry(SCRIPT, argv) == 1
        log = run_entry.log.read_text()
        assert f"{run} is in use by another run: pid {holder.pid}" in log and "other.json" in log
        assert not list(run.glob("checkpoint-*"))
    finally:
        holder.kill()
        holder.wait()
    assert run_entry(SCRIPT, argv) == 0  # its process is gone: the lock is stale
    assert "taking over the stale lock" in run_entry.log.read_text()
    assert not (run / LOCK_NAME).exists() and (run / "training_complete.json").is_file()


@pytest.mark.slow
def test_rotation_waits_until_the_new_checkpoint_is_complete(run_entry, tmp_path, tiny_llama_dir, tiny_data_dir):
    """save_total_limit 1: killed before checkpoint-4 is marked, checkpoint-2 must still be there."""
    run = tmp_path / "run"
    argv = _argv(run, tiny_llama_dir, tiny_data_dir, "--stop_after_n_steps", "6", "--save_total_limit", "1",
                 "--resume_from_checkpoint", "last")
    assert run_entry(SCRIPT, argv, "checkpoint_marker", 2) == -9
    assert (run / "checkpoint-2" / COMPLETE_MARKER).is_file()
    assert not (run / "checkpoint-4" / COMPLETE_MARKER).exists()
    assert run_entry(SCRIPT, argv) == 0
    assert "starting from step 0" not in run_entry.log.read_text()
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-6"]
    assert os.listdir(run).count(LOCK_NAME) == 0
