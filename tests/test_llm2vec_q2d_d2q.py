"""Stage I loss: against hand computations, the release's semantics, padding and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from llm2vec import LLM2Vec, LLM2Vec_q2d_d2q
from llm2vec.tokenization import SEPARATOR

QUERIES = [
    f"Given a question, retrieve passages that answer it; {SEPARATOR}where do rivers begin",
    f"Given a question, retrieve passages that answer it; {SEPARATOR}why is the sky blue at noon today",
    f"Given a question, retrieve passages that answer it; {SEPARATOR}bread",
]
DOCUMENTS = [
    f"{SEPARATOR}Rivers begin as small streams high in the mountains, fed by rain and melting snow.",
    f"{SEPARATOR}Sunlight scatters off air molecules; blue light scatters most.",
    f"{SEPARATOR}Bread is baked from flour, water and yeast.",
]


def _stage_one(path, **kwargs) -> LLM2Vec_q2d_d2q:
    model = LLM2Vec_q2d_d2q.from_pretrained(path, dtype=torch.float32, **kwargs)
    model.train()
    return model


def _random_rows(model: LLM2Vec_q2d_d2q, batch: int, length: int, seed: int) -> dict[str, torch.Tensor]:
    """Unpadded rows shaped like real ones: BOS first, the pooled EOS last."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, 400, (batch, length), generator=generator)
    ids[:, 0] = model.tokenizer.bos_token_id
    ids[:, -1] = model.tokenizer.eos_token_id
    ones = torch.ones_like(ids)
    return {"input_ids": ids, "attention_mask": ones, "embed_mask": ones}


def _hand_direction(causal_lm, anchor_ids: torch.Tensor, target_ids: torch.Tensor) -> torch.Tensor:
    """EBQ2D/EBD2Q written out with the plain causal LM and its full logits."""
    anchor = causal_lm.model(input_ids=anchor_ids).last_hidden_state[:, -1]
    inputs = torch.cat([anchor[:, None], causal_lm.model.embed_tokens(target_ids)], dim=1)
    logits = causal_lm(inputs_embeds=inputs).logits
    # Slot j predicts target token j; the final EOS (the target's own anchor token) is not predicted.
    length = target_ids.shape[1]
    return F.cross_entropy(logits[:, : length - 1].reshape(-1, logits.shape[-1]), target_ids[:, :-1].reshape(-1))


def test_loss_equals_hand_computation_on_unpadded_batch(tiny_llama_dir):
    model = _stage_one(tiny_llama_dir, alpha=0.2)
    causal_lm = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    q = _random_rows(model, 3, 9, seed=1)
    d = _random_rows(model, 3, 17, seed=2)
    output = model(q, d)
    with torch.no_grad():
        q2d = _hand_direction(causal_lm, q["input_ids"], d["input_ids"])
        d2q = _hand_direction(causal_lm, d["input_ids"], q["input_ids"])
    assert output.q2d_loss.item() == pytest.approx(q2d.item(), abs=1e-5)
    assert output.d2q_loss.item() == pytest.approx(d2q.item(), abs=1e-5)
    assert output.loss.item() == pytest.approx(0.2 * q2d.item() + 0.8 * d2q.item(), abs=1e-5)
    assert output.q_anchor.shape == (3, causal_lm.config.hidden_size)


@pytest.mark.parametrize("alpha, active", [(0.0, "d2q_loss"), (1.0, "q2d_loss")])
def test_alpha_extremes_are_pure_directions(tiny_llama_dir, alpha, active):
    model = _stage_one(tiny_llama_dir, alpha=alpha)
    q, d = model.tokenize(QUERIES), model.tokenize(DOCUMENTS)
    output = model(q, d)
    assert output.loss.item() == pytest.approx(output[active].item(), abs=1e-6)
    output.loss.backward()
    grad_pure = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    mixed = _stage_one(tiny_llama_dir, alpha=0.5)
    mixed_output = mixed(q, d)
    # The inactive direction is still reported, and equals what the mixed model computes.
    other = "q2d_loss" if active == "d2q_loss" else "d2q_loss"
    assert output[other].item() == pytest.approx(mixed_output[other].item(), abs=1e-5)
    reference = _stage_one(tiny_llama_dir, alpha=alpha)
    anchor_of, counterpart = (q, d) if active == "q2d_loss" else (d, q)
    _one_direction_loss(reference, reference.anchors(anchor_of), counterpart).backward()
    for pure, p in zip(grad_pure, reference.parameters()):
        torch.testing.assert_close(pure, p.grad, atol=1e-6, rtol=1e-5)


def _one_direction_loss(model: LLM2Vec_q2d_d2q, anchor: torch.Tensor, features: dict) -> torch.Tensor:
    """One reconstruction direction alone, with a plain cross-entropy over its target positions."""
    inputs, mask, positions, targets = model._decoder_inputs(anchor, features)
    hidden = model.model(
        inputs_embeds=inputs, attention_mask=mask, position_ids=positions, use_cache=False
    ).last_hidden_state
    valid = targets != -100
    return F.cross_entropy(model.lm_head(hidden[valid]).float(), targets[valid])


