"""Gradient cache for contrastive losses: a full-batch InfoNCE with mini-batch memory.

The contrastive loss couples every text of the batch, so its batch cannot be split by gradient
accumulation without changing the loss. Gradient caching (Gao et al., 2021) keeps the loss exact:

1. embed every mini-batch without building a graph, remembering each mini-batch's RNG state;
2. compute the full-batch loss on those embeddings (as leaves) and its gradient w.r.t. them;
3. in backward, re-embed each mini-batch with a graph under its remembered RNG state (so dropout
   draws the same masks) and backpropagate the cached embedding gradient through it.

Peak activation memory is that of one mini-batch; the cost is one extra forward per step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Features = dict[str, torch.Tensor]
Embed = Callable[[Features], torch.Tensor]


class _RngState:
    """The CPU and CUDA generator states, to replay a forward pass with the same random draws."""

    def __init__(self) -> None:
        self.cpu = torch.get_rng_state()
        self.cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else None

    def restore(self) -> None:
        torch.set_rng_state(self.cpu)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)


def _slices(features: Features, size: int) -> list[Features]:
    rows = features["input_ids"].shape[0]
    return [{k: v[start : start + size] for k, v in features.items()} for start in range(0, rows, size)]


class CachedEmbeddings:
    """Graph-free embeddings of several feature groups (e.g. queries, positives, negatives).

    Args:
        embed: maps tokenized features to pooled embeddings.
        groups: the feature groups of one batch.
        mini_batch_size: rows embedded at once, without a graph now and with one in backward.
    """

    def __init__(self, embed: Embed, groups: Sequence[Features], mini_batch_size: int) -> None:
        if mini_batch_size < 1:
            raise ValueError(f"gradient cache mini-batch size must be positive, got {mini_batch_size}")
        self.embed = embed
        self.pieces = [_slices(group, mini_batch_size) for group in groups]
        self.rng_states: list[list[_RngState]] = []
        leaves = []
        with torch.no_grad():
            for pieces in self.pieces:
                states, outputs = [], []
                for piece in pieces:
                    states.append(_RngState())
                    outputs.append(embed(piece))
                self.rng_states.append(states)
                leaves.append(torch.cat(outputs).detach().requires_grad_())
        self.leaves = leaves

    def backward_through_encoder(self, leaf_grads: Sequence[torch.Tensor]) -> None:
        """Re-embed every mini-batch with a graph and backpropagate its slice of ``leaf_grads``."""
        after = _RngState()
        try:
            for pieces, states, grad in zip(self.pieces, self.rng_states, leaf_grads):
                start = 0
                for piece, state in zip(pieces, states):
                    rows = piece["input_ids"].shape[0]
                    state.restore()
                    with torch.enable_grad():
                        embeddings = self.embed(piece)
                    torch.autograd.backward(embeddings, grad[start : start + rows].to(embeddings.dtype))
                    start += rows
        finally:
            after.restore()


def cached_loss(
    embed: Embed,
    groups: Sequence[Features],
    loss_of_embeddings: Callable[..., tuple[torch.Tensor, torch.Tensor]],
    mini_batch_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The full-batch loss whose backward runs through the encoder one mini-batch at a time.

    ``loss_of_embeddings(*embeddings)`` returns ``(loss, extra)``; ``extra`` (e.g. scores) is
    returned detached. The returned loss is a graph leaf: calling ``backward`` on it (as the
    Trainer does, with any gradient-accumulation scaling) fills the encoder's parameter gradients.
    """
    cache = CachedEmbeddings(embed, groups, mini_batch_size)
    with torch.enable_grad():
        loss, extra = loss_of_embeddings(*cache.leaves)
        leaf_grads = torch.autograd.grad(loss, cache.leaves)
    surrogate = loss.detach().requires_grad_()

    def replay(grad_output: torch.Tensor) -> None:
        cache.backward_through_encoder([g * grad_output for g in leaf_grads])

    surrogate.register_hook(replay)
    return surrogate, extra.detach()
