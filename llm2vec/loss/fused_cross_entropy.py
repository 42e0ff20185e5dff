"""Linear + cross-entropy fused chunk by chunk, with the gradient computed in the forward pass.

For each chunk of positions: logits ``h W^T + b`` (rounded to the weight dtype, then float32, as
``F.cross_entropy(F.linear(h, W, b).float(), t)`` rounds them), the loss ``logsumexp - logit[t]``,
and at once the gradient ``g = (softmax - onehot) * weight`` with ``dL/dh = g W``,
``dL/dW += g^T h`` (float32 accumulation), ``dL/db += sum(g)``. The chunk's logits are then freed;
backward only scales the stored gradients, nothing is recomputed, and the (positions x vocabulary)
tensor never exists. The elementwise part runs on blocks of rows in reused float32 buffers (on CPU
a fresh 128k-wide tensor costs more in page faults than its arithmetic).

It reads ``lm_head.weight`` directly, which is wrong where DeepSpeed ZeRO-3 or FSDP gather a
sharded weight in the module's hooks: :func:`lm_head_is_plain` tells whether it is safe, and
``reconstruction_loss`` calls the module instead when it is not. Details: docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

#: rows of a chunk whose float32 logits are processed at once (256 x 128,256 x 4 B = 131 MB):
#: few large elementwise ops, which on a busy CPU wait less at thread barriers than many small ones
DEFAULT_ROW_BLOCK = 256

#: vocabulary rows of the weight gradient computed per matmul before their float32 accumulation:
#: a (16,384 x hidden) buffer in the weight's dtype instead of one of the whole weight's size
WEIGHT_GRADIENT_SLICE = 16_384


def lm_head_is_plain(lm_head: nn.Module) -> bool:
    """Whether ``lm_head`` is an unsharded ``nn.Linear`` whose weight can be read outside its forward.

    False for DeepSpeed ZeRO-3 parameters (``ds_id``; empty outside the module's hooks), DTensor
    weights (FSDP2, tensor parallelism), empty weights (FSDP1 flat parameters outside the forward of
    their unit) and any other head (LoRA-wrapped, quantized...).
    """
    if type(lm_head) is not nn.Linear:
        return False
    weight = lm_head.weight
    if hasattr(weight, "ds_id") or hasattr(weight, "ds_status"):
        return False
    if type(weight).__name__ == "DTensor" or type(weight.data).__name__ == "DTensor":
        return False
    if weight.dim() != 2 or weight.numel() == 0:
        return False
    return lm_head.bias is None or lm_head.bias.numel() == weight.shape[0]


#: a softmax entry below this is too small for ``-log(p)`` to be exact: such rows get their loss
#: from recomputed logits (``logsumexp - target logit``) instead; it means a loss above ~69.
_SMALLEST_EXACT_PROBABILITY = 1e-30

#: devices whose softmax runs in place (``out=`` its input) in one kernel; elsewhere explicit ops
_INPLACE_SOFTMAX_DEVICES = ("cpu",)


def _block_loss_and_gradient(
    logits: torch.Tensor,
    targets: torch.Tensor,
    row_scale: torch.Tensor | None,
    work: torch.Tensor,
    losses_out: torch.Tensor,
    exact_losses: Callable[[torch.Tensor], torch.Tensor],
) -> None:
    """Losses of ``logits`` (rows x vocab) into ``losses_out``; with ``row_scale`` (rows, 1) the
    gradient ``row_scale * (softmax - onehot)`` overwrites ``logits`` in place.

    ``work`` is a float32 buffer of the same shape (the logits themselves when they are float32):
    reusing one buffer matters on CPU, where a fresh (rows x 128k) tensor costs more in page
    faults than the arithmetic done on it. ``exact_losses(rows)`` recomputes the losses of the
    given rows of the block from scratch (used when a target's probability underflows).
    """
    if work.data_ptr() != logits.data_ptr():
        work.copy_(logits)
    target = targets[:, None]
    if work.device.type in _INPLACE_SOFTMAX_DEVICES:
        # One in-place softmax kernel (max, exp-sum, normalize per row while the row is in cache)
        # instead of separate max / subtract / exp / sum / scale passes over the block.
        torch.softmax(work, dim=1, out=work)
        probability = work.gather(1, target).squeeze(1)
        losses_out.copy_(probability.log().neg_())
        small = probability < _SMALLEST_EXACT_PROBABILITY
        if bool(small.any()):
            rows = small.nonzero().squeeze(1)
            losses_out[rows] = exact_losses(rows)
        scale = row_scale
    else:
        target_logit = work.gather(1, target)
        peak = work.amax(dim=1, keepdim=True)
        work.sub_(peak).exp_()
        total = work.sum(dim=1, keepdim=True)
        losses_out.copy_((total.log() + peak - target_logit).squeeze(1))
        scale = None if row_scale is None else row_scale / total
    if row_scale is None:
        return
    work.mul_(scale)
    work.scatter_add_(1, target, -row_scale)
    if work.data_ptr() != logits.data_ptr():
        logits.copy_(work)


def _exact_losses(
    hidden: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, targets: torch.Tensor, rows: torch.Tensor
) -> torch.Tensor:
    logits = torch.nn.functional.linear(hidden[rows], weight, bias).float()
    return torch.logsumexp(logits, dim=1) - logits.gather(1, targets[rows, None]).squeeze(1)


class _FusedLinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        bias: torch.Tensor | None,
        targets: torch.Tensor,
        row_weights: torch.Tensor,
        chunk_size: int,
        row_block: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        count, vocab = targets.numel(), weight.shape[0]
        needs = ctx.needs_input_grad  # type: ignore[attr-defined]
        want_hidden, want_weight = bool(needs[0]), bool(needs[1])
        want_bias = bias is not None and bool(needs[2])
        any_grad = want_hidden or want_weight or want_bias
        device, dtype = hidden.device, weight.dtype
        row_weights = row_weights.to(device=device, dtype=torch.float32)
        losses = torch.empty(count, dtype=torch.float32, device=device)
        grad_hidden = torch.empty(hidden.shape, dtype=hidden.dtype, device=device) if want_hidden else None
        chunk = min(chunk_size, count)
        # Several chunks in a low precision: float32 accumulation of the weight gradient, each
        # chunk's share computed a vocabulary slice at a time into ``product``. One chunk (or float32
        # weights): a single matmul straight into the weight's dtype, rounded once as F.linear's is.
        accumulate = want_weight and dtype != torch.float32 and chunk < count
        grad_weight = None
        if want_weight:
            grad_weight = torch.zeros(weight.shape, dtype=torch.float32 if accumulate else dtype, device=device)
        product = None
        if accumulate:
            product = torch.empty(min(WEIGHT_GRADIENT_SLICE, vocab), weight.shape[1], dtype=dtype, device=device)
        grad_bias = torch.zeros(vocab, dtype=torch.float32, device=device) if want_bias else None
        logits_buffer = torch.empty(chunk, vocab, dtype=dtype, device=device)
        block = min(row_block, chunk)
        work_buffer = torch.empty(block, vocab, dtype=torch.float32, device=device) if dtype != torch.float32 else None
        for start in range(0, count, chunk):
            stop = min(start + chunk, count)
            h = hidden[start:stop]
            logits = logits_buffer[: stop - start]
            # Rounded once to the weight dtype, like F.linear (bias included).
            if bias is None:
                torch.mm(h, weight.t(), out=logits)
            else:
                torch.addmm(bias, h, weight.t(), out=logits)
            # Block by block: losses, and the gradient written over the logits.
            for row in range(0, stop - start, block):
                end = min(row + block, stop - start)
                work = logits[row:end] if work_buffer is None else work_buffer[: end - row]
                scale = row_weights[start + row : start + end, None] if any_grad else None
                first = start + row
                _block_loss_and_gradient(
                    logits[row:end], targets[first : start + end], scale, work, losses[first : start + end],
                    lambda rows, first=first: _exact_losses(hidden, weight, bias, targets, first + rows),
                )
            if not any_grad:
                continue
            grad_logits = logits
            if grad_hidden is not None:
                torch.mm(grad_logits, weight, out=grad_hidden[start:stop])
            if grad_weight is not None:
                if product is None:
                    grad_weight.addmm_(grad_logits.t(), h)
                else:
                    for first in range(0, vocab, product.shape[0]):
                        last = min(first + product.shape[0], vocab)
                        share = product[: last - first]
                        torch.mm(grad_logits[:, first:last].t(), h, out=share)
                        grad_weight[first:last].add_(share)
            if grad_bias is not None:
                grad_bias += grad_logits.sum(dim=0, dtype=torch.float32)
        del logits_buffer, work_buffer, product
        ctx.save_for_backward(
            grad_hidden,
            grad_weight.to(dtype) if grad_weight is not None else None,  # no copy when already in dtype
            grad_bias.to(bias.dtype) if grad_bias is not None else None,  # type: ignore[union-attr]
        )
        ctx.mark_non_differentiable(losses)
        return (losses * row_weights).sum(), losses

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor, _grad_losses: torch.Tensor | None):  # type: ignore[override]
        grad_hidden, grad_weight, grad_bias = ctx.saved_tensors
        # The loss is usually where backward starts (grad 1): the stored gradients are final.
        # Otherwise one multiplication (not in place: the graph may be retained).
        unit = grad_loss.numel() == 1 and bool(grad_loss == 1)

        def scaled(grad: torch.Tensor | None) -> torch.Tensor | None:
            if grad is None or unit:
                return grad
            return grad * grad_loss.to(grad.dtype)

        return scaled(grad_hidden), scaled(grad_weight), scaled(grad_bias), None, None, None, None


def fused_linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    bias: torch.Tensor | None = None,
    chunk_size: int | None = 1024,
    row_block: int = DEFAULT_ROW_BLOCK,
    row_weights: torch.Tensor | None = None,
    return_losses: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``F.cross_entropy(F.linear(hidden, weight, bias).float(), targets)`` without the logits.

    Args:
        hidden: (N, hidden) positions that all have a target (select them first).
        weight: (vocab, hidden) output projection; ``bias``: (vocab,) or None.
        targets: (N,) class ids (no ignore index here).
        chunk_size: positions per chunk (None: all at once).
        row_block: rows per elementwise block inside a chunk.
        row_weights: (N,) weight of every position's loss; the result is then
            ``sum(row_weights * losses)`` instead of the mean (e.g. two means with different
            weights in one call). The gradients are computed for that weighted sum.
        return_losses: also return the (N,) float32 per-position losses (no gradient).

    The loss is float32; the gradients have the dtypes of ``hidden``/``weight``/``bias``.
    """
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError(
            f"expected hidden (N, H) and targets (N,), got {tuple(hidden.shape)} and {tuple(targets.shape)}"
        )
    count = targets.numel()
    if count == 0:
        raise ValueError("no positions to predict")
    if row_weights is None:
        row_weights = torch.full((count,), 1.0 / count, dtype=torch.float32, device=hidden.device)
    elif row_weights.shape != targets.shape:
        raise ValueError(f"row_weights must have shape {tuple(targets.shape)}, got {tuple(row_weights.shape)}")
    chunk = count if chunk_size is None else max(1, int(chunk_size))
    loss, losses = _FusedLinearCrossEntropy.apply(
        hidden, weight, bias, targets, row_weights, chunk, max(1, int(row_block))
    )
    return (loss, losses) if return_losses else loss
