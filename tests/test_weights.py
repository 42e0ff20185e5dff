"""weights: reading a safetensors folder (one file or shards listed in an index) and strict loading."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file
from torch import nn

from llm2vec.weights import SAFETENSORS_INDEX_NAME, SAFETENSORS_NAME, load_into, read_safetensors_folder


def _assert_same(read: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert read.keys() == expected.keys()
    for key in expected:
        assert read[key].dtype == expected[key].dtype and torch.equal(read[key], expected[key]), key


def test_reads_a_single_file(tmp_path: Path) -> None:
    state = {"embed.weight": torch.arange(6.0).reshape(2, 3), "steps": torch.tensor([3, 1], dtype=torch.int64)}
    save_file(state, tmp_path / SAFETENSORS_NAME)
    _assert_same(read_safetensors_folder(tmp_path), state)


def test_reads_the_shards_listed_in_the_index(tmp_path: Path) -> None:
    first = {"a.weight": torch.randn(4, 2)}
    second = {"b.weight": torch.randn(3), "b.bias": torch.tensor([0.5], dtype=torch.bfloat16)}
    save_file(first, tmp_path / "model-00001-of-00002.safetensors")
    save_file(second, tmp_path / "model-00002-of-00002.safetensors")
    save_file({"stray": torch.zeros(1)}, tmp_path / "not-in-the-index.safetensors")
    weight_map = {"a.weight": "model-00001-of-00002.safetensors"}
    weight_map.update(dict.fromkeys(second, "model-00002-of-00002.safetensors"))
    (tmp_path / SAFETENSORS_INDEX_NAME).write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    _assert_same(read_safetensors_folder(str(tmp_path)), {**first, **second})


def test_a_folder_without_weights_is_named(tmp_path: Path) -> None:
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=re.escape(f"{tmp_path} has neither {SAFETENSORS_NAME}")):
        read_safetensors_folder(tmp_path)


def test_load_into_is_strict_except_for_allowed_missing_keys() -> None:
    torch.manual_seed(0)
    source, target = nn.Linear(3, 2), nn.Linear(3, 2)
    state = {name: tensor.clone() for name, tensor in source.state_dict().items()}
    load_into(target, state)
    assert torch.equal(target.weight, source.weight) and torch.equal(target.bias, source.bias)

    other = nn.Linear(3, 2)
    bias = other.bias.detach().clone()
    with pytest.raises(ValueError, match=r"missing \['bias'\], unexpected \[\]"):
        load_into(other, {"weight": state["weight"]})
    load_into(other, {"weight": state["weight"]}, allowed_missing={"bias"})
    assert torch.equal(other.weight, source.weight) and torch.equal(other.bias, bias)  # bias left as it was
    with pytest.raises(ValueError, match=r"missing \[\], unexpected \['extra'\]"):
        load_into(other, {**state, "extra": torch.zeros(1)}, allowed_missing={"bias"})


def test_a_truncated_file_is_named(tmp_path: Path) -> None:
    save_file({"w": torch.ones(8)}, str(tmp_path / "model.safetensors"))
    path = tmp_path / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-8])
    with pytest.raises(ValueError, match=f"{path} cannot be read as safetensors .*truncated"):
        read_safetensors_folder(tmp_path)
