"""Fingerprints of model folders by content, hub ids by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from llm2vec.fingerprint import chain_fingerprint, digest, file_digest, same_source, source_fingerprint


def test_a_folder_is_identified_by_the_content_of_its_embedding_files(tiny_llama_dir: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(tiny_llama_dir, tmp_path / "copy"))
    (copy / "trainer_state.json").write_text("{}")  # not an embedding file: ignored
    original, copied = source_fingerprint(tiny_llama_dir), source_fingerprint(copy)
    assert "model.safetensors" in original["files"] and "trainer_state.json" not in copied["files"]
    assert same_source(original, copied) is True and digest(original) == digest(copied)
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert same_source(original, source_fingerprint(copy)) is False
    assert file_digest(weights) != file_digest(tiny_llama_dir / "model.safetensors")


def test_hub_ids_compare_by_name_and_never_with_a_folder(tiny_llama_dir: Path) -> None:
    hub = source_fingerprint("meta-llama/Llama-3.2-1B-Instruct")
    assert hub == {"hub_id": "meta-llama/Llama-3.2-1B-Instruct", "revision": None}
    assert same_source(hub, source_fingerprint("meta-llama/Llama-3.2-1B-Instruct")) is True
    assert same_source(hub, source_fingerprint("other/model")) is False
    assert same_source(hub, source_fingerprint(tiny_llama_dir)) is None
    assert len(chain_fingerprint([tiny_llama_dir, "org/adapter"])) == 2


def test_a_folder_without_model_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="holds no model or adapter files"):
        source_fingerprint(tmp_path)
