"""The training configs under ``train_configs/`` parse and hold the paper's values (Stage I, its
ablations, Stage II with its baselines, early-stage runs and scale ablation, and the tiny configs).

Every JSON file under ``train_configs/`` is covered automatically (a config with a key of ``MNTPArguments``
is parsed with the MNTP dataclasses, one with a key of
``StageIIArguments`` is parsed with the Stage II dataclasses, any other with Stage I's); a list of
files that must exist keeps an empty or mistyped glob from passing silently.

On a machine without a bf16-capable GPU, transformers' ``TrainingArguments`` rejects ``bf16: true``
unless ``use_cpu`` is set as well ("Your setup doesn't support bf16/gpu"). The paper configs are
written for 8 x A100 and stay as they are; here they are parsed with the public override
``--use_cpu true``, exactly what a user would pass to try a config on a CPU.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from pathlib import Path
from typing import Any

import pytest
import torch

from llm2vec.llm2vec_contrastive import LORA_TARGET_MODULES
from llm2vec.training.arguments import (
    MNTP_CONFIG_TYPES,
    STAGE_I_CONFIG_TYPES,
    STAGE_II_CONFIG_TYPES,
    WORD_TASK_CONFIG_TYPES,
    MNTPArguments,
    StageIIArguments,
    WordTaskArguments,
)
from llm2vec.training.config_parsing import parse_config
from llm2vec.training.legacy_keys import RENAMED
from tests.helpers import TRAIN_CONFIGS

CONFIG_ROOT = TRAIN_CONFIGS
STAGE_I_TYPES = STAGE_I_CONFIG_TYPES
STAGE_II_TYPES = STAGE_II_CONFIG_TYPES
STAGE_II_KEYS = {f.name for f in dataclasses.fields(StageIIArguments)}
MNTP_KEYS = {f.name for f in dataclasses.fields(MNTPArguments)}
WORD_TASK_KEYS = {f.name for f in dataclasses.fields(WordTaskArguments)} - {"dataset_name"}
# TrainingArguments keys whose parsed value is rewritten (e.g. report_to "none" -> []).
NORMALIZED_BY_TRANSFORMERS = {"report_to", "fsdp", "fsdp_config", "deepspeed", "accelerator_config"}

PAPER_GPUS = 8
PAPER_TOTAL_BATCH = 512

# Stage I configs of the paper's five models (Section 4.1) and the release-compatible 1B variant.
STAGE_I_HUB_IDS = {
    "MetaLlama3.2_1b_q2d_d2q": "meta-llama/Llama-3.2-1B-Instruct",
    "Qwen2.5_1.5b_q2d_d2q": "Qwen/Qwen2.5-1.5B-Instruct",
    "MetaLlama3.2_3b_q2d_d2q": "meta-llama/Llama-3.2-3B-Instruct",
    "Mistral_7b_q2d_d2q": "mistralai/Mistral-7B-v0.1",
    "MetaLlama3.1_8b_q2d_d2q": "meta-llama/Llama-3.1-8B-Instruct",
    "MetaLlama3.2_1b_q2d_d2q_release_compat": "meta-llama/Llama-3.2-1B-Instruct",
}
# Paper Tables 3 and 4: OnlyQ2D is alpha 1, OnlyD2Q alpha 0, and alpha 0.5 / 0.8.
ABLATION_ALPHAS = {
    "MetaLlama3.2_1b_only_q2d": 1.0,
    "MetaLlama3.2_1b_only_d2q": 0.0,
    "MetaLlama3.2_1b_alpha0.5": 0.5,
    "MetaLlama3.2_1b_alpha0.8": 0.8,
}
EXPECTED_FILES = (
    [f"stage_I/{stem}.json" for stem in STAGE_I_HUB_IDS]
    + [f"ablation/{stem}.json" for stem in ABLATION_ALPHAS]
    + ["tiny/stage_I_tiny.json"]
    + [f"word_task/MetaLlama3-{v}.json" for v in ("uni", "bi", "bi-mntp", "bi-mntp-simcse")]
    + ["word_task/tiny_pos.json", "word_task/smollm2_oanc_pos.json"]
    # the configs `make demo` and `make reproduce-small` train with
    + [f"demo/{stem}.json" for stem in ("stage_I_smollm2", "stage_II_baseline_smollm2", "stage_II_anchor_smollm2")]
    + [f"reproduce_small/stage_{stage}_{model}.json" for stage in ("I", "II") for model in ("smollm2", "qwen")]
)

CONFIG_FILES = sorted(CONFIG_ROOT.rglob("*.json"))


def _relative(path: Path) -> str:
    return path.relative_to(CONFIG_ROOT).as_posix()


def _bf16_device_available() -> bool:
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def _cpu_overrides(config: dict[str, Any]) -> list[str]:
    """``--use_cpu true`` where transformers would refuse the config's bf16 on this machine."""
    if config.get("bf16") and not config.get("use_cpu") and not _bf16_device_available():
        return ["--use_cpu", "true"]
    return []


