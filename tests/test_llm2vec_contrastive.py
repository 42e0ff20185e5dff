"""The Stage II model: which parameters train, the loss of the pooled embeddings, and its LoRA or
full-parameter checkpoints (reload, resume, merge before a fresh adapter)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from llm2vec import LLM2Vec
from llm2vec.llm2vec_contrastive import LORA_TARGET_MODULES, LLM2VecContrastive, LoraSettings
from llm2vec.loss.hard_negative_nll_loss import HardNegativeNLLLoss
from tests.stage_II_batch import ADAPTER_FILES, LOSS_SCALE, TEXTS, build_model, encode, features


def _lora_model(model_dir: Path, **settings: Any) -> LLM2VecContrastive:
    model = LLM2VecContrastive.from_pretrained(model_dir, dtype=torch.float32)
    model.add_lora(LoraSettings(**settings))
    return model


def test_only_lora_parameters_train(tiny_llama_dir: Path) -> None:
    model = _lora_model(tiny_llama_dir, lora_r=8)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    layers = model.model.config.num_hidden_layers
    # lora_A and lora_B of every target projection of every layer, and nothing else
    assert len(trainable) == 2 * len(LORA_TARGET_MODULES) * layers
    assert all(".lora_A." in name or ".lora_B." in name for name in trainable)
    for target in LORA_TARGET_MODULES:
        assert sum(f".{target}.lora_" in name for name in trainable) == 2 * layers, target
    assert any("embed_tokens" in name for name in frozen) and not any("lora_" in name for name in frozen)
    config = model.model.peft_config["default"]
    assert config.r == 8 and config.lora_alpha == 16  # alpha defaults to 2 r
    assert config.lora_dropout == pytest.approx(0.05) and config.bias == "none"
    assert set(config.target_modules) == set(LORA_TARGET_MODULES)
    with pytest.raises(ValueError, match="already has a LoRA adapter"):
        model.add_lora(LoraSettings(lora_r=8))

    full = LLM2VecContrastive.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    full.train_full_parameters()
    assert all(p.requires_grad for p in full.parameters())
    assert not any("lora_" in name for name, _ in full.named_parameters())
    explicit = _lora_model(tiny_llama_dir, lora_r=4, lora_alpha=5)
    assert explicit.model.peft_config["default"].lora_alpha == 5


def test_forward_is_the_loss_of_the_pooled_embeddings_and_only_lora_gets_gradients(tiny_llama_dir: Path) -> None:
    model = build_model(tiny_llama_dir)
    batch = features(model, 0, 4)
    output = model(**batch)
    with torch.no_grad():
        embeddings = [model.embed(batch[key]) for key in ("q_features", "d_features", "n_features")]
        scores, labels = HardNegativeNLLLoss(LOSS_SCALE).scores(*embeddings)
    assert output.loss.item() == pytest.approx(HardNegativeNLLLoss(LOSS_SCALE)(*embeddings).item(), abs=1e-6)
    assert output.accuracy.item() == pytest.approx((scores.argmax(-1) == labels).float().mean().item())
    without_negatives = model(q_features=batch["q_features"], d_features=batch["d_features"])
    assert without_negatives.loss.item() != pytest.approx(output.loss.item(), abs=1e-4)

    output.loss.backward()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None and parameter.grad.abs().max() > 0, name
        else:
            assert parameter.grad is None, name


def test_adapter_checkpoint_reloads_and_restores_exactly(tiny_llama_dir: Path, tmp_path: Path) -> None:
    trained = build_model(tiny_llama_dir)  # random non-zero LoRA B: the adapter matters
    expected = encode(trained, TEXTS)
    checkpoint = trained.save(tmp_path / "checkpoint")
    for name in ADAPTER_FILES:
        assert (checkpoint / name).is_file(), name
    assert not (checkpoint / "model.safetensors").exists(), "only the adapter is saved"
    assert all("lora_" in key for key in load_file(checkpoint / "adapter_model.safetensors"))

    reloaded = LLM2Vec.from_pretrained(tiny_llama_dir, peft_model_name_or_path=checkpoint)
    assert torch.allclose(encode(reloaded, TEXTS), expected, atol=1e-6)
    base = encode(LLM2Vec.from_pretrained(tiny_llama_dir), TEXTS)
    assert (base - expected).abs().max() > 1e-3, "the adapter must change the embeddings"

    # Resume: a fresh adapter (B = 0) gets exactly the saved weights back.
    fresh = LLM2VecContrastive.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    fresh.add_lora(LoraSettings(lora_r=4, lora_dropout=0.0))
    fresh.load_checkpoint_weights(checkpoint)
    trained_state = {n: p for n, p in trained.named_parameters() if p.requires_grad}
    fresh_state = {n: p for n, p in fresh.named_parameters() if p.requires_grad}
    assert trained_state.keys() == fresh_state.keys()
    assert all(torch.equal(trained_state[n], fresh_state[n]) for n in trained_state)

    wrong_rank = _lora_model(tiny_llama_dir, lora_r=8)
    with pytest.raises(ValueError, match="LoRA rank"):
        wrong_rank.load_checkpoint_weights(checkpoint)


def test_full_parameter_checkpoint_is_a_full_model(tiny_llama_dir: Path, tmp_path: Path) -> None:
    model = LLM2VecContrastive.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    model.train_full_parameters()
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.add_(0.05)
    expected = encode(model, TEXTS)
    checkpoint = model.save(tmp_path / "full")
    assert (checkpoint / "model.safetensors").is_file() and not (checkpoint / "adapter_config.json").exists()
    assert torch.allclose(encode(LLM2Vec.from_pretrained(checkpoint), TEXTS), expected, atol=1e-6)
    resumed = LLM2VecContrastive.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    resumed.train_full_parameters()
    resumed.load_checkpoint_weights(checkpoint)
    assert torch.equal(resumed.model.layers[0].mlp.down_proj.weight, model.model.layers[0].mlp.down_proj.weight)


def test_given_adapter_is_merged_before_the_fresh_lora(tiny_llama_dir: Path, tmp_path: Path) -> None:
    first = build_model(tiny_llama_dir)
    first_dir = first.save(tmp_path / "first_adapter")
    expected = encode(first, TEXTS)
    model = LLM2VecContrastive.from_pretrained(
        tiny_llama_dir, peft_model_name_or_path=first_dir, merge_peft=True, dtype=torch.float32
    )
    assert not model.has_adapter
    assert torch.allclose(encode(model, TEXTS), expected, atol=1e-5)
    model.add_lora(LoraSettings(lora_r=8))  # a fresh adapter starts at B = 0: the merged model's embeddings are kept
    assert torch.allclose(encode(model, TEXTS), expected, atol=1e-5)
