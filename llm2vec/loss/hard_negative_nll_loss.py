"""InfoNCE with in-batch and hard negatives (the Stage II loss, paper Eq. 6-7).

For query i, the candidates are every positive document of the batch followed by every hard
negative; the target is positive i:

    scores = scale * cos(q, [d_1 .. d_N ; n_1 .. n_M])        (N x (N + M))
    loss   = mean_i  -log softmax(scores_i)[i]

Under multi-process training the queries, positives and negatives of all ranks are gathered first,
so every rank computes the same full-batch loss and the negatives of other ranks count too. Each
rank's backward reaches only its own rows, and DDP averages the ranks' gradients; the loss is
therefore backpropagated with weight ``world_size`` (its value is unchanged), which makes the
averaged gradient exactly the gradient of one process that sees the union of the batches.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llm2vec.loss.distributed import all_gather_with_grad, scale_gradient, world_size

#: 1 / temperature of the release and llm2vec (tau 0.02); the paper's text says tau 0.05 (scale 20)
DEFAULT_SCALE = 50.0


def scale_problem(scale: object) -> str | None:
    """What is wrong with ``scale`` as the loss scale ("must be ..."), or None if it is fine."""
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 0:
        return f"must be a positive number, got {scale!r}"
    return None


def cosine_similarity_matrix(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(len(a), len(b)) cosine similarities, computed in at least float32."""
    dtype = torch.promote_types(a.dtype, torch.float32)
    a = F.normalize(a.to(dtype), p=2, dim=-1)
    b = F.normalize(b.to(dtype), p=2, dim=-1)
    return a @ b.transpose(0, 1)


class HardNegativeNLLLoss(nn.Module):
    """Contrastive cross-entropy of queries against all positives and hard negatives.

    Args:
        scale: multiplies the cosine similarities (1 / temperature).
    """

    def __init__(self, scale: float = DEFAULT_SCALE) -> None:
        super().__init__()
        problem = scale_problem(scale)
        if problem is not None:
            raise ValueError(f"scale {problem}")
        self.scale = float(scale)

    def extra_repr(self) -> str:
        return f"scale={self.scale}"

    def scores(
        self,
        q_reps: torch.Tensor,
        d_reps: torch.Tensor,
        d_reps_neg: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled similarities of all (gathered) queries with all candidates, and the target indices.

        Args:
            q_reps: (batch, hidden) query embeddings of this process.
            d_reps: (batch, hidden) their positive documents.
            d_reps_neg: (negatives, hidden) hard negatives, or None for in-batch negatives only.
        """
        if q_reps.shape[0] != d_reps.shape[0]:
            raise ValueError(f"{q_reps.shape[0]} queries but {d_reps.shape[0]} positive documents")
        queries = all_gather_with_grad(q_reps)
        candidates = all_gather_with_grad(d_reps)
        if d_reps_neg is not None:
            candidates = torch.cat([candidates, all_gather_with_grad(d_reps_neg)], dim=0)
        scores = self.scale * cosine_similarity_matrix(queries, candidates)
        labels = torch.arange(queries.shape[0], device=scores.device)
        return scores, labels

    def loss_from_scores(self, scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy; under multi-process training its gradient is weighted by the world size."""
        return scale_gradient(F.cross_entropy(scores, labels), float(world_size()))

    def forward(
        self,
        q_reps: torch.Tensor,
        d_reps: torch.Tensor,
        d_reps_neg: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The loss (a scalar) of queries ``q_reps`` against positives ``d_reps`` and negatives ``d_reps_neg``."""
        return self.loss_from_scores(*self.scores(q_reps, d_reps, d_reps_neg))
