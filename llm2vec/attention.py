"""Switching a decoder's self-attention between causal and bidirectional."""

from __future__ import annotations

from torch import nn


def set_bidirectional_attention(model: nn.Module, bidirectional: bool = True) -> int:
    """Make every attention layer of ``model`` attend in both directions (or causally again).

    Transformers builds a bidirectional mask when ``config.is_causal`` is False, and the SDPA and
    flash-attention kernels read ``is_causal`` from each attention module, so both are switched.
    Returns how many modules were switched; 0 means the architecture does not expose the flag.
    """
    switched = 0
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "model_type"):
            config.is_causal = not bidirectional
        if hasattr(module, "is_causal") and isinstance(module.is_causal, bool):
            module.is_causal = not bidirectional
            switched += 1
    if bidirectional and switched == 0:
        raise ValueError(
            f"{type(model).__name__} has no attention module with an 'is_causal' flag; "
            "bidirectional attention is not supported for this architecture"
        )
    return switched
