"""HardNegativeNLLLoss against a hand computation, and its single-process gather helpers."""

from __future__ import annotations

import math

import pytest
import torch

from llm2vec.loss.distributed import all_gather_with_grad, scale_gradient
from llm2vec.loss.hard_negative_nll_loss import HardNegativeNLLLoss


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def _hand_loss(queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor | None, scale: float) -> float:
    """Mean over queries of -log softmax(scale * cos(q_i, [positives ; negatives]))[i], in Python floats."""
    q, p = queries.tolist(), positives.tolist()
    candidates = p + (negatives.tolist() if negatives is not None else [])
    total = 0.0
    for i, query in enumerate(q):
        scores = [scale * _cosine(query, c) for c in candidates]
        log_normalizer = math.log(sum(math.exp(s) for s in scores))
        total += log_normalizer - scores[i]
    return total / len(q)


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    # Positives correlated with their queries, so the targets are not arbitrary.
    positives = queries + 0.8 * torch.randn(4, 6, generator=generator, dtype=torch.float64)
    negatives = torch.randn(4, 6, generator=generator, dtype=torch.float64)
    return queries, positives, negatives


@pytest.mark.parametrize("with_negatives", [False, True])
@pytest.mark.parametrize("scale", [20.0, 50.0])
def test_loss_matches_hand_computation(batch, with_negatives: bool, scale: float) -> None:
    queries, positives, negatives = batch
    negatives = negatives if with_negatives else None
    loss = HardNegativeNLLLoss(scale)(queries, positives, negatives)
    expected = _hand_loss(queries, positives, negatives, scale)
    assert loss.dtype == torch.float64
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_float32_loss_matches_hand_computation(batch) -> None:
    queries, positives, negatives = batch
    loss = HardNegativeNLLLoss(50.0)(queries.float(), positives.float(), negatives.float())
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(_hand_loss(queries, positives, negatives, 50.0), abs=1e-5)


def test_bf16_embeddings_are_scored_in_float32(batch) -> None:
    queries, positives, negatives = batch
    loss = HardNegativeNLLLoss(50.0)(queries.bfloat16(), positives.bfloat16(), negatives.bfloat16())
    assert loss.dtype == torch.float32


def test_hard_negatives_change_the_loss(batch) -> None:
    queries, positives, negatives = batch
    loss_fn = HardNegativeNLLLoss(20.0)
    assert loss_fn(queries, positives, negatives).item() > loss_fn(queries, positives).item() + 1e-3


def test_scores_layout_and_labels(batch) -> None:
    queries, positives, negatives = batch
    scores, labels = HardNegativeNLLLoss(10.0).scores(queries, positives, negatives)
    assert scores.shape == (4, 8)
    assert labels.tolist() == [0, 1, 2, 3]
    for i in range(4):
        for j in range(8):
            candidate = positives[j] if j < 4 else negatives[j - 4]
            expected = 10.0 * _cosine(queries[i].tolist(), candidate.tolist())
            assert scores[i, j].item() == pytest.approx(expected, abs=1e-9)


def test_gradient_matches_finite_differences(batch) -> None:
    queries, positives, negatives = batch
    queries = queries.clone().requires_grad_(True)
    loss_fn = HardNegativeNLLLoss(20.0)
    loss_fn(queries, positives, negatives).backward()
    epsilon = 1e-6
    for index in [(0, 0), (2, 3), (3, 5)]:
        shifted = queries.detach().clone()
        shifted[index] += epsilon
        up = _hand_loss(shifted, positives, negatives, 20.0)
        shifted[index] -= 2 * epsilon
        down = _hand_loss(shifted, positives, negatives, 20.0)
        assert queries.grad[index].item() == pytest.approx((up - down) / (2 * epsilon), abs=1e-6)


def test_mismatched_query_and_positive_counts_raise(batch) -> None:
    queries, positives, _ = batch
    with pytest.raises(ValueError, match="queries"):
        HardNegativeNLLLoss(50.0)(queries, positives[:3])


def test_scale_must_be_positive() -> None:
    with pytest.raises(ValueError):
        HardNegativeNLLLoss(0.0)


def test_gather_is_identity_without_process_group() -> None:
    tensor = torch.randn(3, 2, requires_grad=True)
    assert all_gather_with_grad(tensor) is tensor


def test_scale_gradient_keeps_value_and_scales_gradient() -> None:
    x = torch.tensor([1.5, -2.0], requires_grad=True)
    y = scale_gradient((x**2).sum(), 3.0)
    assert y.item() == pytest.approx(6.25)
    y.backward()
    assert x.grad.tolist() == pytest.approx([3.0 * 3.0, 3.0 * -4.0])
