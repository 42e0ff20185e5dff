"""Stage I on packed rows (one encoder pass, one decoder pass) equals the padded computation."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from transformers.modeling_flash_attention_utils import prepare_fa_kwargs_from_position_ids

from llm2vec import LLM2Vec_q2d_d2q
from llm2vec.llm2vec_q2d_d2q import StageILossComputation
from llm2vec.packing import (
    VARLEN_SDPA,
    pack_rows,
    pool_packed,
    reconstruction_rows,
    varlen_sdpa_attention_forward,
)
from llm2vec.pooling import POOLING_MODES, pool
from llm2vec.tokenization import SEPARATOR

INSTRUCTION = "Given a question, retrieve passages that answer it; "
QUERIES = [
    f"{INSTRUCTION}{SEPARATOR}where do rivers begin",
    f"{INSTRUCTION}{SEPARATOR}why is the sky blue at noon today",
    f"{INSTRUCTION}{SEPARATOR}bread",
    f"{INSTRUCTION}{SEPARATOR}how do bees make honey in the hive",
]
DOCUMENTS = [
    f"{SEPARATOR}Rivers begin as small streams high in the mountains, fed by rain and melting snow.",
    f"{SEPARATOR}Sunlight scatters off air molecules; blue light scatters most.",
    f"{SEPARATOR}Bread is baked from flour, water and yeast.",
    f"{SEPARATOR}Bees.",
]


def _stage_one(path, block_mask: bool = False, **kwargs) -> LLM2Vec_q2d_d2q:
    """A Stage I model; ``packing``/``ce_implementation``/``ce_chunk_size`` set its loss computation.

    ``block_mask`` puts an sdpa model back on plain sdpa, so that packed rows get transformers'
    block-diagonal mask (the benchmark's ``packed_mask`` variant) instead of the per-sample sdpa.
    """
    names = {f.name for f in dataclasses.fields(StageILossComputation)}
    computation = StageILossComputation(**{k: kwargs.pop(k) for k in names & set(kwargs)})
    model = LLM2Vec_q2d_d2q.from_pretrained(path, dtype=torch.float32, **kwargs)
    model.loss_computation = computation
    if block_mask:
        model.model.config._attn_implementation = "sdpa"
    model.train()
    return model


def _loss_and_grads(model: LLM2Vec_q2d_d2q, queries=QUERIES, documents=DOCUMENTS):
    model.zero_grad()
    q, d = model.tokenize(queries), model.tokenize(documents)
    output = model(q, d)
    output.loss.backward()
    grads = {name: p.grad.detach().clone() for name, p in model.named_parameters()}
    return output, grads


def _assert_same(a, b, atol=1e-5):
    (out_a, grads_a), (out_b, grads_b) = a, b
    for key in ("loss", "q2d_loss", "d2q_loss"):
        assert out_a[key].item() == pytest.approx(out_b[key].item(), abs=atol), key
    torch.testing.assert_close(out_a.q_anchor, out_b.q_anchor, atol=atol, rtol=1e-4)
    torch.testing.assert_close(out_a.d_anchor, out_b.d_anchor, atol=atol, rtol=1e-4)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_a[name], grads_b[name], atol=atol, rtol=1e-4, msg=name)


@pytest.mark.parametrize("family", ["llama3", "qwen2"])
def test_packed_equals_padded_loss_and_gradients(tiny_checkpoint_dir, family):
    path = tiny_checkpoint_dir(family)
    padded = _stage_one(path, packing=False)
    packed = _stage_one(path)
    assert packed.loss_computation.packing and packed.model.config._attn_implementation == VARLEN_SDPA
    q = padded.tokenize(QUERIES)
    assert (q["attention_mask"] == 0).any() and (q["embed_mask"] != q["attention_mask"]).any()
    _assert_same(_loss_and_grads(packed), _loss_and_grads(padded))


@pytest.mark.parametrize("family", ["llama3", "qwen2", "mistral"])
@pytest.mark.parametrize("attention", ["mask", "eager"])
def test_transformers_block_diagonal_mask_gives_the_same_result(tiny_checkpoint_dir, family, attention):
    """Without the varlen sdpa, transformers' packed-sequence mask (sdpa or eager) is used."""
    path = tiny_checkpoint_dir(family)
    reference = _stage_one(path, packing=False)
    if attention == "eager":
        model = _stage_one(path, attn_implementation="eager")
        assert model.model.config._attn_implementation == "eager"
    else:
        model = _stage_one(path, block_mask=True)
        assert model.model.config._attn_implementation == "sdpa"
    _assert_same(_loss_and_grads(model), _loss_and_grads(reference))


@pytest.mark.parametrize("alpha", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("ce_implementation", ["chunked", "fused"])
def test_packed_equals_padded_for_every_alpha_and_cross_entropy(tiny_llama_dir, alpha, ce_implementation):
    padded = _stage_one(tiny_llama_dir, alpha=alpha, packing=False, ce_implementation="chunked")
    packed = _stage_one(tiny_llama_dir, alpha=alpha, ce_implementation=ce_implementation, ce_chunk_size=16)
    _assert_same(_loss_and_grads(packed), _loss_and_grads(padded))


def test_packed_with_activation_checkpointing(tiny_llama_dir):
    reference = _stage_one(tiny_llama_dir, packing=False)
    checkpointed = _stage_one(tiny_llama_dir)
    checkpointed.activation_checkpointing_enable()
    assert checkpointed.model.is_activation_checkpointing
    _assert_same(_loss_and_grads(checkpointed), _loss_and_grads(reference))


def test_packed_bf16_close_to_padded(tiny_llama_dir):
    padded = LLM2Vec_q2d_d2q.from_pretrained(tiny_llama_dir, dtype=torch.bfloat16)
    padded.loss_computation = StageILossComputation(packing=False)
    packed = LLM2Vec_q2d_d2q.from_pretrained(tiny_llama_dir, dtype=torch.bfloat16)
    q, d = padded.tokenize(QUERIES), padded.tokenize(DOCUMENTS)
    expected = padded(q, d).loss.item()
    output = packed(q, d)
    output.loss.backward()
    assert output.loss.item() == pytest.approx(expected, rel=1e-2)
    assert packed.lm_head.weight.grad.dtype == torch.bfloat16


def test_release_compat_ignores_packing(tiny_llama_dir):
    packed = _stage_one(tiny_llama_dir, release_compat=True)
    padded = _stage_one(tiny_llama_dir, release_compat=True, packing=False)
    q, d = packed.tokenize(QUERIES), packed.tokenize(DOCUMENTS)
    assert packed(q, d).loss.item() == padded(q, d).loss.item()


def test_encoding_is_unchanged_by_the_varlen_attention(tiny_llama_dir):
    stage_one = _stage_one(tiny_llama_dir)
    plain = _stage_one(tiny_llama_dir, block_mask=True)
    texts = [q.replace(SEPARATOR, "") for q in QUERIES] + DOCUMENTS
    with torch.no_grad():
        torch.testing.assert_close(
            stage_one.encode(texts, show_progress_bar=False), plain.encode(texts, show_progress_bar=False)
        )


# ---------------------------------------------------------------------------- packing pieces
def _left_padded(rows: list[list[int]], pad: int = 0) -> dict[str, torch.Tensor]:
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad)
    mask = torch.zeros(len(rows), length, dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, length - len(row):] = torch.tensor(row)
        mask[i, length - len(row):] = 1
    return {"input_ids": ids, "attention_mask": mask, "embed_mask": mask.clone()}


def test_pack_rows_layout_and_flash_kwargs():
    q = _left_padded([[1, 5, 6, 2], [1, 7, 2]])
    d = _left_padded([[1, 8, 9, 10, 11, 2], [1, 2]])
    packed = pack_rows(q, d)
    assert packed.input_ids.tolist() == [[1, 5, 6, 2, 1, 7, 2, 1, 8, 9, 10, 11, 2, 1, 2]]
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 4, 5, 0, 1]]
    assert packed.cu_seq_lens.dtype == torch.int32 and packed.cu_seq_lens.tolist() == [0, 4, 7, 13, 15]
    assert packed.last_indices.tolist() == [3, 6, 12, 14]
    kwargs = packed.varlen_kwargs()
    # What flash attention's varlen path would derive from the position ids itself.
    (cu_q, cu_k), (max_q, max_k) = prepare_fa_kwargs_from_position_ids(packed.position_ids)
    assert torch.equal(kwargs["cu_seq_lens_q"], cu_q) and torch.equal(kwargs["cu_seq_lens_k"], cu_k)
    assert kwargs["max_length_q"] == int(max_q) == 6 and kwargs["max_length_k"] == int(max_k)