def _load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _stage_types(config: dict[str, Any]) -> tuple[type, ...]:
    """The dataclasses of the run script that reads ``config`` (run_mntp.py, run_word_task.py,
    run_stage_II.py or run_stage_I.py)."""
    if MNTP_KEYS & set(config):
        return MNTP_CONFIG_TYPES
    if WORD_TASK_KEYS & set(config):
        return WORD_TASK_CONFIG_TYPES
    return STAGE_II_TYPES if STAGE_II_KEYS & set(config) else STAGE_I_TYPES


def _parse(path: Path, *overrides: str) -> tuple[Any, ...]:
    config = _load(path)
    return parse_config(_stage_types(config), [str(path), *_cpu_overrides(config), *overrides])


def _parsed_value(parsed: tuple[Any, ...], key: str) -> Any:
    for group in parsed:
        if key in {f.name for f in dataclasses.fields(group)}:
            value = getattr(group, key)
            return value.value if isinstance(value, enum.Enum) else value
    raise AssertionError(f"no dataclass has the key {key}")


def test_expected_config_files_exist() -> None:
    missing = [name for name in EXPECTED_FILES if not (CONFIG_ROOT / name).is_file()]
    assert not missing, f"missing configs under {CONFIG_ROOT}: {missing}"
    globbed = {_relative(path) for path in CONFIG_FILES}
    assert set(EXPECTED_FILES) <= globbed


@pytest.mark.parametrize("path", CONFIG_FILES, ids=_relative)
def test_config_parses_and_every_value_arrives(path: Path) -> None:
    config = _load(path)
    parsed = _parse(path)
    for key, value in config.items():
        if key in NORMALIZED_BY_TRANSFORMERS:
            continue
        key = RENAMED.get(key, key)  # llm2vec's configs still write transformers 4's names
        assert _parsed_value(parsed, key) == value, f"{_relative(path)}: {key}"


@pytest.mark.parametrize("stem", sorted(STAGE_I_HUB_IDS))
def test_stage_I_config_has_paper_values(stem: str) -> None:
    model, data, stage, loss_computation, training = _parse(CONFIG_ROOT / "stage_I" / f"{stem}.json")
    assert model.model_name_or_path == STAGE_I_HUB_IDS[stem]
    # Appendix A.2
    assert training.learning_rate == pytest.approx(4e-5)
    assert training.warmup_steps == 300
    assert training.stop_after_n_steps == 2000
    total = training.per_device_train_batch_size * training.gradient_accumulation_steps * PAPER_GPUS
    assert total == PAPER_TOTAL_BATCH
    assert model.max_seq_length == 512
    assert training.bf16 and model.torch_dtype == "bfloat16"
    assert model.attn_implementation == "flash_attention_2"
    assert training.activation_checkpointing
    assert model.pooling_mode == "eos_token" and not model.bidirectional
    # Section 3.2: alpha fixed to 0.2
    assert stage.alpha == pytest.approx(0.2)
    assert training.seed == 42
    # llm2vec's schedule: linear over 3 epochs, stopped at 2000 steps
    assert training.num_train_epochs == 3
    assert _parsed_value((training,), "lr_scheduler_type") == "linear"
    assert data.dataset_name == "E5" and data.dataset_file_path == "cache/echo-data"
    assert data.dataset_files is None
    assert not training.save_only_model  # optimizer state is needed to resume
    assert training.output_dir == f"output/stage_I/{stem}"
    assert stage.release_compat == stem.endswith("_release_compat")
    assert loss_computation.packing and loss_computation.ce_implementation == "auto"
    assert loss_computation.ce_chunk_size == 4096


def test_release_compat_config_differs_from_1b_only_in_release_compat() -> None:
    base = _load(CONFIG_ROOT / "stage_I" / "MetaLlama3.2_1b_q2d_d2q.json")
    compat = _load(CONFIG_ROOT / "stage_I" / "MetaLlama3.2_1b_q2d_d2q_release_compat.json")
    differing = {key for key in base.keys() | compat.keys() if base.get(key) != compat.get(key)}
    assert differing == {"release_compat", "output_dir"}
    assert compat["release_compat"] is True and base["release_compat"] is False


