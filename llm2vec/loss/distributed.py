"""Collectives for losses that compare every query with every document of all processes.

``all_gather_with_grad`` concatenates a tensor's rows from every rank, in rank order. The rows
received from other ranks are constants; the local rows are the local tensor itself, so the
gradient of anything computed from the result flows back into this rank's graph (and only there).
It works with any backend whose ``all_gather`` supports the tensor's device (gloo on CPU, NCCL on
GPU) and accepts a different number of rows per rank.

Gradient semantics (see ``HardNegativeNLLLoss``): when every rank computes the same loss L over the
gathered tensors, rank r's backward yields the part of dL/dθ that passes through rank r's rows, and
those parts sum over ranks to the full dL/dθ. DDP *averages* gradients across ranks, so the loss
must be backpropagated with weight ``world_size`` (``scale_gradient``) to obtain exactly the
gradient of one process that sees the union of the batches.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    """Whether a process group with more than one process is active."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """The number of processes of the default group (1 without torch.distributed)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Rows of ``tensor`` from every rank concatenated along dim 0; gradient flows to the local rows.

    Without an active multi-process group, ``tensor`` is returned unchanged.
    """
    if not is_distributed():
        return tensor
    world, rank = dist.get_world_size(), dist.get_rank()
    local_rows = torch.tensor([tensor.shape[0]], dtype=torch.long, device=tensor.device)
    all_rows = [torch.zeros_like(local_rows) for _ in range(world)]
    dist.all_gather(all_rows, local_rows)
    rows = [int(r.item()) for r in all_rows]
    most = max(rows)
    sent = tensor.detach()
    if sent.shape[0] < most:  # all_gather needs equal shapes: pad, then cut the padding off again
        sent = torch.cat([sent, sent.new_zeros((most - sent.shape[0], *sent.shape[1:]))])
    received = [torch.empty_like(sent) for _ in range(world)]
    dist.all_gather(received, sent.contiguous())
    pieces = [piece[:n] for piece, n in zip(received, rows)]
    pieces[rank] = tensor  # the local rows keep their autograd history
    return torch.cat(pieces, dim=0)


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: torch.Tensor, factor: float) -> torch.Tensor:  # type: ignore[override]
        ctx.factor = factor
        return tensor.view_as(tensor)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return grad * ctx.factor, None


def scale_gradient(tensor: torch.Tensor, factor: float) -> torch.Tensor:
    """``tensor`` unchanged in value, with its gradient multiplied by ``factor`` in backward."""
    if factor == 1:
        return tensor
    return _ScaleGradient.apply(tensor, factor)
