"""Scores of a word probe on a split's precomputed states."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from llm2vec.word_task.features import WordFeatures
from llm2vec.word_task.metrics import tagging_scores
from llm2vec.word_task.probe import WordProbe


def by_sentence(values: torch.Tensor, data: WordFeatures, labels: Sequence[str]) -> list[list[str]]:
    """Per-token label ids as each sentence's list of tag names."""
    sentences: list[list[str]] = [[] for _ in range(data.sentences)]
    for owner, value in zip(data.sentence_of.tolist(), values.tolist()):
        sentences[owner].append(labels[value])
    return sentences


def score_probe(probe: WordProbe, data: WordFeatures, labels: Sequence[str]) -> dict[str, float]:
    """Accuracy (and chunk precision/recall/F1 for BIO tags) of ``probe`` on ``data``: the words
    some token predicts; ``word_task.json`` counts the others per split."""
    predicted = probe.predict(data.features)
    scores = tagging_scores(by_sentence(predicted, data, labels), by_sentence(data.labels, data, labels))
    return scores
