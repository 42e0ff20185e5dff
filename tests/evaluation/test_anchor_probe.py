"""The anchor probe: the derangement, per-pair losses against a hand computation, and the zero gap
of pairs whose anchors are all the same."""

from __future__ import annotations

import statistics

import pytest
import torch
import torch.nn.functional as F
from transformers import AutoModelForCausalLM

from llm2vec import LLM2Vec_q2d_d2q
from llm2vec.evaluation.anchor_probe import derangement, mean_pairwise_cosine, probe_anchors
from llm2vec.tokenization import SEPARATOR

QUERIES = [f"Given a headline, retrieve its article; {SEPARATOR}{q}" for q in
           ("rivers begin in mountains", "why the sky is blue", "bread and yeast", "a quiet harbour town at dawn")]
DOCUMENTS = [f"{SEPARATOR}{d}" for d in (
    "Rivers begin as small streams high in the mountains, fed by rain and melting snow.",
    "Sunlight scatters off air molecules; blue light scatters most.",
    "Bread is baked from flour, water and yeast.",
    "Fishing boats come back before sunrise and the market opens on the quay.",
)]


def test_a_derangement_moves_every_element_and_depends_only_on_the_seed() -> None:
    for n in (2, 3, 10, 251):
        target = derangement(n, seed=5)
        assert sorted(target) == list(range(n))
        assert all(target[i] != i for i in range(n))
        assert derangement(n, seed=5) == target
    assert derangement(50, seed=1) != derangement(50, seed=2)
    with pytest.raises(ValueError, match="at least 2"):
        derangement(1, seed=0)


def _hand_loss(causal_lm, anchor_ids: torch.Tensor, target_ids: torch.Tensor) -> float:
    """One direction with the plain causal LM: the anchor text's final hidden state in front of the
    target's tokens, each slot predicting the next target token (the target's final EOS excluded)."""
    anchor = causal_lm.model(input_ids=anchor_ids).last_hidden_state[:, -1]
    logits = causal_lm(inputs_embeds=torch.cat([anchor[:, None], causal_lm.model.embed_tokens(target_ids)], dim=1)).logits
    length = target_ids.shape[1]
    return F.cross_entropy(logits[0, : length - 1], target_ids[0, :-1]).item()


def test_each_pairs_losses_with_own_and_other_anchors_equal_a_hand_computation(tiny_llama_dir) -> None:
    model = LLM2Vec_q2d_d2q.from_pretrained(tiny_llama_dir, dtype=torch.float32, alpha=0.2)
    model.train()
    causal_lm = AutoModelForCausalLM.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    probe = probe_anchors(model, QUERIES, DOCUMENTS, seed=3, batch_size=3)
    assert model.training  # left as it was

    ids = lambda text: model.tokenize([text])["input_ids"]  # noqa: E731
    other = derangement(len(QUERIES), seed=3)
    with torch.no_grad():
        q2d_own = [_hand_loss(causal_lm, ids(QUERIES[i]), ids(DOCUMENTS[i])) for i in range(4)]
        q2d_other = [_hand_loss(causal_lm, ids(QUERIES[other[i]]), ids(DOCUMENTS[i])) for i in range(4)]
        d2q_own = [_hand_loss(causal_lm, ids(DOCUMENTS[i]), ids(QUERIES[i])) for i in range(4)]
        d2q_other = [_hand_loss(causal_lm, ids(DOCUMENTS[other[i]]), ids(QUERIES[i])) for i in range(4)]
    assert probe.pairs == 4
    assert probe.q2d.own == pytest.approx(statistics.fmean(q2d_own), abs=1e-5)
    assert probe.q2d.other == pytest.approx(statistics.fmean(q2d_other), abs=1e-5)
    assert probe.d2q.own == pytest.approx(statistics.fmean(d2q_own), abs=1e-5)
    assert probe.d2q.other == pytest.approx(statistics.fmean(d2q_other), abs=1e-5)
    gaps = [b - a for a, b in zip(q2d_own, q2d_other)]
    assert probe.q2d.gap_std == pytest.approx(statistics.stdev(gaps), abs=1e-5)
    assert probe.q2d.own_lower == sum(g > 0 for g in gaps) / 4
    assert probe.q2d.gap != 0.0  # different texts give different anchors, even in a random model
    with torch.no_grad():
        anchors = model.anchors(model.tokenize(QUERIES))
    assert probe.query_anchor_cosine == pytest.approx(mean_pairwise_cosine(anchors), abs=1e-6)
    unit = F.normalize(anchors, dim=-1)
    assert probe.query_anchor_cosine == pytest.approx(float((unit[0] @ unit[1] + unit[0] @ unit[2] + unit[0] @ unit[3]
                                                             + unit[1] @ unit[2] + unit[1] @ unit[3] + unit[2] @ unit[3]) / 6), abs=1e-6)


def test_pairs_whose_anchors_are_all_alike_show_no_gap(tiny_llama_dir) -> None:
    model = LLM2Vec_q2d_d2q.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    probe = probe_anchors(model, [QUERIES[0]] * 3, [DOCUMENTS[0]] * 3)
    for direction in (probe.q2d, probe.d2q):
        assert direction.gap == pytest.approx(0.0, abs=1e-6) and direction.own_lower == 0.0
    assert probe.query_anchor_cosine == pytest.approx(1.0, abs=1e-5)
    assert probe.as_dict()["d2q"]["gap"] == pytest.approx(0.0, abs=1e-6)
