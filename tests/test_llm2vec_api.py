"""llm2vec's public API on this package: the keyword constructor, encode's inputs, save's
``save_config``, the method names user code calls, and the ``*BiModel`` class names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from llm2vec import LLM2Vec
from llm2vec.llm2vec import is_bidirectional, set_bidirectional_attention
from llm2vec.model_config import CONFIG_NAME
from llm2vec.tokenization import SEPARATOR


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _parts(path: Path):
    return AutoModel.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


def test_keyword_constructor_takes_llm2vec_settings(tiny_llama_dir: Path) -> None:
    model, tokenizer = _parts(tiny_llama_dir)
    encoder = LLM2Vec(model, tokenizer, pooling_mode="mean", max_length=64, doc_max_length=20, skip_instruction=False)
    assert (encoder.pooling_mode, encoder.max_length, encoder.doc_max_length, encoder.skip_instruction) == (
        "mean", 64, 20, False)
    positional = LLM2Vec(model, tokenizer, "weighted_mean", 128)  # llm2vec's order
    assert (positional.pooling_mode, positional.max_length) == ("weighted_mean", 128)
    with pytest.raises(TypeError, match="pooling_mode given twice"):
        LLM2Vec(model, tokenizer, "mean", pooling_mode="eos_token")
    with pytest.raises(ValueError, match="pooling_mode must be"):
        LLM2Vec(model, tokenizer, pooling_mode="cls")


def test_constructor_keeps_the_attention_the_model_has(tiny_llama_dir: Path) -> None:
    model, tokenizer = _parts(tiny_llama_dir)
    assert not LLM2Vec(model, tokenizer).llm2vec_config.enable_bidirectional and not is_bidirectional(model)
    set_bidirectional_attention(model, True)
    encoder = LLM2Vec(model, tokenizer, pooling_mode="mean")
    assert encoder.llm2vec_config.enable_bidirectional and is_bidirectional(encoder.model)


def test_encode_takes_triples_pairs_and_strings(tiny_llama_dir: Path) -> None:
    encoder = LLM2Vec(*_parts(tiny_llama_dir), pooling_mode="mean")
    pairs = [["Retrieve a passage:", "whales live in the ocean"], ["", "the sky is blue"]]
    triples = [[instruction, text, index] for index, (instruction, text) in enumerate(pairs)]
    strings = ["Retrieve a passage: " + SEPARATOR + "whales live in the ocean", "the sky is blue"]
    from_pairs = encoder.encode(pairs, show_progress_bar=False)
    assert torch.equal(encoder.encode(triples, show_progress_bar=False), from_pairs)
    assert torch.equal(encoder.encode(strings, show_progress_bar=False), from_pairs)
    one = encoder.encode(triples[0], show_progress_bar=False)  # one triple is one input, as in llm2vec
    assert one.shape == from_pairs[0].shape and torch.allclose(one, from_pairs[0], atol=1e-6)
    assert (from_pairs[0] - from_pairs[1]).abs().max() > 1e-3
    with pytest.raises(ValueError, match="triple"):
        encoder.encode([["a", "b", "not an id"]], show_progress_bar=False)


def test_get_pooling_and_forward_are_the_encoders_own(tiny_llama_dir: Path) -> None:
    encoder = LLM2Vec(*_parts(tiny_llama_dir), pooling_mode="mean")
    features = encoder.tokenize(["Find it; " + SEPARATOR + "a short text", SEPARATOR + "another, longer text here"])
    with torch.no_grad():
        hidden = encoder.hidden_states(features)
        pooled = encoder.get_pooling(features, hidden)
        # mean over the text's tokens (the embed mask), by hand
        mask = features["embed_mask"].unsqueeze(-1).float()
        assert torch.allclose(pooled, (hidden * mask).sum(1) / mask.sum(1), atol=1e-6)
        assert torch.equal(encoder(features), pooled)
    wrapped = encoder.prepare_for_tokenization("  hello  ")
    assert wrapped == encoder.template.prefix + "hello" + encoder.embedding_tokenizer.suffix
    # llm2vec's pattern wraps once: tokenize(prepare_for_tokenization(t)) is tokenize(t)
    texts = ["Find it; " + SEPARATOR + "a short text", "plain"]
    prepared = encoder.tokenize([encoder.prepare_for_tokenization(t) for t in texts])
    direct = encoder.tokenize(texts)
    assert all(torch.equal(prepared[k], direct[k]) for k in direct)


def test_save_config_false_writes_no_settings(tiny_llama_dir: Path, tmp_path: Path) -> None:
    encoder = LLM2Vec(*_parts(tiny_llama_dir), pooling_mode="mean", max_length=64)
    encoder.save(tmp_path / "with")
    encoder.save(tmp_path / "without", save_config=False)
    assert json.loads((tmp_path / "with" / CONFIG_NAME).read_text())["pooling_mode"] == "mean"
    assert not (tmp_path / "without" / CONFIG_NAME).exists()
    assert (tmp_path / "without" / "model.safetensors").is_file()
    assert LLM2Vec.from_pretrained(tmp_path / "with").max_length == 64
    assert LLM2Vec.from_pretrained(tmp_path / "without").max_length == 512


@pytest.mark.parametrize("family", ["llama3", "mistral", "qwen2"])
def test_bi_model_names_load_bidirectional_weights(family: str, tiny_checkpoint_dir) -> None:
    from llm2vec import models

    path = tiny_checkpoint_dir(family)
    name = {"llama3": "Llama", "mistral": "Mistral", "qwen2": "Qwen2"}[family]
    bi = getattr(models, f"{name}BiModel").from_pretrained(path).eval()
    causal = AutoModel.from_pretrained(path).eval()
    assert is_bidirectional(bi) and not is_bidirectional(causal)
    ids = torch.tensor([[5, 6, 7, 8, 9, 10]])
    with torch.no_grad():
        bidirectional = bi(input_ids=ids).last_hidden_state
        assert (bidirectional - causal(input_ids=ids).last_hidden_state).abs().max() > 1e-3
        set_bidirectional_attention(causal, True)
        assert torch.equal(bidirectional, causal(input_ids=ids).last_hidden_state)
    mntp = getattr(models, f"{name}BiForMNTP").from_pretrained(path)
    assert is_bidirectional(mntp) and mntp.lm_head is not None


@pytest.mark.parametrize("model_type", ["llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text", "phi3"])
def test_the_bidirectional_switch_reaches_every_family(model_type: str) -> None:
    from transformers import AutoConfig

    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, head_dim=8, vocab_size=100,
                                  pad_token_id=0, bos_token_id=1, eos_token_id=2)
    model = AutoModel.from_config(config).eval()
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    with torch.no_grad():
        causal = model(input_ids=ids).last_hidden_state
        assert set_bidirectional_attention(model, True) > 0 and is_bidirectional(model)
        bidirectional = model(input_ids=ids).last_hidden_state
    # the first token now sees the ones after it
    assert (causal[0, 0] - bidirectional[0, 0]).abs().max() > 1e-3
