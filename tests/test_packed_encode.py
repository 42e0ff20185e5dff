"""Padding-free encode: the packed path gives the padded path's embeddings for every pooling mode,
family, attention direction and tokenization, batches by a token budget, and is chosen only where
the attention can keep packed samples apart."""

from __future__ import annotations

import pytest
import torch

from llm2vec import LLM2Vec
from llm2vec.packing import VARLEN_SDPA, packed_call, supports_packing, token_budget_batches, varlen_sdpa_mask
from llm2vec.pooling import POOLING_MODES
from llm2vec.testing.tiny_models import tiny_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _texts() -> list[object]:
    corpus = tiny_corpus(60, seed=7)
    texts: list[object] = []
    for i in range(0, 48, 3):
        # lengths from a few words to past doc_max_length, with and without instructions
        long_text = " ".join(corpus[i : i + 1 + (i % 9)])
        texts.append(long_text)
        texts.append(["Retrieve the passage that answers the question", corpus[i + 1]])
        texts.append(corpus[i + 2].split()[0])
    return texts


@pytest.mark.parametrize("pooling_mode", POOLING_MODES)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_packed_equals_padded_every_pooling_mode(tiny_family_dir, pooling_mode: str, bidirectional: bool) -> None:
    family, path = tiny_family_dir
    encoder = LLM2Vec.from_pretrained(
        path, pooling_mode=pooling_mode, enable_bidirectional=bidirectional, doc_max_length=40,
        attn_implementation="sdpa",
    )
    texts = _texts()
    padded = encoder.encode(texts, batch_size=5, show_progress_bar=False, packing=False)
    packed = encoder.encode(texts, batch_size=5, show_progress_bar=False, packing=True)
    assert packed.shape == padded.shape == (len(texts), 32)
    assert torch.allclose(packed, padded, atol=1e-5, rtol=0), (family, (packed - padded).abs().max())
    if pooling_mode != "bos_token" or bidirectional:  # a causal BOS state is the same for every text
        # the embeddings differ between texts: a mix-up of rows would not pass as equal
        assert (padded[0] - padded[1]).abs().max() > 1e-3


def test_packed_equals_padded_under_llm2vec_tokenization(tiny_llama_dir) -> None:
    encoder = LLM2Vec.from_pretrained(
        tiny_llama_dir, tokenization="llm2vec", pooling_mode="mean", enable_bidirectional=True,
        max_length=48, doc_max_length=30, attn_implementation="sdpa",
    )
    texts = _texts()
    padded = encoder.encode(texts, batch_size=4, show_progress_bar=False, packing=False)
    packed = encoder.encode(texts, batch_size=4, show_progress_bar=False)
    assert torch.allclose(packed, padded, atol=1e-5, rtol=0)


def test_packed_embeddings_do_not_depend_on_the_batch(tiny_qwen_dir) -> None:
    encoder = LLM2Vec.from_pretrained(tiny_qwen_dir, pooling_mode="mean", attn_implementation="sdpa")
    texts = _texts()
    together = encoder.encode(texts, show_progress_bar=False, max_batch_tokens=4000)
    alone = torch.stack([encoder.encode([t], show_progress_bar=False)[0] for t in texts[:6]])
    small = encoder.encode(texts, show_progress_bar=False, max_batch_tokens=30)
    assert torch.allclose(together[:6], alone, atol=1e-5, rtol=0)
    assert torch.allclose(together, small, atol=1e-5, rtol=0)


def test_token_budget_batches_longest_first() -> None:
    assert token_budget_batches([10, 8, 5, 5, 2, 1], 16) == [[0], [1, 2], [3, 4, 5]]
    # an item longer than the budget gets its own batch instead of being dropped
    assert token_budget_batches([30, 3, 3], 8) == [[0], [1, 2]]
    assert token_budget_batches([], 8) == []
    with pytest.raises(ValueError, match="budget must be positive"):
        token_budget_batches([1], 0)


def test_default_budget_is_batch_size_times_longest(tiny_llama_dir, monkeypatch) -> None:
    encoder = LLM2Vec.from_pretrained(tiny_llama_dir, attn_implementation="sdpa")
    seen: list[int] = []
    original = encoder.packed_hidden_states

    def spy(packed):
        seen.append(packed.num_sequences)
        return original(packed)

    monkeypatch.setattr(encoder, "packed_hidden_states", spy)
    texts = ["word " * 40] + ["short text"] * 60
    encoder.encode(texts, batch_size=4, show_progress_bar=False)
    longest = len(encoder.embedding_tokenizer.encode_text(encoder._as_text(texts[0]), encoder.doc_max_length).input_ids)
    short = len(encoder.embedding_tokenizer.encode_text("short text", encoder.doc_max_length).input_ids)
    # the long text first, then short texts filling 4 x longest tokens
    assert seen[0] == 1 + (4 * longest - longest) // short
    assert sum(seen) == len(texts)


def test_eager_attention_and_release_compat_pad(tiny_llama_dir) -> None:
    eager = LLM2Vec.from_pretrained(tiny_llama_dir, attn_implementation="eager", pooling_mode="mean")
    assert not supports_packing(eager.model)
    assert not eager._packs(None)
    # forced, eager packs through transformers' dense block-diagonal mask: same embeddings
    texts = _texts()[:9]
    forced = eager.encode(texts, show_progress_bar=False, packing=True)
    assert torch.allclose(forced, eager.encode(texts, show_progress_bar=False), atol=1e-5, rtol=0)
    assert eager.model.config._attn_implementation == "eager"
    compat = LLM2Vec.from_pretrained(tiny_llama_dir, release_compat=True, attn_implementation="sdpa")
    assert not compat._packs(None)
    with pytest.raises(ValueError, match="release_compat"):
        compat.encode(["a text"], show_progress_bar=False, packing=True)
    with pytest.raises(ValueError, match="max_batch_tokens applies to packed"):
        compat.encode(["a text"], show_progress_bar=False, max_batch_tokens=100)


def test_packed_call_skips_the_dense_mask() -> None:
    kwargs = dict(batch_size=1, q_length=6, kv_length=6, allow_is_causal_skip=False)
    mask = varlen_sdpa_mask(**kwargs)
    assert mask is not None and mask.shape == (1, 1, 6, 6)
    with packed_call():
        assert varlen_sdpa_mask(**kwargs) is None
    assert varlen_sdpa_mask(**kwargs) is not None


def test_encode_switches_sdpa_to_varlen(tiny_mistral_dir) -> None:
    encoder = LLM2Vec.from_pretrained(tiny_mistral_dir, attn_implementation="sdpa")
    encoder.encode(["one text", "another text"], show_progress_bar=False)
    assert encoder.model.config._attn_implementation == VARLEN_SDPA


def test_packed_encode_builds_no_dense_mask(tiny_llama_dir, monkeypatch) -> None:
    import transformers.masking_utils as masking_utils

    encoder = LLM2Vec.from_pretrained(tiny_llama_dir, attn_implementation="sdpa")
    texts = _texts()[:8]
    padded = encoder.encode(texts, show_progress_bar=False, packing=False)
    calls: list[int] = []
    original = masking_utils.sdpa_mask

    def counting(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(masking_utils, "sdpa_mask", counting)
    packed = encoder.encode(texts, show_progress_bar=False)
    assert calls == []
    assert torch.allclose(packed, padded, atol=1e-5, rtol=0)
    encoder.encode(texts, show_progress_bar=False, packing=False)
    assert calls  # the padded path still builds sdpa's padding mask
