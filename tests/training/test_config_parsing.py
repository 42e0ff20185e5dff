"""parse_config: a JSON config plus ``--key value`` overrides into the run scripts' dataclasses;
unknown keys, bad overrides, broken JSON and missing files fail with the key, file or line."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm2vec.training.arguments import STAGE_I_CONFIG_TYPES
from llm2vec.training.config_parsing import ConfigError, parse_config
from tests.helpers import TINY_STAGE_I_CONFIG, TRAIN_CONFIGS, write_config_variant


@pytest.mark.parametrize(
    "key, value",
    [("lerning_rate", 1e-4), ("lora_r", 16)],  # a misspelling; lora_r: Stage II only
)
def test_unknown_key_in_file_names_key_and_file(tmp_path: Path, key: str, value: object) -> None:
    path = write_config_variant(tmp_path, TINY_STAGE_I_CONFIG, **{key: value})
    with pytest.raises(ConfigError) as raised:
        parse_config(STAGE_I_CONFIG_TYPES, [str(path)])
    assert key in str(raised.value)
    assert str(path) in str(raised.value)


def test_command_line_override_replaces_file_value() -> None:
    path = TRAIN_CONFIGS / "stage_I" / "MetaLlama3.2_1b_q2d_d2q.json"
    # the paper config's bf16 needs use_cpu on a machine without a bf16 GPU
    cpu = ["--use_cpu", "true"]
    *_, training = parse_config(STAGE_I_CONFIG_TYPES, [str(path), *cpu, "--learning_rate", "1e-4"])
    assert training.learning_rate == pytest.approx(1e-4)
    *_, training = parse_config(
        STAGE_I_CONFIG_TYPES,
        [str(path), *cpu, "--gradient_accumulation_steps=16", "--per_device_train_batch_size", "32"],
    )
    assert training.gradient_accumulation_steps == 16


def test_command_line_overrides_are_json_literals() -> None:
    _, data, stage, _, training = parse_config(
        STAGE_I_CONFIG_TYPES,
        [str(TINY_STAGE_I_CONFIG), "--dataset_files", '["nq", "squad"]', "--release_compat", "true",
         "--resume_from_checkpoint", "last"],
    )
    assert data.dataset_files == ["nq", "squad"]
    assert stage.release_compat is True
    assert training.resume_from_checkpoint == "last"


def test_unknown_override_raises() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(STAGE_I_CONFIG_TYPES, [str(TINY_STAGE_I_CONFIG), "--learning_rat", "1e-4"])
    assert "learning_rat" in str(raised.value)
    assert "command line" in str(raised.value)


def test_override_without_value_raises() -> None:
    with pytest.raises(ConfigError, match="learning_rate"):
        parse_config(STAGE_I_CONFIG_TYPES, [str(TINY_STAGE_I_CONFIG), "--learning_rate"])


def test_invalid_json_names_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "model_name_or_path": "x",\n  "alpha": 0.2,,\n  "seed": 42\n}\n')
    with pytest.raises(ConfigError) as raised:
        parse_config(STAGE_I_CONFIG_TYPES, [str(path)])
    assert f"{path}:3:" in str(raised.value)


def test_missing_config_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        parse_config(STAGE_I_CONFIG_TYPES, [str(tmp_path / "absent.json")])


def test_keys_transformers_5_removed_are_translated_with_a_message(tmp_path: Path, caplog) -> None:
    # llm2vec's MNTP configs write evaluation_strategy; older configs no_cuda, save_safetensors, logging_dir
    path = write_config_variant(tmp_path, TINY_STAGE_I_CONFIG, evaluation_strategy="no", save_safetensors=True,
                                logging_dir="runs/x", per_gpu_eval_batch_size=3)
    with caplog.at_level("WARNING", logger="llm2vec.training.legacy_keys"):
        *_, training = parse_config(STAGE_I_CONFIG_TYPES, [str(path), "--no_cuda", "true"])
    assert training.eval_strategy == "no" and training.per_device_eval_batch_size == 3 and training.use_cpu
    said = "\n".join(r.getMessage() for r in caplog.records)
    for line in (f"{path}: evaluation_strategy is called eval_strategy", f"{path}: save_safetensors=True",
                 f"{path}: logging_dir='runs/x'", "the command line: no_cuda is called use_cpu"):
        assert line in said


@pytest.mark.parametrize(
    ("changes", "message"),
    [({"save_safetensors": False}, "save_safetensors=False cannot be honoured"),
     ({"evaluation_strategy": "no", "eval_strategy": "no"}, "evaluation_strategy and eval_strategy are the same setting")],
)
def test_a_removed_key_that_cannot_be_honoured_is_an_error(tmp_path: Path, changes: dict, message: str) -> None:
    path = write_config_variant(tmp_path, TINY_STAGE_I_CONFIG, **changes)
    with pytest.raises(ConfigError, match=message) as raised:
        parse_config(STAGE_I_CONFIG_TYPES, [str(path)])
    assert str(path) in str(raised.value)