def _summed_losses(model: LLM2Vec_q2d_d2q, queries: list[str], documents: list[str]) -> tuple[float, float]:
    """Sum (not mean) of each direction's token losses, via the target counts of the batch."""
    q, d = model.tokenize(queries), model.tokenize(documents)
    output = model(q, d)
    q_targets = int(q["attention_mask"].sum()) - len(queries)
    d_targets = int(d["attention_mask"].sum()) - len(documents)
    return output.q2d_loss.item() * d_targets, output.d2q_loss.item() * q_targets


def test_row_loss_does_not_depend_on_batch_mates(tiny_llama_dir):
    model = _stage_one(tiny_llama_dir)
    together = _summed_losses(model, QUERIES, DOCUMENTS)
    alone = [_summed_losses(model, [q], [d]) for q, d in zip(QUERIES, DOCUMENTS)]
    for direction in range(2):
        assert together[direction] == pytest.approx(sum(a[direction] for a in alone), rel=1e-5)


def test_release_compat_loss_depends_on_batch_mates(tiny_llama_dir):
    """The release's anchor-before-padding layout makes a row's loss depend on the others."""
    model = _stage_one(tiny_llama_dir, release_compat=True)
    q = model.tokenize(QUERIES)
    d = model.tokenize(DOCUMENTS)
    batch = model(q, d).d2q_loss.item()
    singles = []
    for index in range(len(QUERIES)):
        qi, di = model.tokenize([QUERIES[index]]), model.tokenize([DOCUMENTS[index]])
        count = int((qi["input_ids"] != model.tokenizer.eos_token_id).sum())
        singles.append((model(qi, di).d2q_loss.item() * count, count))
    pooled = sum(s for s, _ in singles) / sum(c for _, c in singles)
    assert abs(batch - pooled) > 1e-3


def _hand_release(causal_lm, eos_id: int, anchor_features, target_features) -> torch.Tensor:
    """The release's computation: anchors from default positions, anchor before the padding,
    decoder mask [1 ; embed_mask], every EOS-id token ignored, full shifted logits."""
    anchor = causal_lm.model(
        input_ids=anchor_features["input_ids"], attention_mask=anchor_features["attention_mask"]
    ).last_hidden_state[:, -1]
    ids = target_features["input_ids"]
    inputs = torch.cat([anchor[:, None], causal_lm.model.embed_tokens(ids)], dim=1)
    mask = torch.cat([torch.ones_like(ids[:, :1]), target_features["embed_mask"]], dim=1)
    logits = causal_lm(inputs_embeds=inputs, attention_mask=mask).logits
    labels = torch.cat([torch.full_like(ids[:, :1], -100), ids.masked_fill(ids == eos_id, -100)], dim=1)
    shifted_logits = logits[:, :-1].contiguous()
    shifted_labels = labels[:, 1:].contiguous()
    return F.cross_entropy(shifted_logits.view(-1, logits.shape[-1]), shifted_labels.view(-1), ignore_index=-100)


def test_release_compat_matches_hand_written_release_on_padded_batch(tiny_llama_dir):
    model = _stage_one(tiny_llama_dir, release_compat=True, alpha=0.2)
    causal_lm = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    q, d = model.tokenize(QUERIES), model.tokenize(DOCUMENTS)
    assert (q["attention_mask"] == 0).any() and (d["attention_mask"] == 0).any(), "the batch must be padded"
    assert (q["embed_mask"] != q["attention_mask"]).any(), "instructions must be hidden by embed_mask"
    output = model(q, d)
    eos = model.tokenizer.eos_token_id
    with torch.no_grad():
        q2d = _hand_release(causal_lm, eos, q, d)
        d2q = _hand_release(causal_lm, eos, d, q)
    assert output.q2d_loss.item() == pytest.approx(q2d.item(), abs=1e-5)
    assert output.d2q_loss.item() == pytest.approx(d2q.item(), abs=1e-5)
    assert output.loss.item() == pytest.approx(0.2 * q2d.item() + 0.8 * d2q.item(), abs=1e-5)


def test_default_and_release_compat_differ_on_padded_batch(tiny_llama_dir):
    default = _stage_one(tiny_llama_dir)
    release = _stage_one(tiny_llama_dir, release_compat=True)
    ours = default(default.tokenize(QUERIES), default.tokenize(DOCUMENTS)).loss.item()
    theirs = release(release.tokenize(QUERIES), release.tokenize(DOCUMENTS)).loss.item()
    assert abs(ours - theirs) > 1e-3


class _DetachedAnchors(LLM2Vec_q2d_d2q):
    def anchors(self, features):
        return super().anchors(features).detach()


