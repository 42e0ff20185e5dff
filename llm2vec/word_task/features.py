"""The frozen model's final hidden states at the labelled tokens, computed once per sentence.

llm2vec runs the frozen model again in every training step of the classifier; the model never
changes, so the states are the same every time (up to the dropout of an unmerged adapter, which
this library merges at load). Computing them once makes the probe's training a matter of seconds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from llm2vec.dataset.conll import TaggedSentence
from llm2vec.dataset.jsonl_reader import DatasetError
from llm2vec.word_task.alignment import IGNORE, align_labels, merge_subwords

logger = logging.getLogger(__name__)


@dataclass
class WordFeatures:
    """The labelled tokens of a split, in sentence order.

    Attributes:
        features: (N, hidden) final hidden states (merged over the word's tokens if asked).
        labels: (N,) label ids.
        sentence_of: (N,) index of each token's sentence.
        sentences: number of sentences of the split.
        words: number of words (tags) of the split.
        unlabelled_words: words whose tag no token predicts (cut by ``max_length``, or a first word
            with no token before it under ``next_token`` when the tokenizer adds no BOS).
    """

    features: torch.Tensor
    labels: torch.Tensor
    sentence_of: torch.Tensor
    sentences: int
    words: int
    unlabelled_words: int


def tokenize_words(tokenizer, words: Sequence[str], max_length: int) -> tuple[list[int], list[int | None]]:
    """Token ids and per-token word ids of a sentence given as words (llm2vec: ``is_split_into_words``)."""
    encoded = tokenizer(list(words), is_split_into_words=True, truncation=True, max_length=max_length)
    try:
        word_ids = encoded.word_ids()
    except ValueError as error:
        raise DatasetError(
            f"the word tasks need a fast tokenizer (word ids of each token); {type(tokenizer).__name__} has none"
        ) from error
    return list(encoded["input_ids"]), word_ids


def word_features(
    encoder,
    sentences: Sequence[TaggedSentence],
    labels: Sequence[Sequence[int]],
    retroactive_labels: str,
    merge: bool,
    max_length: int,
    batch_size: int = 32,
    dtype: torch.dtype = torch.float32,
) -> WordFeatures:
    """States of ``encoder`` (an ``LLM2Vec``: its attention, positions from the mask) at every
    token that carries a label. Sentences run in batches of similar length, right-padded; each
    sentence's states do not depend on the batch."""
    tokenizer = encoder.tokenizer
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rows = []
    unlabelled = cut = 0
    for sentence, word_labels in zip(sentences, labels, strict=True):
        ids, word_ids = tokenize_words(tokenizer, sentence.words, max_length)
        token_labels, token_words = align_labels(word_ids, word_labels, retroactive_labels)
        unlabelled += len(sentence.words) - sum(1 for label in token_labels if label != IGNORE)
        cut += len(sentence.words) - len({word for word in word_ids if word is not None})
        rows.append((ids, token_labels, token_words))
    if unlabelled:
        first_words = unlabelled - cut
        logger.warning(
            "%d of %d words have no token to predict their tag: %d cut at max_seq_length=%d, %d first words of a "
            "sentence with no token before them (next_token, and the tokenizer adds no BOS). They are left out of "
            "training and of the scores, as in llm2vec",
            unlabelled, sum(len(s.words) for s in sentences), cut, max_length, first_words,
        )
    order = sorted(range(len(rows)), key=lambda i: len(rows[i][0]))
    per_sentence: list[tuple[torch.Tensor, torch.Tensor] | None] = [None] * len(rows)
    device = encoder.device
    was_training = encoder.training
    encoder.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                batch = order[start : start + batch_size]
                width = max(len(rows[i][0]) for i in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros(len(batch), width, dtype=torch.long)
                for row, index in enumerate(batch):
                    ids = rows[index][0]
                    input_ids[row, : len(ids)] = torch.tensor(ids)
                    mask[row, : len(ids)] = 1
                hidden = encoder.hidden_states({"input_ids": input_ids.to(device), "attention_mask": mask.to(device)})
                for row, index in enumerate(batch):
                    ids, token_labels, token_words = rows[index]
                    states = hidden[row, : len(ids)]
                    if merge:
                        states = merge_subwords(states, torch.tensor(token_words, device=states.device))
                    target = torch.tensor(token_labels)
                    keep = target != IGNORE
                    per_sentence[index] = (states[keep.to(states.device)].to("cpu", dtype), target[keep])
    finally:
        encoder.train(was_training)
    features, targets, owners = [], [], []
    for index, (states, target) in enumerate(per_sentence):  # type: ignore[misc]
        features.append(states)
        targets.append(target)
        owners.append(torch.full((len(target),), index, dtype=torch.long))
    hidden_size = features[0].shape[1] if features else 0
    return WordFeatures(
        features=torch.cat(features) if features else torch.empty(0, hidden_size, dtype=dtype),
        labels=torch.cat(targets) if targets else torch.empty(0, dtype=torch.long),
        sentence_of=torch.cat(owners) if owners else torch.empty(0, dtype=torch.long),
        sentences=len(sentences),
        words=sum(len(s.words) for s in sentences),
        unlabelled_words=unlabelled,
    )