@pytest.mark.parametrize("stem", sorted(ABLATION_ALPHAS))
def test_ablation_config_changes_only_alpha(stem: str) -> None:
    path = CONFIG_ROOT / "ablation" / f"{stem}.json"
    _, _, stage, _, training = _parse(path)
    assert stage.alpha == pytest.approx(ABLATION_ALPHAS[stem])
    assert training.output_dir == f"output/ablation/{stem}"
    base = _load(CONFIG_ROOT / "stage_I" / "MetaLlama3.2_1b_q2d_d2q.json")
    ablation = _load(path)
    differing = {key for key in base.keys() | ablation.keys() if base.get(key) != ablation.get(key)}
    assert differing == {"alpha", "output_dir"}


def test_output_dirs_are_unique() -> None:
    owners: dict[str, list[str]] = {}
    for path in CONFIG_FILES:
        owners.setdefault(_load(path).get("output_dir"), []).append(_relative(path))
    shared = {output: names for output, names in owners.items() if len(names) > 1}
    assert not shared, f"configs that would write into the same output_dir: {shared}"


# ---------------------------------------------------------------------------- Stage II
HUB_IDS = {
    "MetaLlama3.2_1b": "meta-llama/Llama-3.2-1B-Instruct",
    "Qwen2.5_1.5b": "Qwen/Qwen2.5-1.5B-Instruct",
    "MetaLlama3.2_3b": "meta-llama/Llama-3.2-3B-Instruct",
    "Mistral_7b": "mistralai/Mistral-7B-v0.1",
    "MetaLlama3.1_8b": "meta-llama/Llama-3.1-8B-Instruct",
}
STAGE_II_FILES = [f"stage_II/{m}_stage1_2000steps_stage2.json" for m in HUB_IDS]
BASELINE_FILES = [f"baseline/{m}_baseline_stage2.json" for m in HUB_IDS] + [
    "baseline/MetaLlama3.2_1b_baseline_stage2_3000steps.json"
]
EARLY_STAGE_FILES = [  # paper Table 9
    f"early_stage/{name}_stage2_early.json"
    for name in (
        "MetaLlama3.2_1b_baseline", "MetaLlama3.2_1b_only_q2d", "MetaLlama3.2_1b_only_d2q", "MetaLlama3.2_1b_anchor",
        "MetaLlama3.2_3b_baseline", "MetaLlama3.2_3b_anchor", "MetaLlama3.1_8b_baseline", "MetaLlama3.1_8b_anchor",
    )
]
SCALE_ABLATION = "ablation/MetaLlama3.2_1b_stage2_scale20.json"
PAPER_FILES = STAGE_II_FILES + BASELINE_FILES + EARLY_STAGE_FILES + [SCALE_ABLATION]


def _stage_one_outputs() -> dict[str, dict[str, Any]]:
    """output_dir -> config of every Stage I config (paper models and ablations)."""
    found = {}
    for path in sorted((CONFIG_ROOT / "stage_I").glob("*.json")) + sorted((CONFIG_ROOT / "ablation").glob("*.json")):
        config = json.loads(path.read_text())
        if "alpha" in config:  # Stage I keys; Stage II ablations have loss_scale instead
            found[config["output_dir"]] = config
    return found


def test_stage_II_config_files_exist() -> None:
    missing = [name for name in PAPER_FILES + ["tiny/stage_II_tiny.json"] if not (CONFIG_ROOT / name).is_file()]
    assert not missing
    for folder in ("stage_II", "baseline", "early_stage"):
        listed = {f"{folder}/{p.name}" for p in (CONFIG_ROOT / folder).glob("*.json")}
        assert listed == {name for name in PAPER_FILES if name.startswith(f"{folder}/")}, folder


