"""Pooling of final hidden states into one vector per text.

Rows are left-padded, so the last position of every row is its final token (the EOS the prompt
template appends); no index arithmetic is needed for ``eos_token`` and ``last_token``.
"""

from __future__ import annotations

import torch

POOLING_MODES = ("mean", "weighted_mean", "eos_token", "last_token", "bos_token")


def pool(
    hidden_states: torch.Tensor,
    attention_mask: torch.Tensor,
    embed_mask: torch.Tensor | None,
    pooling_mode: str,
    skip_instruction: bool = True,
) -> torch.Tensor:
    """Pool ``hidden_states`` (batch, length, hidden) of left-padded rows into (batch, hidden).

    ``mean`` and ``weighted_mean`` average over the text tokens (``embed_mask``) when
    ``skip_instruction`` is set, otherwise over every real token; ``weighted_mean`` weighs the
    k-th pooled token by k. ``bos_token`` takes the first real token of each row.
    """
    if pooling_mode in ("eos_token", "last_token"):
        return hidden_states[:, -1]
    if pooling_mode == "bos_token":
        first = attention_mask.long().argmax(dim=1)
        return hidden_states[torch.arange(hidden_states.shape[0], device=hidden_states.device), first]
    if pooling_mode in ("mean", "weighted_mean"):
        mask = embed_mask if skip_instruction and embed_mask is not None else attention_mask
        # A row whose text was truncated away falls back to all of its tokens rather than dividing by 0.
        empty = mask.sum(dim=1, keepdim=True) == 0
        mask = torch.where(empty, attention_mask, mask) * attention_mask
        weights = mask.to(torch.float32)
        if pooling_mode == "weighted_mean":
            weights = weights.cumsum(dim=1) * weights
        weights = weights / weights.sum(dim=1, keepdim=True)
        return (hidden_states.float() * weights.unsqueeze(-1)).sum(dim=1).to(hidden_states.dtype)
    raise ValueError(f"unknown pooling_mode '{pooling_mode}'; choose one of {POOLING_MODES}")


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions that count real tokens only, so left padding does not shift a row's positions."""
    return (attention_mask.long().cumsum(dim=1) - 1).clamp(min=0)