def test_reconstruction_rows_layout():
    q = _left_padded([[1, 5, 6, 2], [1, 7, 2]])
    d = _left_padded([[1, 8, 9, 10, 11, 2], [2]])  # a counterpart of one token gives no segment
    packed = pack_rows(q, d)
    rows = reconstruction_rows(packed, torch.tensor([0, 1, 2, 3]), torch.tensor([2, 3, 0, 1]))
    # q0 -> d0: [a ; 1 8 9 10] predicts 1 8 9 10 11; q1 -> d1: nothing; d0 -> q0: [a ; 1 5] predicts 1 5 6;
    # d1 -> q1: [a ; 1] predicts 1 7.
    assert rows.targets.tolist() == [1, 8, 9, 10, 11, 1, 5, 6, 1, 7]
    assert rows.input_ids.tolist()[1:5] == [1, 8, 9, 10] and rows.input_ids.tolist()[6:8] == [1, 5]
    assert rows.anchor_slots.tolist() == [0, 5, 8] and rows.anchor_sources.tolist() == [0, 2, 3]
    assert rows.position_ids.tolist() == [[0, 1, 2, 3, 4, 0, 1, 2, 0, 1]]
    assert rows.cu_seq_lens.tolist() == [0, 5, 8, 10] and rows.max_length == 5
    assert rows.targets_per_pair.tolist() == [5, 0, 3, 2]


