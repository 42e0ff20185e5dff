"""Which folders a checkpoint loads from, which project made it, and llm2vec's prompt formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm2vec.checkpoint_origin import checkpoint_origin, resolve_chain
from llm2vec.model_config import CONFIG_NAME, LLM2VecConfig
from llm2vec.prompts import llm2vec_template


def _folder(path: Path, **files: dict) -> Path:
    path.mkdir(parents=True)
    for name, content in files.items():
        (path / name.replace("__", ".")).write_text(json.dumps(content))
    return path


def test_an_adapter_given_as_base_brings_its_base_first(tmp_path: Path) -> None:
    base = _folder(tmp_path / "base", config__json={"model_type": "llama"}, tokenizer__json={})
    mntp = _folder(tmp_path / "mntp", adapter_config__json={"base_model_name_or_path": str(base)},
                   config__json={"_name_or_path": "meta-llama/Meta-Llama-3-8B-Instruct"}, tokenizer__json={})
    chain = resolve_chain(mntp, [str(tmp_path / "supervised")])
    assert chain.sources == [str(base), str(mntp), str(tmp_path / "supervised")]
    assert chain.tokenizer_source == str(mntp)  # llm2vec reads the tokenizer from the name it was given
    assert chain.name_or_path == "meta-llama/Meta-Llama-3-8B-Instruct"
    # without config.json (a hub-style MNTP repository) the name is the base the adapter names
    bare = _folder(tmp_path / "bare", adapter_config__json={"base_model_name_or_path": str(base)})
    chain = resolve_chain(bare)
    assert (chain.base, chain.adapters, chain.tokenizer_source, chain.name_or_path) == (
        str(base), (str(bare),), str(base), str(base))
    plain = resolve_chain(base, ["a", "b"])
    assert (plain.base, plain.adapters) == (str(base), ("a", "b"))


def test_an_adapter_without_a_base_or_naming_itself_is_an_error(tmp_path: Path) -> None:
    nameless = _folder(tmp_path / "nameless", adapter_config__json={"r": 8})
    with pytest.raises(ValueError, match="names no base_model_name_or_path"):
        resolve_chain(nameless)
    loop = tmp_path / "loop"
    _folder(loop, adapter_config__json={"base_model_name_or_path": str(loop)})
    with pytest.raises(ValueError, match="already in the chain"):
        resolve_chain(loop)


def test_origin_is_told_by_what_llm2vec_config_holds(tmp_path: Path) -> None:
    base = _folder(tmp_path / "base", config__json={})
    ours = tmp_path / "ours"
    ours.mkdir()
    LLM2VecConfig(pooling_mode="mean").save(ours)
    theirs = _folder(tmp_path / "theirs", **{"llm2vec_config__json": {"pooling_mode": "mean", "max_length": 512}})
    bare_adapter = _folder(tmp_path / "adapter", adapter_config__json={"base_model_name_or_path": str(base)})
    assert (ours / CONFIG_NAME).is_file()
    assert checkpoint_origin([str(base)]) == "anchor"  # a plain model
    assert checkpoint_origin([str(base), str(ours)]) == "anchor"
    assert checkpoint_origin([str(base), str(theirs)]) == "llm2vec"
    assert checkpoint_origin([str(theirs)]) == "llm2vec"
    assert checkpoint_origin([str(base), str(bare_adapter)]) == "llm2vec"  # an adapter chain without settings
    assert checkpoint_origin([str(base), str(bare_adapter), str(ours)]) == "anchor"


@pytest.mark.parametrize(
    ("name", "pooling", "model_type", "formatted"),
    [
        # llm2vec.py prepare_for_tokenization, case by case
        ("meta-llama/Meta-Llama-3-8B-Instruct", "eos_token", "llama",
         "<|start_header_id|>user<|end_header_id|>\n\nQ: x<|eot_id|>"),
        ("meta-llama/Meta-Llama-3-8B-Instruct", "mean", "llama",
         "<|start_header_id|>user<|end_header_id|>\n\nQ: x<|eot_id|>"),
        ("mistralai/Mistral-7B-Instruct-v0.2", "mean", "mistral", "[INST] Q: x [/INST]"),
        ("mistralai/Mistral-7B-Instruct-v0.2", "eos_token", "mistral", "[INST] Q: x [/INST] </s>"),
        ("google/gemma-2-9b-it", "mean", "gemma2", "<bos><start_of_turn>user\nQ: x<end_of_turn>"),
        ("Qwen/Qwen2-7B-Instruct", "eos_token", "qwen2", "<|im_start|>user\nQ: x<|im_end|><|endoftext|>"),
        ("meta-llama/Meta-Llama-3-8B", "eos_token", "llama", "Q: x<|end_of_text|>"),
        ("some/llama", "eos_token", "llama", "Q: x </s>"),
        ("some/gemma", "eos_token", "gemma", "Q: x<eos>"),
        ("some/qwen", "eos_token", "qwen2", "Q: x<|endoftext|>"),
        ("some/phi", "eos_token", "phi3", "  Q: x "),  # no rule applies: the text as it is
        ("some/llama", "mean", "llama", "  Q: x "),
    ],
)
def test_llm2vec_template_formats_as_llm2vec_does(name: str, pooling: str, model_type: str, formatted: str) -> None:
    template = llm2vec_template(name, pooling, model_type)
    text = "  Q: x "
    content = text.strip() if template.strip_text else text
    assert template.prefix + content + template.suffix == formatted


def test_hub_repositories_are_read_through_the_hub_cache(tmp_path: Path, monkeypatch) -> None:
    """Hub ids go through transformers' cached_file (no network here: it is pointed at local folders)."""
    import transformers.utils

    base = _folder(tmp_path / "hub" / "meta-llama" / "Meta-Llama-3-8B-Instruct", config__json={"model_type": "llama"},
                   tokenizer__json={})
    mntp = _folder(tmp_path / "hub" / "McGill-NLP" / "mntp",
                   adapter_config__json={"base_model_name_or_path": "meta-llama/Meta-Llama-3-8B-Instruct"},
                   config__json={"_name_or_path": "meta-llama/Meta-Llama-3-8B-Instruct"}, tokenizer__json={})
    _folder(tmp_path / "hub" / "McGill-NLP" / "supervised", adapter_config__json={"base_model_name_or_path": "x"},
            **{"llm2vec_config__json": {"pooling_mode": "mean"}})
    asked = []

    def cached_file(repo: str, filename: str, **kwargs):
        asked.append((repo, filename))
        path = tmp_path / "hub" / repo / filename
        return str(path) if path.is_file() else None

    monkeypatch.setattr(transformers.utils, "cached_file", cached_file)
    chain = resolve_chain("McGill-NLP/mntp", ["McGill-NLP/supervised"])
    assert chain.sources == ["meta-llama/Meta-Llama-3-8B-Instruct", "McGill-NLP/mntp", "McGill-NLP/supervised"]
    # transformers loads the base the adapter names, so llm2vec sees that name (its config.json is
    # read for the name only when the MNTP repository is a local folder)
    assert chain.name_or_path == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert chain.tokenizer_source == "McGill-NLP/mntp"
    assert checkpoint_origin(chain.sources) == "llm2vec"
    assert ("McGill-NLP/supervised", "llm2vec_config.json") in asked
    assert mntp.is_dir() and base.is_dir()