def test_gradients_flow_through_anchor_and_reconstruction_passes(tiny_llama_dir):
    model = _stage_one(tiny_llama_dir)
    q, d = model.tokenize(QUERIES), model.tokenize(DOCUMENTS)
    output = model(q, d)
    anchor_grads = torch.autograd.grad(output.loss, [output.q_anchor, output.d_anchor], retain_graph=True)
    assert all(g.abs().sum() > 0 for g in anchor_grads)
    output.loss.backward()
    full = {n: p.grad.clone() for n, p in model.named_parameters()}
    assert all(g.abs().sum() > 0 for g in full.values()), "every parameter takes part"

    detached = _DetachedAnchors.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    detached.train()
    detached(q, d).loss.backward()
    # Without the anchor path the last layer's gradient changes: the anchor pass carries gradient.
    name = "model.layers.1.mlp.down_proj.weight"
    difference = (full[name] - dict(detached.named_parameters())[name].grad).abs().max()
    assert difference > 1e-6 * full[name].abs().max()


def test_bf16_forward_and_backward(tiny_llama_dir):
    fp32 = _stage_one(tiny_llama_dir)
    bf16 = LLM2Vec_q2d_d2q.from_pretrained(tiny_llama_dir, dtype=torch.bfloat16)
    bf16.train()
    q, d = fp32.tokenize(QUERIES), fp32.tokenize(DOCUMENTS)
    reference = fp32(q, d).loss.item()
    output = bf16(q, d)
    output.loss.backward()
    assert output.loss.dtype == torch.float32
    assert output.loss.item() == pytest.approx(reference, rel=2e-2)
    assert bf16.lm_head.weight.grad is not None and bf16.lm_head.weight.grad.dtype == torch.bfloat16


@pytest.mark.parametrize("family", ["qwen2", "mistral", "chatml"])
def test_other_families_train(tiny_checkpoint_dir, family):
    model = _stage_one(tiny_checkpoint_dir(family))
    output = model(model.tokenize(QUERIES), model.tokenize(DOCUMENTS))
    output.loss.backward()
    assert torch.isfinite(output.loss) and model.lm_head.weight.grad.abs().sum() > 0


def test_save_writes_a_complete_causal_lm(tiny_llama_dir, tmp_path):
    model = _stage_one(tiny_llama_dir, alpha=0.8)
    with torch.no_grad():
        model.lm_head.weight.add_(0.01)  # a change that only a saved lm_head can carry
    model.save(tmp_path / "saved")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "saved", dtype=torch.float32)
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(reloaded(input_ids=ids).logits, model.causal_lm(input_ids=ids).logits)
    encoder = LLM2Vec.from_pretrained(tmp_path / "saved")
    assert encoder.llm2vec_config.alpha == 0.8
    torch.testing.assert_close(encoder.encode(["some text"], show_progress_bar=False), model.encode(["some text"], show_progress_bar=False))
    again = LLM2Vec_q2d_d2q.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    again.load_checkpoint_weights(tmp_path / "saved")
    torch.testing.assert_close(again.lm_head.weight, model.lm_head.weight)


def test_bidirectional_is_rejected(tiny_llama_dir):
    with pytest.raises(ValueError, match="enable_bidirectional"):
        LLM2Vec_q2d_d2q.from_pretrained(tiny_llama_dir, enable_bidirectional=True)


def test_activation_checkpointing_keeps_loss_and_gradients(tiny_llama_dir):
    plain = _stage_one(tiny_llama_dir)
    checkpointed = _stage_one(tiny_llama_dir)
    checkpointed.activation_checkpointing_enable()
    q, d = plain.tokenize(QUERIES), plain.tokenize(DOCUMENTS)
    expected, output = plain(q, d), checkpointed(q, d)
    expected.loss.backward()
    output.loss.backward()
    assert output.loss.item() == pytest.approx(expected.loss.item(), abs=1e-6)
    for a, b in zip(plain.parameters(), checkpointed.parameters()):
        torch.testing.assert_close(a.grad, b.grad, atol=1e-6, rtol=1e-5)
    assert checkpointed.model.is_activation_checkpointing


def test_per_pair_losses_weighted_by_their_targets_give_the_batch_loss(tiny_llama_dir):
    model = _stage_one(tiny_llama_dir, alpha=0.2)
    q, d = model.tokenize(QUERIES), model.tokenize(DOCUMENTS)  # rows of different lengths: padded
    with torch.no_grad():
        output = model(q, d)
        q2d, d2q = model.reconstruction_losses_per_pair(q, d, output.q_anchor, output.d_anchor)
    # every real token but the final EOS is a target
    q2d_targets = d["attention_mask"].sum(dim=1) - 1
    d2q_targets = q["attention_mask"].sum(dim=1) - 1
    assert q2d.shape == (3,)
    assert (q2d * q2d_targets).sum().item() / q2d_targets.sum().item() == pytest.approx(output.q2d_loss.item(), abs=1e-5)
    assert (d2q * d2q_targets).sum().item() / d2q_targets.sum().item() == pytest.approx(output.d2q_loss.item(), abs=1e-5)
    # a row's losses do not depend on the rest of its batch
    with torch.no_grad():
        alone = model.reconstruction_losses_per_pair(model.tokenize(QUERIES[2:]), model.tokenize(DOCUMENTS[2:]),
                                                     output.q_anchor[2:], output.d_anchor[2:])
    assert alone[0].item() == pytest.approx(q2d[2].item(), abs=1e-5)
    assert alone[1].item() == pytest.approx(d2q[2].item(), abs=1e-5)
