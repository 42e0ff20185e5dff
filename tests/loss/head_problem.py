"""A random output projection, hidden states and targets: the input of the cross-entropy tests."""

from __future__ import annotations

import torch
from torch import nn

VOCAB, HIDDEN = 300, 24


def head_problem(
    positions: int, dtype: torch.dtype = torch.float32, bias: bool = False, seed: int = 0
) -> tuple[nn.Linear, torch.Tensor, torch.Tensor]:
    """``(head, hidden, targets)``: a (VOCAB x HIDDEN) head, (positions, HIDDEN) hidden states that
    require grad (large enough for a spread of losses), and (positions,) target ids."""
    generator = torch.Generator().manual_seed(seed)
    head = nn.Linear(HIDDEN, VOCAB, bias=bias)
    with torch.no_grad():
        head.weight.copy_(torch.randn(VOCAB, HIDDEN, generator=generator) * 0.3)
        if bias:
            head.bias.copy_(torch.randn(VOCAB, generator=generator))
    head = head.to(dtype)
    hidden = (torch.randn(positions, HIDDEN, generator=generator) * 2).to(dtype).requires_grad_()
    targets = torch.randint(0, VOCAB, (positions,), generator=generator)
    return head, hidden, targets
