"""Does a Stage I model's reconstruction use its anchor?

Stage I asks the EOS state of a text (its anchor) to carry what the decoder needs to reconstruct
the paired text. Falling reconstruction losses alone do not show that it does: the decoder can also
get better at predicting text in general, whatever the anchor. This probe computes both losses of
every (query, document) pair twice, teacher-forced exactly as in training: once with the pair's own
anchors, once with the anchors of another pair (a fixed derangement, so no pair keeps its own).
The difference, other − own in nats per target token, is what the reconstruction draws from the
anchor about its own text; zero means the anchor is used as a constant prefix at most.

It runs on the texts as the model sees them in training (instruction and separator already
applied, e.g. ``TaskSamples.sample``), in padded batches whose rows do not affect one another, and
keeps each pair's losses, so that the spread over pairs is a real one.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F

from llm2vec.llm2vec_q2d_d2q import LLM2Vec_q2d_d2q


@dataclass(frozen=True)
class DirectionProbe:
    """One reconstruction direction over the probed pairs (losses in nats per target token)."""

    own: float  # mean over pairs of the loss with the pair's own anchor
    other: float  # the same with another pair's anchor
    gap_std: float  # sample standard deviation over pairs of (other − own)
    own_lower: float  # share of pairs whose own anchor gives the lower loss

    @property
    def gap(self) -> float:
        return self.other - self.own


@dataclass(frozen=True)
class AnchorProbe:
    """What :func:`probe_anchors` measured."""

    pairs: int
    q2d: DirectionProbe  # documents reconstructed from query anchors (EBQ2D)
    d2q: DirectionProbe  # queries reconstructed from document anchors (EBD2Q)
    query_anchor_cosine: float  # mean cosine over all pairs of distinct query anchors
    document_anchor_cosine: float

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["q2d"]["gap"], out["d2q"]["gap"] = self.q2d.gap, self.d2q.gap
        return out


def derangement(n: int, seed: int) -> list[int]:
    """A permutation of ``range(n)`` without fixed points, the same for the same seed: a random
    order in which every element is sent to the next one (n >= 2)."""
    if n < 2:
        raise ValueError(f"a derangement needs at least 2 elements, got {n}")
    order = list(range(n))
    random.Random(seed).shuffle(order)
    target = [0] * n
    for position, element in enumerate(order):
        target[element] = order[(position + 1) % n]
    return target


def mean_pairwise_cosine(vectors: Any) -> float:
    """Mean cosine over all pairs of distinct rows of a matrix (tensor or array): near 1 when the
    vectors have collapsed onto one direction."""
    unit = F.normalize(torch.as_tensor(vectors, dtype=torch.float32), dim=-1)
    n = unit.shape[0]
    similarity = unit @ unit.T
    return float((similarity.sum() - similarity.diagonal().sum()) / (n * (n - 1)))


@torch.no_grad()
def probe_anchors(
    model: LLM2Vec_q2d_d2q,
    queries: Sequence[str],
    documents: Sequence[str],
    seed: int = 0,
    batch_size: int = 16,
) -> AnchorProbe:
    """Reconstruction losses of each (query, document) pair with its own and with another pair's anchors.

    Args:
        model: a Stage I model (its ``alpha`` does not matter: both directions are measured).
        queries, documents: the pairs, as training texts (instruction and separator applied).
        seed: chooses the derangement that gives each pair another pair's anchors.
        batch_size: texts per encoder pass and pairs per decoder pass (a pair's losses do not
            depend on it).
    """
    if len(queries) != len(documents):
        raise ValueError(f"{len(queries)} queries but {len(documents)} documents")
    was_training = model.training
    model.eval()
    try:
        q_anchor = _anchors(model, queries, batch_size)
        d_anchor = _anchors(model, documents, batch_size)
        other = torch.tensor(derangement(len(queries), seed))
        own_losses, other_losses = [], []
        for start in range(0, len(queries), batch_size):
            rows = slice(start, start + batch_size)
            q_features, d_features = _features(model, queries[rows]), _features(model, documents[rows])
            own_losses.append(model.reconstruction_losses_per_pair(q_features, d_features, q_anchor[rows], d_anchor[rows]))
            swapped = other[rows]
            other_losses.append(
                model.reconstruction_losses_per_pair(q_features, d_features, q_anchor[swapped], d_anchor[swapped]))
    finally:
        model.train(was_training)
    own = [torch.cat(parts).tolist() for parts in zip(*own_losses)]
    others = [torch.cat(parts).tolist() for parts in zip(*other_losses)]
    return AnchorProbe(
        pairs=len(queries),
        q2d=_direction(own[0], others[0]),
        d2q=_direction(own[1], others[1]),
        query_anchor_cosine=mean_pairwise_cosine(q_anchor),
        document_anchor_cosine=mean_pairwise_cosine(d_anchor),
    )


def _features(model: LLM2Vec_q2d_d2q, texts: Sequence[str]) -> dict[str, torch.Tensor]:
    return {key: value.to(model.device) for key, value in model.tokenize(list(texts)).items()}


def _anchors(model: LLM2Vec_q2d_d2q, texts: Sequence[str], batch_size: int) -> torch.Tensor:
    # EOS pooling does not depend on the batch's padding, so batching the encoder is safe.
    parts = [model.anchors(_features(model, texts[start:start + batch_size])) for start in range(0, len(texts), batch_size)]
    return torch.cat(parts)


def _direction(own: list[float], other: list[float]) -> DirectionProbe:
    gaps = [b - a for a, b in zip(own, other)]
    return DirectionProbe(
        own=statistics.fmean(own), other=statistics.fmean(other),
        gap_std=statistics.stdev(gaps) if len(gaps) > 1 else 0.0,
        own_lower=sum(1 for g in gaps if g > 0) / len(gaps),
    )
