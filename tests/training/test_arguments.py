"""The run scripts' argument dataclasses: their defaults are the models' own, and a bad value of a
setting fails parsing with the key and the config file."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm2vec.llm2vec_contrastive import LoraSettings
from llm2vec.llm2vec_q2d_d2q import StageILossComputation
from llm2vec.loss.hard_negative_nll_loss import DEFAULT_SCALE
from llm2vec.model_config import LLM2VecConfig
from llm2vec.training.arguments import (
    STAGE_I_CONFIG_TYPES,
    STAGE_II_CONFIG_TYPES,
    ModelArguments,
    StageIArguments,
    StageIIArguments,
)
from llm2vec.training.config_parsing import ConfigError, parse_config
from tests.helpers import TINY_STAGE_I_CONFIG, TINY_STAGE_II_CONFIG, write_config_variant


def test_defaults_are_those_of_the_model_settings() -> None:
    encoder = LLM2VecConfig()
    model = ModelArguments(model_name_or_path="unused")
    assert (model.pooling_mode, model.max_seq_length, model.prompt_template, model.bidirectional) == (
        encoder.pooling_mode, encoder.max_length, encoder.prompt_template, encoder.enable_bidirectional
    )
    assert (StageIArguments().alpha, StageIArguments().release_compat) == (encoder.alpha, encoder.release_compat)
    assert StageIIArguments().loss_scale == DEFAULT_SCALE
    # the models' settings classes are parsed as they are
    assert StageILossComputation in STAGE_I_CONFIG_TYPES and LoraSettings in STAGE_II_CONFIG_TYPES


@pytest.mark.parametrize(
    "key, value",
    [("ce_implementation", "fast"), ("ce_implementation", "liger"), ("ce_chunk_size", 0), ("alpha", 1.5),
     ("pooling_mode", "cls"), ("max_seq_length", 0)],
)
def test_bad_loss_settings_are_rejected_with_the_key_and_file(tmp_path: Path, key: str, value: object) -> None:
    path = write_config_variant(tmp_path, TINY_STAGE_I_CONFIG, "bad_setting.json", **{key: value})
    with pytest.raises(ConfigError, match=rf"bad_setting\.json.*{key}"):
        parse_config(STAGE_I_CONFIG_TYPES, [str(path)])


@pytest.mark.parametrize(
    "key, value",
    [("loss_scale", 0), ("loss_scale", -20.0), ("gradient_cache_mini_batch_size", 0), ("lora_r", 0),
     ("lora_alpha", 0), ("lora_dropout", 1.0), ("lora_target_modules", []), ("prompt_template", "llama2")],
)
def test_bad_stage_II_settings_are_rejected_with_the_key_and_file(tmp_path: Path, key: str, value: object) -> None:
    path = write_config_variant(tmp_path, TINY_STAGE_II_CONFIG, "bad_setting.json", **{key: value})
    with pytest.raises(ConfigError, match=rf"bad_setting\.json.*{key}"):
        parse_config(STAGE_II_CONFIG_TYPES, [str(path)])
