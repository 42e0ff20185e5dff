"""The demo driver (``anchor_demo.pipeline``) on a tiny ChatML model and tiny data.

Not the demo itself: the training configs are the demo's own with small sizes (batch 4, two or
three steps, float32), training runs in this process, and the evaluation tasks are two of the tiny
local tasks of ``tests/data/local_tasks``. What is checked is the step logic: every step runs once,
a second run skips all of them, ``force`` redoes them, a changed Stage I config redoes exactly the
Anchor arm, an interrupted run resumes from its checkpoint, a folder the demo did not start is
cleared, and the summary holds the three models' scores.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from anchor_demo.pipeline import ARMS, STEPS, DemoConfig, compare_arms, run_demo
from llm2vec.testing.tiny_data import write_tiny_pairs_jsonl

REPO = Path(__file__).resolve().parents[3]
LOCAL_TASKS = REPO / "tests" / "data" / "local_tasks"
EVAL_TASKS = ("tiny_sts", "tiny_retrieval")
TASK_NAMES = {"TinySTS", "TinyRetrieval"}
TRAIN_RUNS = ("stage_I", "stage_II_baseline", "stage_II_anchor")
SMALL = {
    "max_seq_length": 48,
    "per_device_train_batch_size": 4,
    "stop_after_n_steps": 2,
    "save_steps": 1,
    "save_total_limit": 2,
    "warmup_steps": 0,
    "logging_steps": 1,
    "bf16": False,
    "torch_dtype": "float32",
    "disable_tqdm": True,
}


def small_configs(folder: Path, **changes: object) -> dict[str, Path]:
    """The demo's three configs with test sizes (``changes`` go into the Stage I config)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for run, name in (
        ("stage_I", "stage_I_smollm2.json"),
        ("stage_II_baseline", "stage_II_baseline_smollm2.json"),
        ("stage_II_anchor", "stage_II_anchor_smollm2.json"),
    ):
        values = json.loads((REPO / "train_configs" / "demo" / name).read_text())
        values.update(SMALL)
        if run == "stage_I":
            values.update(changes)
        else:
            values["lora_r"] = 4
        paths[run] = folder / name
        paths[run].write_text(json.dumps(values, indent=2))
    return paths


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo_data")
    write_tiny_pairs_jsonl(root / "train" / "pairs.jsonl", n=24, seed=0, with_instruction=True)
    (root / "eval").mkdir()
    for name in EVAL_TASKS:
        spec = json.loads((LOCAL_TASKS / f"{name}.json").read_text())
        spec["path"] = str(LOCAL_TASKS / spec["path"])
        (root / "eval" / f"{name}.json").write_text(json.dumps(spec))
    return root


def demo_config(root: Path, model_dir: Path, data_dir: Path, configs: dict[str, Path], **kwargs: object) -> DemoConfig:
    return DemoConfig(
        root=root,
        model_dir=model_dir,
        data_dir=data_dir,
        prepare_model=False,
        prepare_data=False,
        configs=configs,
        bf16=False,
        launcher="inprocess",
        eval_batch_size=8,
        **kwargs,
    )


def statuses(summary: dict) -> dict[str, str]:
    return {name: step["status"] for name, step in summary["steps"].items()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory, tiny_chatml_dir, data_dir):
    """One complete demo run (shared by the tests that only read it or run it again)."""
    tmp = tmp_path_factory.mktemp("demo_run")
    config = demo_config(tmp / "demo", tiny_chatml_dir, data_dir, small_configs(tmp / "configs"))
    lines: list[str] = []
    summary = run_demo(config, log=lines.append)
    return config, summary, lines


@pytest.mark.slow
def test_first_run_does_every_step_and_writes_the_summary(first_run):
    config, summary, lines = first_run
    assert set(summary["steps"]) == set(STEPS)
    assert {s for n, s in statuses(summary).items() if n not in ("model", "data")} == {"ran"}
    assert set(summary["models"]) == set(ARMS)
    for arm in ARMS:
        scores = summary["models"][arm]["scores"]
        assert set(scores) == TASK_NAMES, arm
        assert all(0.0 <= value <= 100.0 or value < 0 for value in scores.values())
    assert summary["models"]["Anchor"]["base_model"] == str(config.run_dir("stage_I"))
    assert summary["models"]["Stage I only"]["adapter"] is None
    assert summary["anchor_minus_baseline"]["tasks"] == len(TASK_NAMES)
    for run in TRAIN_RUNS:
        assert summary["training"][run]["steps"] == 2, run
    assert summary["precision"]["eval_dtype"] == "float32"
    on_disk = json.loads(config.summary_path.read_text())
    assert on_disk["models"] == summary["models"]
    assert config.loss_plot_path.is_file() and config.loss_plot_path.read_bytes()[:4] == b"\x89PNG"
    table = config.table_path.read_text()
    assert "TinySTS" in table and "Anchor" in table and "Average (2)" in table
    # the caption names what the numbers depend on beyond the code, in the file and on screen
    import transformers

    caption = summary["table_caption"]
    assert caption.startswith("Precision: float32 training, float32 evaluation") and "seed 42;" in caption
    assert f"transformers {transformers.__version__}" in caption and "peft " in caption and "mteb " in caption
    assert table.rstrip().endswith(caption) and caption in lines
    assert any(f"step {len(STEPS)}/{len(STEPS)}: report" in line for line in lines)
    assert any("Anchor − Baseline" in line for line in lines)


