"""The Stage I loss function against a hand computation with ``F.cross_entropy``, for each implementation."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from llm2vec.loss.fused_cross_entropy import lm_head_is_plain
from llm2vec.loss.reconstruction_loss import IGNORE_INDEX, reconstruction_loss, resolve_ce_implementation
from tests.loss.head_problem import HIDDEN, VOCAB, head_problem

POSITIONS, SPLIT = 41, 17


def _problem(seed: int = 0, bias: bool = True):
    head, hidden, targets = head_problem(POSITIONS, bias=bias, seed=seed)
    # padding-like gaps in both directions
    targets[:3] = IGNORE_INDEX
    targets[SPLIT + 2 : SPLIT + 6] = IGNORE_INDEX
    targets[-1] = IGNORE_INDEX
    return head, hidden, targets


def _parameters(head: nn.Linear, hidden: torch.Tensor) -> list[torch.Tensor]:
    return [hidden, head.weight] + ([head.bias] if head.bias is not None else [])


def _hand(head: nn.Linear, hidden: torch.Tensor, targets: torch.Tensor, alpha: float):
    """alpha * mean CE over the valid Q2D positions + (1 - alpha) * the same over D2Q, written out."""
    means = []
    for part in (slice(0, SPLIT), slice(SPLIT, POSITIONS)):
        valid = targets[part] != IGNORE_INDEX
        logits = head(hidden[part][valid]).float()
        means.append(F.cross_entropy(logits, targets[part][valid]))
    return alpha * means[0] + (1 - alpha) * means[1], means


@pytest.mark.parametrize("alpha", [0.0, 0.2, 1.0])
@pytest.mark.parametrize("implementation, chunk_size", [("chunked", None), ("chunked", 5), ("fused", None), ("fused", 5)])
def test_loss_gradients_and_logged_means_equal_the_hand_computation(alpha, implementation, chunk_size):
    head, hidden, targets = _problem()
    expected, (q2d, d2q) = _hand(head, hidden, targets, alpha)
    expected_grads = torch.autograd.grad(expected, _parameters(head, hidden))
    losses = reconstruction_loss(hidden, targets, SPLIT, alpha, head, implementation, chunk_size)
    torch.testing.assert_close(losses.loss, expected, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(losses.q2d, q2d.detach(), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(losses.d2q, d2q.detach(), atol=1e-6, rtol=1e-6)
    assert not losses.q2d.requires_grad and not losses.d2q.requires_grad
    grads = torch.autograd.grad(losses.loss, _parameters(head, hidden))
    for grad, reference in zip(grads, expected_grads):
        torch.testing.assert_close(grad, reference, atol=1e-7, rtol=1e-5)


def test_padded_rows_are_flattened():
    head, hidden, targets = _problem()
    flat = reconstruction_loss(hidden, targets, SPLIT, 0.2, head, "fused")
    rows = reconstruction_loss(hidden[None], targets[None], SPLIT, 0.2, head, "fused")
    torch.testing.assert_close(rows.loss, flat.loss)


def test_a_direction_without_targets_has_mean_zero_and_the_other_counts_alone():
    head, hidden, targets = _problem()
    targets[:SPLIT] = IGNORE_INDEX
    _, (_, d2q) = _hand(head, hidden, torch.where(torch.arange(POSITIONS) < SPLIT, 0, targets), 0.2)
    for implementation in ("chunked", "fused"):
        losses = reconstruction_loss(hidden, targets, SPLIT, 0.2, head, implementation)
        assert losses.q2d.item() == 0.0
        torch.testing.assert_close(losses.loss, 0.8 * d2q, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("implementation", ["chunked", "fused"])
def test_no_target_at_all_gives_a_connected_zero(implementation):
    head, hidden, targets = _problem()
    losses = reconstruction_loss(hidden, torch.full_like(targets, IGNORE_INDEX), SPLIT, 0.2, head, implementation)
    assert losses.loss.item() == 0.0 and losses.loss.requires_grad


def test_a_mismatched_target_count_is_refused():
    head, hidden, targets = _problem()
    with pytest.raises(ValueError, match="41 positions but 40 targets"):
        reconstruction_loss(hidden, targets[:-1], SPLIT, 0.2, head)


class _ShardedLikeHead(nn.Linear):
    """Stands for a ZeRO-3 / FSDP head: its weight is only valid inside the module's forward."""


def test_auto_falls_back_to_the_module_call_for_wrapped_or_sharded_heads():
    head, _, _ = _problem()
    assert lm_head_is_plain(head)
    assert resolve_ce_implementation("auto", head) == "fused"
    wrapped = _ShardedLikeHead(HIDDEN, VOCAB, bias=False)
    assert not lm_head_is_plain(wrapped)
    assert resolve_ce_implementation("auto", wrapped) == "chunked"
    with pytest.raises(ValueError, match="chunked"):
        resolve_ce_implementation("fused", wrapped)
    zero3 = nn.Linear(HIDDEN, VOCAB, bias=False)
    zero3.weight.ds_id = 7  # what DeepSpeed ZeRO-3 puts on its partitioned parameters
    assert resolve_ce_implementation("auto", zero3) == "chunked"


@pytest.mark.parametrize("name", ["triton", "liger", "cut"])
def test_unknown_implementations_are_refused(name):
    head, hidden, targets = _problem()
    with pytest.raises(ValueError, match="unknown ce_implementation"):
        reconstruction_loss(hidden, targets, SPLIT, 0.2, head, name)


def test_only_the_chunked_implementation_calls_the_module_and_never_on_more_than_a_chunk():
    head, hidden, targets = _problem()
    calls: list[int] = []
    handle = head.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    valid = targets != IGNORE_INDEX
    try:
        reconstruction_loss(hidden, targets, SPLIT, 0.2, head, "chunked")
        # in one piece per direction, and only the positions that have a target
        assert calls == [int(valid[:SPLIT].sum()), int(valid[SPLIT:].sum())]
        calls.clear()
        reconstruction_loss(hidden, targets, SPLIT, 0.2, head, "chunked", chunk_size=6)
        assert calls and max(calls) <= 6
        calls.clear()
        reconstruction_loss(hidden, targets, SPLIT, 0.2, head, "fused", chunk_size=6)
        assert calls == []
    finally:
        handle.remove()
