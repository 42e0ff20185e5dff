"""Model sources: paths versus hub ids, the base an adapter records, unreadable weight files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from llm2vec.model_sources import (
    ADAPTER_BASE_NAME,
    ModelSourceError,
    check_adapter_base,
    check_source,
    explain_load_error,
    looks_like_path,
    write_adapter_base,
)


@pytest.mark.parametrize(
    "name, path",
    [("meta-llama/Llama-3.2-1B", False), ("gpt2", False), ("/abs/model", True), ("./model", True),
     ("../model", True), ("~/model", True), ("runs/a/model", True), ("model/", True), ("a\\b", True)],
)
def test_what_looks_like_a_path(name, path):
    assert looks_like_path(name) is path


def test_a_hub_id_is_left_to_the_hub_and_a_missing_path_refused(tmp_path):
    check_source("org/model")  # not checked here: transformers resolves hub ids
    check_source(tmp_path)
    with pytest.raises(ModelSourceError, match="adapter folder .*/x does not exist"):
        check_source(tmp_path / "x", "adapter")


def _folder(path: Path, value: float) -> Path:
    path.mkdir()
    save_file({"w": torch.full((2,), value)}, str(path / "model.safetensors"))
    (path / "config.json").write_text("{}")
    return path


def test_an_adapter_record_is_compared_by_content(tmp_path):
    base, copy, other = _folder(tmp_path / "base", 1.0), _folder(tmp_path / "copy", 1.0), _folder(tmp_path / "other", 2.0)
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    write_adapter_base(adapter, [base])
    assert json.loads((adapter / ADAPTER_BASE_NAME).read_text())["sources"] == [str(base)]
    check_adapter_base(adapter, [base], allow_mismatch=False)
    check_adapter_base(adapter, [copy], allow_mismatch=False)
    with pytest.raises(ModelSourceError, match=f"trained on {base}, not on {other}"):
        check_adapter_base(adapter, [other], allow_mismatch=False)
    with pytest.raises(ModelSourceError, match="not on .* \\+ "):  # an adapter chain of another length
        check_adapter_base(adapter, [base, copy], allow_mismatch=False)
    check_adapter_base(adapter, [other], allow_mismatch=True)


def test_an_adapter_without_record_is_compared_by_hub_id_only(tmp_path):
    adapter = tmp_path / "adapter"
    adapter.mkdir()
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "org/base"}))
    check_adapter_base(adapter, ["org/base"], allow_mismatch=False)
    check_adapter_base(adapter, [str(_folder(tmp_path / "local", 1.0))], allow_mismatch=False)  # cannot tell
    with pytest.raises(ModelSourceError, match="trained on org/base, not on org/other"):
        check_adapter_base(adapter, ["org/other"], allow_mismatch=False)


def test_a_truncated_weight_file_is_found_and_named(tmp_path):
    folder = _folder(tmp_path / "model", 1.0)
    assert explain_load_error(RuntimeError("anything"), [folder]) is None
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4])  # the header is intact, the data is not
    explained = explain_load_error(RuntimeError("anything"), [folder])
    assert isinstance(explained, ModelSourceError) and str(weights) in str(explained)
    assert "truncated or damaged" in str(explained)
