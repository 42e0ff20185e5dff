"""Cross-entropy of teacher-forced reconstruction, computed only where there is a target.

Logits exist for target positions alone, and with ``chunk_size`` for at most that many positions
at a time: each chunk's logits are recomputed in backward instead of being kept, so the
(tokens x vocabulary) tensor that dominates the release's Stage I memory never exists whole.

:func:`label_cross_entropy` chooses between this module-calling implementation ("chunked", safe
under DeepSpeed ZeRO-3 / FSDP), the fused one of ``fused_cross_entropy`` ("fused": gradient in the
forward pass, no recomputation; reads ``lm_head.weight`` directly) and two optional CUDA packages
("liger": Liger Kernel, "cut": Apple's cut-cross-entropy); "auto" takes "fused" when the head is a
plain unsharded ``nn.Linear`` and "chunked" otherwise.
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


# ---------------------------------------------------------------------------- implementations
#: ``ce_implementation`` values: "auto" picks "fused" when the head is a plain, unsharded
#: ``nn.Linear`` and "chunked" otherwise (see ``fused_cross_entropy.lm_head_is_plain``).
CE_IMPLEMENTATIONS = ("auto", "chunked", "fused", "liger", "cut")


def resolve_ce_implementation(implementation: str, lm_head: nn.Module) -> str:
    """The implementation ``implementation`` stands for with this ``lm_head``."""
    from llm2vec.loss.fused_cross_entropy import lm_head_is_plain

    if implementation not in CE_IMPLEMENTATIONS:
        raise ValueError(f"unknown ce_implementation '{implementation}'; choose one of {CE_IMPLEMENTATIONS}")
    if implementation == "auto":
        return "fused" if lm_head_is_plain(lm_head) else "chunked"
    if implementation in ("fused", "liger", "cut") and not lm_head_is_plain(lm_head):
        raise ValueError(
            f"ce_implementation '{implementation}' reads lm_head.weight directly, which is wrong for a sharded "
            "(DeepSpeed ZeRO-3, FSDP) or wrapped head; use 'chunked' (or 'auto')"
        )
    return implementation


def _liger_cross_entropy(hidden: torch.Tensor, labels: torch.Tensor, lm_head: nn.Module) -> torch.Tensor:
    try:
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy
    except ImportError as error:  # pragma: no cover - optional GPU dependency
        raise ImportError("ce_implementation='liger' needs the liger-kernel package") from error
    if hidden.device.type != "cuda":  # pragma: no cover
        raise ValueError("ce_implementation='liger' runs Triton kernels on a CUDA device only")
    return liger_fused_linear_cross_entropy(hidden, lm_head.weight, labels, bias=lm_head.bias, reduction="mean").float()


def _cut_cross_entropy(hidden: torch.Tensor, labels: torch.Tensor, lm_head: nn.Module) -> torch.Tensor:
    try:
        from cut_cross_entropy import linear_cross_entropy
    except ImportError as error:  # pragma: no cover - optional GPU dependency
        raise ImportError("ce_implementation='cut' needs the cut-cross-entropy package") from error
    if hidden.device.type != "cuda":  # pragma: no cover
        raise ValueError("ce_implementation='cut' runs Triton kernels on a CUDA device only")
    # cce_exact: no gradient filtering, so the result is the plain cross-entropy's.
    return linear_cross_entropy(
        hidden, lm_head.weight, labels, bias=lm_head.bias, reduction="mean", impl="cce_exact"
    ).float()


def label_cross_entropy(
    hidden_states: torch.Tensor,
    targets: torch.Tensor,
    lm_head: nn.Module,
    chunk_size: int | None = None,
    implementation: str = "auto",
) -> torch.Tensor:
    """:func:`label_only_cross_entropy` with a choice of implementation.

    * ``chunked``: calls ``lm_head`` on chunks of target positions, each recomputed in backward
      (torch checkpoint). Works under DeepSpeed ZeRO-3 / FSDP, whose hooks gather a sharded head.
    * ``fused``: ``fused_cross_entropy.fused_linear_cross_entropy``, the gradient computed in the
      forward pass chunk by chunk (no recomputation, one chunk of logits alive).
    * ``liger`` / ``cut``: Liger Kernel's / Apple's cut-cross-entropy fused kernels (CUDA, optional
      packages), whole target set at once.
    * ``auto``: ``fused`` for a plain unsharded ``nn.Linear`` head, ``chunked`` otherwise.

    All compute the same value: the mean over non-ignored positions of
    ``F.cross_entropy(lm_head(h).float(), t)``.
    """
    implementation = resolve_ce_implementation(implementation, lm_head)
    if implementation == "chunked":
        return label_only_cross_entropy(hidden_states, targets, lm_head, chunk_size)
    selected = targets != IGNORE_INDEX
    if bool(selected.all()):
        hidden = hidden_states.reshape(-1, hidden_states.shape[-1])
        labels = targets.reshape(-1)
    else:
        hidden = hidden_states[selected]
        labels = targets[selected]
    if labels.numel() == 0:
        return hidden_states.sum() * 0.0
    if implementation == "fused":
        from llm2vec.loss.fused_cross_entropy import fused_linear_cross_entropy

        return fused_linear_cross_entropy(hidden, lm_head.weight, labels, lm_head.bias, chunk_size)
    if implementation == "liger":
        return _liger_cross_entropy(hidden, labels, lm_head)
    return _cut_cross_entropy(hidden, labels, lm_head)
