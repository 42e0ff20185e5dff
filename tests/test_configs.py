"""The training configs under ``train_configs/`` parse, hold the paper's values, and fail loudly.

Every JSON file under ``train_configs/`` is covered automatically (a config with a key of
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

from llm2vec.training.arguments import STAGE_I_CONFIG_TYPES, STAGE_II_CONFIG_TYPES, StageIIArguments
from llm2vec.training.config_parsing import ConfigError, parse_config

ROOT = Path(__file__).resolve().parents[1]
CONFIG_ROOT = ROOT / "train_configs"
STAGE_I_TYPES = STAGE_I_CONFIG_TYPES
STAGE_II_TYPES = STAGE_II_CONFIG_TYPES
STAGE_II_KEYS = {f.name for f in dataclasses.fields(StageIIArguments)}
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
    """The dataclasses of the run script that reads ``config`` (run_stage_II.py or run_stage_I.py)."""
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


@pytest.fixture
def tiny_config_path() -> Path:
    return CONFIG_ROOT / "tiny" / "stage_I_tiny.json"


def _write_variant(tmp_path: Path, source: Path, **changes: Any) -> Path:
    config = _load(source)
    config.update(changes)
    path = tmp_path / "variant.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def test_unknown_key_in_file_names_key_and_file(tmp_path: Path, tiny_config_path: Path) -> None:
    path = _write_variant(tmp_path, tiny_config_path, overwrite_output_dir=True)
    with pytest.raises(ConfigError) as raised:
        parse_config(STAGE_I_TYPES, [str(path)])
    assert "overwrite_output_dir" in str(raised.value)
    assert str(path) in str(raised.value)


def test_command_line_override_replaces_file_value() -> None:
    path = CONFIG_ROOT / "stage_I" / "MetaLlama3.2_1b_q2d_d2q.json"
    *_, training = _parse(path, "--learning_rate", "1e-4")
    assert training.learning_rate == pytest.approx(1e-4)
    *_, training = _parse(path, "--gradient_accumulation_steps=16", "--per_device_train_batch_size", "32")
    assert training.gradient_accumulation_steps == 16


def test_command_line_overrides_are_json_literals(tiny_config_path: Path) -> None:
    _, data, stage, _, training = _parse(
        tiny_config_path, "--dataset_files", '["nq", "squad"]', "--release_compat", "true",
        "--resume_from_checkpoint", "last",
    )
    assert data.dataset_files == ["nq", "squad"]
    assert stage.release_compat is True
    assert training.resume_from_checkpoint == "last"


def test_unknown_override_raises(tiny_config_path: Path) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(STAGE_I_TYPES, [str(tiny_config_path), "--learning_rat", "1e-4"])
    assert "learning_rat" in str(raised.value)
    assert "command line" in str(raised.value)


def test_override_without_value_raises(tiny_config_path: Path) -> None:
    with pytest.raises(ConfigError, match="learning_rate"):
        parse_config(STAGE_I_TYPES, [str(tiny_config_path), "--learning_rate"])


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "model_name_or_path": "x",\n  "alpha": 0.2,,\n  "seed": 42\n}\n')
    with pytest.raises(ConfigError) as raised:
        parse_config(STAGE_I_TYPES, [str(path)])
    assert f"{path}:3:" in str(raised.value)


def test_missing_config_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        parse_config(STAGE_I_TYPES, [str(tmp_path / "absent.json")])
