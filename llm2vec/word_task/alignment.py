"""Which token of a word-split sentence predicts which word's tag, as llm2vec's run_word_task aligns them.

The sentence's words are tokenized together (``is_split_into_words``); each word's tag sits on
its first token (``same_token``), or on the token before it (``next_token``, llm2vec's default:
a causal model's state at a token has not seen the token itself, so it predicts what comes next).
Every other token has no label (:data:`IGNORE`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

IGNORE = -100
RETROACTIVE_LABELS = ("next_token", "same_token")


def align_labels(
    word_ids: Sequence[int | None], word_labels: Sequence[int], retroactive_labels: str
) -> tuple[list[int], list[int]]:
    """Per-token labels and per-token word ids (-1: no word) of one tokenized sentence.

    ``word_ids`` are the tokenizer's (None for special tokens). With ``next_token`` both lists
    move one token to the left (the last token gets no label and no word), as llm2vec shifts them.
    """
    if retroactive_labels not in RETROACTIVE_LABELS:
        raise ValueError(f"retroactive_labels must be one of {list(RETROACTIVE_LABELS)}, got {retroactive_labels!r}")
    labels: list[int] = []
    previous = None
    for word in word_ids:
        labels.append(IGNORE if word is None or word == previous else word_labels[word])
        previous = word
    words = [-1 if word is None else word for word in word_ids]
    if retroactive_labels == "next_token":
        labels = labels[1:] + [IGNORE]
        words = words[1:] + [-1]
    return labels, words


def merge_subwords(hidden: torch.Tensor, words: torch.Tensor) -> torch.Tensor:
    """Every token's state replaced by the mean over the tokens of its word (``words`` >= 0; tokens
    with word -1 keep their own state). ``hidden`` (T, H), ``words`` (T,) of one sentence."""
    merged = hidden.clone()
    has_word = words >= 0
    if not bool(has_word.any()):
        return merged
    groups = words[has_word]
    count = int(groups.max()) + 1
    sums = torch.zeros(count, hidden.shape[1], dtype=torch.float32, device=hidden.device)
    sums.index_add_(0, groups, hidden[has_word].float())
    sizes = torch.bincount(groups, minlength=count).clamp_min(1).unsqueeze(1)
    merged[has_word] = (sums / sizes)[groups].to(hidden.dtype)
    return merged
