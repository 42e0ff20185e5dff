"""Batches of training samples into tokenized features for either stage."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from llm2vec.dataset import TrainSample

Tokenize = Callable[[Sequence[str]], dict[str, torch.Tensor]]


class PairCollator:
    """Tokenizes queries and positives (and hard negatives when ``with_negatives``).

    Stage I passes ``with_negatives=False``: its loss never uses negatives, so they are neither
    tokenized nor encoded. The output keys are the model's ``forward`` arguments.
    """

    def __init__(self, tokenize: Tokenize, with_negatives: bool) -> None:
        self.tokenize = tokenize
        self.with_negatives = with_negatives

    def __call__(self, samples: Sequence[TrainSample]) -> dict[str, dict[str, torch.Tensor]]:
        batch = {
            "q_features": self.tokenize([s.query for s in samples]),
            "d_features": self.tokenize([s.positive for s in samples]),
        }
        if self.with_negatives:
            missing = [s.task for s in samples if s.negative is None]
            if missing:
                raise ValueError(
                    f"{len(missing)} sample(s) of task {missing[0]!r} have no hard negative; "
                    "train without hard negatives or use data that has a 'negative' on every line"
                )
            batch["n_features"] = self.tokenize([s.negative for s in samples])  # type: ignore[misc]
        return batch
