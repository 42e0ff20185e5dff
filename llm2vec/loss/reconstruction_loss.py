"""The Stage I loss: ``alpha * Q2D + (1 - alpha) * D2Q``, teacher-forced cross-entropy at target positions.

:func:`reconstruction_loss` is the only way the Stage I model computes it: one call takes the
decoder's hidden states of both directions, drops positions without a target, and projects the
rest through the ``lm_head`` a chunk at a time, so the (positions x vocabulary) logits never exist
whole. Two implementations give the same loss and gradients (tests/loss/test_reconstruction_loss.py):
``fused`` (``fused_cross_entropy``: gradient computed chunk by chunk in forward; reads
``lm_head.weight``) and ``chunked`` (calls the ``lm_head`` module on checkpointed chunks, logits
recomputed in backward; safe when DeepSpeed ZeRO-3 or FSDP shard the head). ``auto`` takes
``fused`` for a plain head. Why each exists and what it costs: docs/performance.md.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from llm2vec.loss.fused_cross_entropy import fused_linear_cross_entropy, lm_head_is_plain

IGNORE_INDEX = -100

#: values of ``ce_implementation``
CE_IMPLEMENTATIONS = ("auto", "chunked", "fused")


class ReconstructionLosses(NamedTuple):
    """The weighted Stage I loss and, detached for logging, the mean cross-entropy of each direction."""

    loss: torch.Tensor
    q2d: torch.Tensor
    d2q: torch.Tensor


def resolve_ce_implementation(implementation: str, lm_head: nn.Module) -> str:
    """The implementation that ``implementation`` stands for with this ``lm_head``.

    Raises:
        ValueError: an unknown name, or ``fused`` with a head whose weight cannot be read directly.
    """
    if implementation not in CE_IMPLEMENTATIONS:
        raise ValueError(f"unknown ce_implementation {implementation!r}; choose one of {list(CE_IMPLEMENTATIONS)}")
    if implementation == "auto":
        return "fused" if lm_head_is_plain(lm_head) else "chunked"
    if implementation == "fused" and not lm_head_is_plain(lm_head):
        raise ValueError(
            "ce_implementation 'fused' reads lm_head.weight directly, which is wrong for a sharded "
            "(DeepSpeed ZeRO-3, FSDP) or wrapped head; use 'chunked' (or 'auto')"
        )
    return implementation


def _summed_cross_entropy(lm_head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # float32 logits: a softmax over 128k entries in bf16 loses the small probabilities.
    return F.cross_entropy(lm_head(hidden).float(), targets, reduction="sum")


def _chunked_mean(hidden: torch.Tensor, targets: torch.Tensor, lm_head: nn.Module, chunk_size: int | None) -> torch.Tensor:
    """Mean cross-entropy of ``lm_head(hidden)``; chunks beyond the first are recomputed in backward."""
    count = targets.numel()
    if chunk_size is None or count <= chunk_size:
        return _summed_cross_entropy(lm_head, hidden, targets) / count
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, count, chunk_size):
        stop = start + chunk_size
        total = total + checkpoint(
            _summed_cross_entropy, lm_head, hidden[start:stop], targets[start:stop], use_reentrant=False
        )
    return total / count


def reconstruction_loss(
    hidden_states: torch.Tensor,
    targets: torch.Tensor,
    split: int,
    alpha: float,
    lm_head: nn.Module,
    implementation: str = "auto",
    chunk_size: int | None = None,
) -> ReconstructionLosses:
    """``alpha * mean CE(Q2D) + (1 - alpha) * mean CE(D2Q)`` of ``lm_head(hidden_states)``.

    Args:
        hidden_states: (N, hidden) decoder outputs (or (..., hidden), flattened); position i
            predicts ``targets[i]``.
        targets: (N,) token ids, ``IGNORE_INDEX`` where nothing is predicted.
        split: positions ``[:split]`` belong to EBQ2D, the rest to EBD2Q.
        alpha: the weight of EBQ2D; a direction of weight 0 is computed for logging only.
        lm_head: the output projection.
        implementation: ``auto``, ``fused`` or ``chunked`` (same value, see the module docstring).
        chunk_size: at most this many positions' logits at once; None computes them in one piece.

    A direction without targets has mean 0; a batch without any keeps the graph connected (zero
    loss) so that every rank runs the same backward.
    """
    hidden = hidden_states.reshape(-1, hidden_states.shape[-1])
    targets = targets.reshape(-1)
    if targets.numel() != hidden.shape[0]:
        raise ValueError(f"{hidden.shape[0]} positions but {targets.numel()} targets")
    valid = targets != IGNORE_INDEX
    if not bool(valid.all()):
        split = int(valid[:split].sum())
        hidden, targets = hidden[valid], targets[valid]
    count = targets.numel()
    if count == 0:
        zero = hidden_states.sum() * 0.0
        return ReconstructionLosses(zero, zero.detach(), zero.detach())
    weights = (alpha, 1.0 - alpha)
    bounds = ((0, split), (split, count))
    zero = torch.zeros((), dtype=torch.float32, device=hidden.device)
    if resolve_ce_implementation(implementation, lm_head) == "fused":
        # One call for both directions: each position weighted by its direction's weight over its
        # direction's target count, so the weighted sum is the Stage I loss.
        row_weights = torch.empty(count, dtype=torch.float32, device=hidden.device)
        for (start, stop), weight in zip(bounds, weights):
            row_weights[start:stop] = weight / max(stop - start, 1)
        loss, losses = fused_linear_cross_entropy(
            hidden, lm_head.weight, targets, lm_head.bias,
            chunk_size=chunk_size, row_weights=row_weights, return_losses=True,
        )
        q2d, d2q = (losses[start:stop].mean() if stop > start else zero for start, stop in bounds)
        return ReconstructionLosses(loss, q2d, d2q)
    means = []
    for (start, stop), weight in zip(bounds, weights):
        if stop == start:
            means.append(zero)
        elif weight > 0.0:
            means.append(_chunked_mean(hidden[start:stop], targets[start:stop], lm_head, chunk_size))
        else:
            with torch.no_grad():
                means.append(_chunked_mean(hidden[start:stop].detach(), targets[start:stop], lm_head, chunk_size))
    loss = weights[0] * means[0] + weights[1] * means[1]
    return ReconstructionLosses(loss, means[0].detach(), means[1].detach())