@pytest.mark.parametrize("relative", PAPER_FILES)
def test_paper_stage_II_config_values(relative: str) -> None:
    model, data, stage, lora, training = _parse(CONFIG_ROOT / relative)
    stem = Path(relative).stem
    raw = json.loads((CONFIG_ROOT / relative).read_text())
    assert "loss_scale" in raw, "loss_scale must be explicit in every config"
    assert stage.loss_scale == (20.0 if relative == SCALE_ABLATION else 50.0)
    assert lora.lora_r == 16 and lora.alpha == 32 and lora.lora_dropout == pytest.approx(0.05)
    assert set(lora.lora_target_modules) == set(LORA_TARGET_MODULES)
    assert not stage.full_parameter
    assert training.learning_rate == pytest.approx(2e-4)
    assert training.warmup_steps == 300 and training.num_train_epochs == 3 and training.seed == 42
    expected_steps = 3000 if stem.endswith("3000steps") else 125 if relative.startswith("early_stage/") else 1000
    assert training.stop_after_n_steps == expected_steps
    assert training.save_steps == (25 if relative.startswith("early_stage/") else 200)
    total = training.per_device_train_batch_size * training.gradient_accumulation_steps * PAPER_GPUS
    assert total == PAPER_TOTAL_BATCH
    assert model.max_seq_length == 512 and model.pooling_mode == "eos_token" and not model.bidirectional
    assert training.bf16 and model.torch_dtype == "bfloat16" and model.attn_implementation == "flash_attention_2"
    assert raw["activation_checkpointing"] is True and training.activation_checkpointing
    assert data.dataset_name == "E5" and data.dataset_file_path == "cache/echo-data" and data.dataset_files is None
    assert training.output_dir == f"output/{Path(relative).parent.name}/{stem}"
    assert raw["report_to"] == "none" and not training.save_only_model
    assert model.peft_model_name_or_path is None


@pytest.mark.parametrize("relative", PAPER_FILES)
def test_stage_II_config_starts_from_the_right_model(relative: str) -> None:
    model, *_ = _parse(CONFIG_ROOT / relative)
    stem = Path(relative).stem
    short = next(m for m in HUB_IDS if stem.startswith(m + "_"))
    stage_one = _stage_one_outputs()
    if "baseline" in stem:
        assert model.model_name_or_path == HUB_IDS[short]
        return
    assert model.model_name_or_path in stage_one, f"{model.model_name_or_path} is no Stage I config's output_dir"
    source = stage_one[model.model_name_or_path]
    assert source["model_name_or_path"] == HUB_IDS[short]
    expected_alpha = 1.0 if "only_q2d" in stem else 0.0 if "only_d2q" in stem else 0.2
    assert source["alpha"] == pytest.approx(expected_alpha)
    assert not source.get("release_compat", False)
    assert source["prompt_template"] == model.prompt_template and source["max_seq_length"] == model.max_seq_length


def test_early_stage_and_scale_ablation_differ_from_the_full_run_only_where_they_must() -> None:
    def differing(a: str, b: str) -> set[str]:
        x, y = (json.loads((CONFIG_ROOT / name).read_text()) for name in (a, b))
        return {key for key in x.keys() | y.keys() if x.get(key) != y.get(key)}

    anchor = "stage_II/MetaLlama3.2_1b_stage1_2000steps_stage2.json"
    # The early-stage runs are the first 125 steps of the full runs (same schedule), saved every 25.
    assert differing(anchor, "early_stage/MetaLlama3.2_1b_anchor_stage2_early.json") == {
        "stop_after_n_steps", "save_steps", "output_dir"
    }
    assert differing(
        "baseline/MetaLlama3.2_1b_baseline_stage2.json", "early_stage/MetaLlama3.2_1b_baseline_stage2_early.json"
    ) == {"stop_after_n_steps", "save_steps", "output_dir"}
    assert differing(anchor, SCALE_ABLATION) == {"loss_scale", "output_dir"}
    assert differing(
        "baseline/MetaLlama3.2_1b_baseline_stage2.json", "baseline/MetaLlama3.2_1b_baseline_stage2_3000steps.json"
    ) == {"stop_after_n_steps", "output_dir"}
    assert differing(anchor, "baseline/MetaLlama3.2_1b_baseline_stage2.json") == {"model_name_or_path", "output_dir"}


def test_tiny_stage_II_config_parses_for_cpu() -> None:
    path = CONFIG_ROOT / "tiny" / "stage_II_tiny.json"
    model, data, stage, lora, training = parse_config(STAGE_II_TYPES, [str(path)])
    assert model.model_name_or_path == "cache/tiny/models/llama3" and data.dataset_file_path == "cache/tiny/data"
    assert model.torch_dtype == "float32" and model.attn_implementation == "sdpa" and training.use_cpu
    assert lora.lora_r == 8 and not stage.full_parameter and not training.bf16
    assert {"loss_scale", "lora_r"} <= set(_load(path))
