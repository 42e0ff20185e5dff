"""Cross-entropy of teacher-forced reconstruction, computed only where there is a target.

Logits exist for target positions alone, and with ``chunk_size`` for at most that many positions
at a time: each chunk's logits are recomputed in backward instead of being kept, so the
(tokens x vocabulary) tensor that dominates the release's Stage I memory never exists whole.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

IGNORE_INDEX = -100


def _summed_cross_entropy(lm_head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    # float32 logits: a softmax over 128k entries in bf16 loses the small probabilities.
    return F.cross_entropy(lm_head(hidden).float(), targets, reduction="sum")


def label_only_cross_entropy(
    hidden_states: torch.Tensor,
    targets: torch.Tensor,
    lm_head: nn.Module,
    chunk_size: int | None = None,
) -> torch.Tensor:
    """Mean cross-entropy of ``lm_head(hidden_states)`` against ``targets`` over non-ignored positions.

    Args:
        hidden_states: (..., hidden) decoder outputs; position i predicts ``targets[..., i]``.
        targets: (...) token ids, ``-100`` where nothing is predicted.
        lm_head: the output projection, called as a module so that sharding hooks see it.
        chunk_size: at most this many positions' logits at once; None computes them in one piece.
    """
    selected = targets != IGNORE_INDEX
    hidden = hidden_states[selected]
    labels = targets[selected]
    count = labels.numel()
    if count == 0:
        # Keeps the graph connected so every rank runs the same backward.
        return hidden_states.sum() * 0.0
    if chunk_size is None or count <= chunk_size:
        return _summed_cross_entropy(lm_head, hidden, labels) / count
    total = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, count, chunk_size):
        total = total + checkpoint(
            _summed_cross_entropy,
            lm_head,
            hidden[start : start + chunk_size],
            labels[start : start + chunk_size],
            use_reentrant=False,
        )
    return total / count
