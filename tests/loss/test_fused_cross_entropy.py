"""The fused linear cross-entropy against the plain ``F.cross_entropy(lm_head(h).float(), t)``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llm2vec.loss import fused_cross_entropy
from llm2vec.loss.fused_cross_entropy import fused_linear_cross_entropy
from tests.loss.head_problem import head_problem

POSITIONS = 37


def _problem(dtype: torch.dtype, bias: bool = False, seed: int = 0):
    return head_problem(POSITIONS, dtype, bias, seed)


def _plain(head: nn.Linear, hidden: torch.Tensor, targets: torch.Tensor):
    loss = F.cross_entropy(head(hidden).float(), targets)
    params = [hidden, head.weight] + ([head.bias] if head.bias is not None else [])
    return loss, torch.autograd.grad(loss, params)


def _fused(head: nn.Linear, hidden: torch.Tensor, targets: torch.Tensor, **kwargs):
    loss = fused_linear_cross_entropy(hidden, head.weight, targets, head.bias, **kwargs)
    params = [hidden, head.weight] + ([head.bias] if head.bias is not None else [])
    return loss, torch.autograd.grad(loss, params)


@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("chunk_size, row_block", [(None, 32), (POSITIONS, 5), (8, 3), (1, 1)])
def test_fused_equals_plain_in_float32(bias, chunk_size, row_block):
    head, hidden, targets = _problem(torch.float32, bias=bias)
    expected, expected_grads = _plain(head, hidden, targets)
    loss, grads = _fused(head, hidden, targets, chunk_size=chunk_size, row_block=row_block)
    assert loss.dtype == torch.float32
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=1e-6)
    for grad, reference in zip(grads, expected_grads):
        assert grad.dtype == reference.dtype
        torch.testing.assert_close(grad, reference, atol=1e-7, rtol=1e-5)


@pytest.mark.parametrize("chunk_size, weight_slice", [(None, 16_384), (8, 16_384), (8, 7)])
def test_fused_matches_plain_in_bfloat16(monkeypatch, chunk_size, weight_slice):
    # weight_slice 7: the weight gradient's vocabulary rows in uneven slices (real vocabularies
    # exceed the default slice; the tiny one does not)
    monkeypatch.setattr(fused_cross_entropy, "WEIGHT_GRADIENT_SLICE", weight_slice)
    head, hidden, targets = _problem(torch.bfloat16, bias=True)
    expected, expected_grads = _plain(head, hidden, targets)
    loss, grads = _fused(head, hidden, targets, chunk_size=chunk_size, row_block=4)
    assert loss.dtype == torch.float32
    # Same bf16 logits, float32 softmax: the value agrees to float32 rounding.
    torch.testing.assert_close(loss, expected, atol=1e-5, rtol=1e-5)
    for grad, reference in zip(grads, expected_grads):
        assert grad.dtype == torch.bfloat16
        # Chunked accumulation of the weight gradient rounds differently from one bf16 product.
        torch.testing.assert_close(grad.float(), reference.float(), atol=2e-4, rtol=2e-2)
    if chunk_size is None:
        # One chunk: the weight gradient is one bf16 matmul, as in F.linear's backward.
        gradient = torch.softmax(head(hidden).float(), dim=1)
        gradient[torch.arange(POSITIONS), targets] -= 1
        gradient = (gradient / POSITIONS).to(torch.bfloat16)
        assert torch.equal(grads[1], gradient.t() @ hidden)


def test_upstream_gradient_scales_all_gradients():
    head, hidden, targets = _problem(torch.float32, bias=True)
    scaled = 2.5 * F.cross_entropy(head(hidden).float(), targets)
    expected = torch.autograd.grad(scaled, [hidden, head.weight, head.bias])
    loss = fused_linear_cross_entropy(hidden, head.weight, targets, head.bias, chunk_size=10)
    grads = torch.autograd.grad(2.5 * loss, [hidden, head.weight, head.bias])
    for grad, reference in zip(grads, expected):
        torch.testing.assert_close(grad, reference, atol=1e-7, rtol=1e-5)


def test_per_position_losses_and_no_grad_forward():
    head, hidden, targets = _problem(torch.float32)
    expected = F.cross_entropy(head(hidden).float(), targets, reduction="none")
    with torch.no_grad():
        loss, losses = fused_linear_cross_entropy(hidden, head.weight, targets, chunk_size=6, return_losses=True)
    assert not loss.requires_grad
    torch.testing.assert_close(losses, expected.detach(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(loss, expected.mean().detach(), atol=1e-6, rtol=1e-6)


def test_only_requested_gradients_are_computed():
    head, hidden, targets = _problem(torch.float32)
    head.weight.requires_grad_(False)
    loss = fused_linear_cross_entropy(hidden.detach().requires_grad_(), head.weight, targets, chunk_size=8)
    loss.backward()
    assert head.weight.grad is None


def test_row_weights_give_a_weighted_sum_of_two_means():
    """The Stage I use: alpha * mean(q2d) + (1 - alpha) * mean(d2q) in one call."""
    head, hidden, targets = _problem(torch.float32, bias=True)
    split, alpha = 15, 0.2
    plain_losses = F.cross_entropy(head(hidden).float(), targets, reduction="none")
    expected = alpha * plain_losses[:split].mean() + (1 - alpha) * plain_losses[split:].mean()
    expected_grads = torch.autograd.grad(expected, [hidden, head.weight, head.bias])
    weights = torch.empty(POSITIONS)
    weights[:split] = alpha / split
    weights[split:] = (1 - alpha) / (POSITIONS - split)
    loss, losses = fused_linear_cross_entropy(
        hidden, head.weight, targets, head.bias, chunk_size=9, row_block=4, row_weights=weights, return_losses=True
    )
    torch.testing.assert_close(loss, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(losses, plain_losses.detach(), atol=1e-6, rtol=1e-6)
    grads = torch.autograd.grad(loss, [hidden, head.weight, head.bias])
    for grad, reference in zip(grads, expected_grads):
        torch.testing.assert_close(grad, reference, atol=1e-7, rtol=1e-5)


def test_gradients_survive_a_retained_graph_and_a_second_backward():
    head, hidden, targets = _problem(torch.float32)
    loss = fused_linear_cross_entropy(hidden, head.weight, targets, chunk_size=10)
    (first,) = torch.autograd.grad(3.0 * loss, hidden, retain_graph=True)
    (second,) = torch.autograd.grad(loss, hidden)
    torch.testing.assert_close(first, 3.0 * second)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_huge_losses_are_exact_where_the_target_probability_underflows(dtype):
    """A target probability below float32's range: the loss comes from recomputed logits."""
    head, hidden, targets = _problem(dtype)
    with torch.no_grad():
        hidden.mul_(40)  # losses of hundreds of nats
    expected, expected_grads = _plain(head, hidden, targets)
    per_position = F.cross_entropy(head(hidden).float(), targets, reduction="none")
    assert per_position.max() > 100
    loss, grads = _fused(head, hidden, targets, chunk_size=8, row_block=3)
    torch.testing.assert_close(loss, expected, atol=1e-4, rtol=1e-6)
    # bf16: the chunked weight-gradient accumulation rounds differently (hidden states 40x larger).
    atol, rtol = (1e-6, 1e-5) if dtype == torch.float32 else (1e-2, 2e-2)
    for grad, reference in zip(grads, expected_grads):
        torch.testing.assert_close(grad.float(), reference.float(), atol=atol, rtol=rtol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_explicit_softmax_path_used_off_cpu_gives_the_same_result(monkeypatch, dtype):
    """GPUs take the explicit max/exp/sum path instead of the in-place softmax: run it on CPU."""
    import llm2vec.loss.fused_cross_entropy as fused

    head, hidden, targets = _problem(dtype, bias=True)
    inplace_loss, inplace_grads = _fused(head, hidden, targets, chunk_size=8, row_block=3)
    monkeypatch.setattr(fused, "_INPLACE_SOFTMAX_DEVICES", ())
    loss, grads = _fused(head, hidden, targets, chunk_size=8, row_block=3)
    torch.testing.assert_close(loss, inplace_loss, atol=1e-6, rtol=1e-6)
    atol, rtol = (1e-6, 1e-5) if dtype == torch.float32 else (1e-4, 1e-2)
    for grad, reference in zip(grads, inplace_grads):
        torch.testing.assert_close(grad.float(), reference.float(), atol=atol, rtol=rtol)
