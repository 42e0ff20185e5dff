"""LLM2VecConfig: every setting's rule, the stored config's errors naming the file, and a round trip."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, fields
from pathlib import Path

import pytest

from llm2vec.checkpoint_origin import stored_settings
from llm2vec.llm2vec import LLM2Vec
from llm2vec.model_config import CONFIG_NAME, LLM2VecConfig

#: values each setting must refuse (bool is no number here, and no string is a bool)
BAD_VALUES = {
    "pooling_mode": ["cls", "", None],
    "max_length": [0, -1, 1.5, True, "512"],
    "doc_max_length": [0, False, 400.0],
    "skip_instruction": [1, "true", None],
    "enable_bidirectional": [0, "false"],
    "prompt_template": ["llama2", "", None],
    "alpha": [-0.1, 1.5, True, "0.2", None],
    "release_compat": [1, "no"],
    "tokenization": ["release", "", None, True],
    "llm2vec_model_name": [1, True, ["a"]],
}


def test_every_setting_has_bad_values_listed() -> None:
    assert set(BAD_VALUES) == {f.name for f in fields(LLM2VecConfig)}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_each_bad_value_raises_naming_the_setting(name: str) -> None:
    for value in BAD_VALUES[name]:
        with pytest.raises(ValueError, match=rf"^{name} must be .*, got {re.escape(repr(value))}$"):
            LLM2VecConfig(**{name: value})


def test_boundary_values_are_accepted() -> None:
    config = LLM2VecConfig(max_length=1, doc_max_length=1, alpha=0, prompt_template="auto")
    assert (config.max_length, config.alpha) == (1, 0)
    assert LLM2VecConfig(alpha=1).alpha == 1


def test_a_bad_stored_value_is_named_with_its_file(tmp_path: Path) -> None:
    path = tmp_path / CONFIG_NAME
    path.write_text(json.dumps({"pooling_mode": "mean", "alpha": 2}))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: alpha must be a number in \[0, 1\], got 2$"):
        LLM2Vec.resolve_config(tmp_path)


def test_without_a_stored_config_nothing_is_read(tmp_path: Path) -> None:
    assert stored_settings(tmp_path) is None  # e.g. a hub id's folder
    assert LLM2Vec.resolve_config(tmp_path) == LLM2VecConfig()


def test_saved_config_round_trips(tmp_path: Path) -> None:
    config = LLM2VecConfig(
        pooling_mode="weighted_mean", max_length=128, doc_max_length=64, skip_instruction=False,
        enable_bidirectional=True, prompt_template="qwen2", alpha=0.7, release_compat=True,
    )
    path = config.save(tmp_path)
    assert path == tmp_path / CONFIG_NAME
    stored = LLM2VecConfig.checked(stored_settings(tmp_path), path)
    assert stored == asdict(config)
    assert LLM2VecConfig(**stored) == config
    assert LLM2Vec.resolve_config(tmp_path) == config
