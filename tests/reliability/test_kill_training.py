"""kill -9 at points of Stage I and Stage II, then the same command: the uninterrupted result.

Every attempt below is the same command (it always passes ``--resume_from_checkpoint last``); a
kill point makes an attempt die like ``kill -9``. One run is killed at six points in turn; the
attempt after the last kill must end with the final model equal to the uninterrupted run's bit for
bit, the run marked finished at its last step, and no half-written or temporary file and no lock
left behind.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open
from safetensors.torch import load_file

KILLED = -9
STAGE_I = ("experiments/run_stage_I.py", "train_configs/tiny/stage_I_tiny.json")
STAGE_II = ("experiments/run_stage_II.py", "train_configs/tiny/stage_II_tiny.json")

#: One run killed again and again, each attempt resuming from what the previous one left: (kill
#: point, which call of it in that attempt). Six steps, checkpoints at 2, 4 and 6, at most two
#: kept. Stage I writes one weights file per checkpoint and one final; Stage II one adapter each.
CHAIN = [
    ("train_step", 3),          # during step 3 (checkpoint-2 exists)
    ("weights_file", 1),        # resumed at 2: half of checkpoint-4's weights written
    ("checkpoint_marker", 1),   # resumed at 2: checkpoint-4 complete but not marked
    ("rotation", 1),            # resumed at 2: checkpoint-2 half deleted once checkpoint-6 was marked
    ("weights_file", 1),        # resumed at 6, the last step: half of the final model written
    ("finished_marker", 1),     # all written, the run not yet marked finished
]


def _argv(config: str, output: Path, model: Path, data: Path) -> list[str]:
    return [
        config, "--output_dir", output, "--model_name_or_path", model, "--dataset_file_path", data,
        "--per_device_train_batch_size", "4", "--stop_after_n_steps", "6", "--save_steps", "2",
        "--save_total_limit", "2", "--logging_steps", "1", "--resume_from_checkpoint", "last",
    ]


def _final_weights(folder: Path) -> dict:
    names = sorted(folder.glob("*.safetensors"))
    assert names, f"no final model in {folder}"
    return {name.name: load_file(name) for name in names}


def _assert_clean_and_equal(output: Path, reference: Path) -> None:
    expected, actual = _final_weights(reference), _final_weights(output)
    assert expected.keys() == actual.keys()
    for name in expected:
        assert expected[name].keys() == actual[name].keys()
        for key, tensor in expected[name].items():
            assert actual[name][key].equal(tensor), f"{name}:{key} differs from the uninterrupted run"
    assert json.loads((output / "training_complete.json").read_text())["global_step"] == 6
    leftovers = [p.name for p in output.rglob("*") if p.name.startswith(".") or p.name.endswith(".tmp")]
    assert not leftovers, f"left behind: {leftovers}"
    checkpoints = sorted(p.name for p in output.glob("checkpoint-*"))
    assert checkpoints == ["checkpoint-4", "checkpoint-6"], checkpoints
    for path in output.rglob("*.safetensors"):
        with safe_open(str(path), framework="pt") as handle:  # every weight file reads whole
            for key in handle.keys():
                handle.get_tensor(key)
    for path in output.rglob("*.json"):
        json.loads(path.read_text())


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["I", "II"])
def test_every_kill_point_resumes_to_the_uninterrupted_result(
    stage, run_entry, tmp_path, tiny_llama_dir, tiny_data_dir
):
    script, config = STAGE_I if stage == "I" else STAGE_II
    reference = tmp_path / "reference"
    assert run_entry(script, _argv(config, reference, tiny_llama_dir, tiny_data_dir)) == 0, run_entry.log.read_text()[-3000:]
    output = tmp_path / "killed"
    argv = _argv(config, output, tiny_llama_dir, tiny_data_dir)
    for point, hit in CHAIN:
        assert run_entry(script, argv, point, hit) == KILLED, (point, hit, run_entry.log.read_text()[-3000:])
    assert run_entry(script, argv) == 0, run_entry.log.read_text()[-3000:]
    _assert_clean_and_equal(output, reference)
    # and once finished, the same command again is a no-op that leaves the final model alone
    before = {p: p.stat().st_mtime_ns for p in output.glob("*.safetensors")}
    assert run_entry(script, argv) == 0
    assert "run already finished at step 6" in run_entry.log.read_text()
    assert {p: p.stat().st_mtime_ns for p in output.glob("*.safetensors")} == before