@pytest.mark.parametrize("mode", POOLING_MODES)
def test_pool_packed_equals_pool(mode):
    generator = torch.Generator().manual_seed(0)
    features = _left_padded([[1, 5, 6, 2], [1, 7, 2], [1, 8, 9, 10, 11, 2]])
    features["embed_mask"][0, -2:] = 0
    features["embed_mask"][1, :] = 0  # nothing left to pool: falls back to all tokens
    hidden = torch.randn(3, features["input_ids"].shape[1], 8, generator=generator)
    packed = pack_rows(features)
    hidden_packed = hidden[features["attention_mask"].bool()][None]
    for skip in (True, False):
        expected = pool(hidden, features["attention_mask"], features["embed_mask"], mode, skip)
        torch.testing.assert_close(pool_packed(hidden_packed, packed, mode, skip), expected)


class _Attention(torch.nn.Module):
    is_causal = True
    num_key_value_groups = 2


@pytest.mark.parametrize("sliding_window", [None, 3])
def test_varlen_sdpa_equals_block_diagonal_attention(sliding_window):
    generator = torch.Generator().manual_seed(0)
    lengths = [5, 1, 7, 4]
    total = sum(lengths)
    query = torch.randn(1, 4, total, 8, generator=generator)
    key = torch.randn(1, 2, total, 8, generator=generator)
    value = torch.randn(1, 2, total, 8, generator=generator)
    packed = pack_rows(_left_padded([[3] * n for n in lengths]))
    output, _ = varlen_sdpa_attention_forward(
        _Attention(), query, key, value, None, scaling=0.3, sliding_window=sliding_window, **packed.varlen_kwargs()
    )
    segment = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    index = torch.arange(total)
    allowed = (segment[:, None] == segment[None, :]) & (index[:, None] >= index[None, :])
    if sliding_window is not None:
        allowed &= index[:, None] - index[None, :] < sliding_window
    expected = F.scaled_dot_product_attention(
        query, key.repeat_interleave(2, dim=1), value.repeat_interleave(2, dim=1), attn_mask=allowed, scale=0.3
    )
    torch.testing.assert_close(output, expected.transpose(1, 2), atol=1e-6, rtol=1e-5)


def test_sliding_window_model_packed_equals_padded(tiny_mistral_dir):
    """A Mistral whose window is shorter than the texts: the varlen sdpa applies the window too."""
    padded = _stage_one(tiny_mistral_dir, packing=False, sliding_window=6)
    packed = _stage_one(tiny_mistral_dir, sliding_window=6)
    assert packed.model.config.sliding_window == 6
    _assert_same(_loss_and_grads(packed), _loss_and_grads(padded))


def test_packed_forward_passes_varlen_kwargs_to_every_attention_call(tiny_llama_dir, monkeypatch):
    """What a flash-attention model receives: cu_seq_lens/max_length for both packed passes."""
    model = _stage_one(tiny_llama_dir)
    seen: list[dict] = []
    from transformers import AttentionInterface

    def recording(module, query, key, value, attention_mask, **kwargs):
        seen.append({k: kwargs.get(k) for k in ("cu_seq_lens_q", "cu_seq_lens_k", "max_length_q", "max_length_k")})
        return varlen_sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)

    monkeypatch.setitem(AttentionInterface._global_mapping, VARLEN_SDPA, recording)
    q, d = model.tokenize(QUERIES), model.tokenize(DOCUMENTS)
    model(q, d)
    layers = model.model.config.num_hidden_layers
    assert len(seen) == 2 * layers  # one encoder pass, one decoder pass
    encoder, decoder = seen[0], seen[layers]
    lengths = torch.cat([q["attention_mask"].sum(1), d["attention_mask"].sum(1)])
    assert encoder["cu_seq_lens_q"].tolist() == [0, *lengths.cumsum(0).tolist()]
    assert encoder["max_length_q"] == int(lengths.max())
    slots = torch.cat([d["attention_mask"].sum(1), q["attention_mask"].sum(1)]) - 1
    assert decoder["cu_seq_lens_q"].tolist() == [0, *slots.cumsum(0).tolist()]
    assert all(call["cu_seq_lens_k"] is call["cu_seq_lens_q"] for call in seen)
