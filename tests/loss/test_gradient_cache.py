"""Gradient cache: the cached InfoNCE gives the uncached loss and gradients with mini-batch memory."""

from __future__ import annotations

import pytest
import torch

from llm2vec.llm2vec_contrastive import LLM2VecContrastive, LoraSettings
from llm2vec.loss.gradient_cache import CachedEmbeddings
from tests.stage_II_batch import build_model, features, lora_gradients


@pytest.mark.parametrize("mini_batch_size", [1, 3, 5])
def test_cached_loss_and_gradients_equal_the_uncached_ones(tiny_llama_dir, mini_batch_size):
    batch_rows = 6
    plain = build_model(tiny_llama_dir)
    batch = features(plain, 0, batch_rows)
    plain.train()
    expected = plain(**batch)
    # The Trainer scales the loss for gradient accumulation before backward: the cache must follow.
    (expected.loss * 0.5).backward()
    expected_grads = lora_gradients(plain)

    cached = build_model(tiny_llama_dir)
    cached.train()
    cached.gradient_cache_mini_batch_size = mini_batch_size
    calls: list[int] = []
    original_embed = cached.embed

    def counting_embed(features):
        calls.append(features["input_ids"].shape[0])
        return original_embed(features)

    cached.embed = counting_embed
    output = cached(**batch)
    assert max(calls) <= mini_batch_size, "the encoder never sees more rows than the mini-batch"
    assert all(p.grad is None for p in cached.parameters() if p.requires_grad), "no gradient before backward"
    (output.loss * 0.5).backward()
    assert output.loss.item() == pytest.approx(expected.loss.item(), abs=1e-6)
    assert output.accuracy.item() == pytest.approx(expected.accuracy.item())
    grads = lora_gradients(cached)
    assert grads.keys() == expected_grads.keys()
    for name in grads:
        torch.testing.assert_close(grads[name], expected_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_replay_reproduces_the_cached_embeddings_under_dropout(tiny_llama_dir):
    """Dropout draws the same masks in the replay as in the graph-free pass (RNG states restored)."""
    model = LLM2VecContrastive.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    model.add_lora(LoraSettings(lora_r=4, lora_dropout=0.3), init_lora_weights=False)
    model.train()
    batch = features(model, 0, 5)
    groups = [batch["q_features"], batch["d_features"]]
    cache = CachedEmbeddings(model.embed, groups, mini_batch_size=2)
    replayed: list[torch.Tensor] = []

    def recording_embed(features):
        out = model.embed(features)
        replayed.append(out.detach())
        return out

    cache.embed = recording_embed
    cache.backward_through_encoder([torch.ones_like(leaf) for leaf in cache.leaves])
    torch.testing.assert_close(torch.cat(replayed), torch.cat([leaf.detach() for leaf in cache.leaves]))
    fresh = torch.cat([model.embed(groups[0]), model.embed(groups[1])]).detach()
    assert (fresh - torch.cat(replayed)).abs().max() > 1e-4, "dropout is active: a fresh pass differs"