@pytest.mark.slow
def test_second_run_skips_everything_and_force_redoes_it(first_run):
    config, summary, _ = first_run
    lines: list[str] = []
    again = run_demo(config, log=lines.append)
    status = statuses(again)
    assert status.pop("report") == "ran"  # the table and plot are always redone (cheap)
    assert set(status.values()) == {"skipped"}, status
    assert again["models"] == summary["models"]
    assert not any("training finished" in line for line in lines)

    forced = run_demo(DemoConfig(**{**config.__dict__, "force": True}), log=lines.append)
    status = statuses(forced)
    assert all(status[name] == "ran" for name in STEPS if name not in ("model", "data")), status
    assert set(forced["models"]) == set(ARMS)


@pytest.mark.slow
def test_changed_stage_I_config_redoes_only_the_anchor_arm(tmp_path, first_run):
    config, _, _ = first_run
    changed = small_configs(tmp_path / "configs", learning_rate=3e-5)
    configs = {**config.configs, "stage_I": changed["stage_I"]}
    summary = run_demo(DemoConfig(**{**config.__dict__, "configs": configs}), log=lambda m: None)
    status = statuses(summary)
    changed_steps = ("stage_I", "eval_stage_I_only", "stage_II_anchor", "eval_anchor")
    assert all(status[name] == "ran" for name in changed_steps), status
    assert status["stage_II_baseline"] == status["eval_baseline"] == status["eval_untrained"] == "skipped", status


@pytest.mark.slow
def test_interrupted_training_resumes_and_foreign_folder_is_cleared(tmp_path, tiny_chatml_dir, data_dir):
    configs = small_configs(tmp_path / "configs", stop_after_n_steps=3)
    config = demo_config(tmp_path / "demo", tiny_chatml_dir, data_dir, configs)
    # A folder the demo did not start (e.g. a manual run) is removed before training.
    foreign = config.run_dir("stage_II_baseline")
    foreign.mkdir(parents=True)
    (foreign / "stray.txt").write_text("not from the demo")
    run_demo(config, log=lambda m: None)
    assert not (foreign / "stray.txt").exists()

    # Interrupt Stage I after its checkpoint-2: final model, finished marker and state file gone, a
    # half-written checkpoint-3 (no completion marker) left behind.
    stage_I = config.run_dir("stage_I")
    for name in ("model.safetensors", "config.json", "llm2vec_config.json", "training_complete.json"):
        (stage_I / name).unlink()
    shutil.rmtree(stage_I / "checkpoint-3")
    (stage_I / "checkpoint-3").mkdir()
    (config.state_dir / "stage_I.json").unlink()
    lines: list[str] = []
    summary = run_demo(config, log=lines.append)
    status = statuses(summary)
    assert any("resuming in" in line and "stage_I" in line for line in lines), lines
    assert status["stage_I"] == "ran" and status["stage_II_baseline"] == "skipped", status
    assert summary["training"]["stage_I"]["steps"] == 3
    history = json.loads((stage_I / "checkpoint-3" / "trainer_state.json").read_text())["log_history"]
    assert [e["step"] for e in history if "loss" in e] == [1, 2, 3]


def test_compare_arms_reports_a_loss_honestly():
    result = compare_arms({"Baseline": {"A": 50.0, "B": 40.0}, "Anchor": {"A": 49.0, "B": 40.5}})
    assert result["per_task"] == {"A": -1.0, "B": 0.5}
    assert result["average"] == -0.25 and result["wins"] == 1
    assert "does NOT beat" in result["lines"][-1]
    four = compare_arms({"Untrained": {"A": 1.0}, "Stage I only": {"A": 1.5}, "Baseline": {"A": 3.0}, "Anchor": {"A": 6.0}})
    assert "beats Baseline" in four["lines"][1]
    assert four["stage_I_only_average"] == 1.5 and "(+4.50)" in four["lines"][2] and "(+2.00)" in four["lines"][2]
