"""Token/label alignment, subword merging and the tagging scores against hand computations."""

from __future__ import annotations

import pytest
import torch

from llm2vec.word_task.alignment import IGNORE, align_labels, merge_subwords
from llm2vec.word_task.metrics import chunks, tagging_scores

# BOS, "EU" (2 tokens), "rejects" (3 tokens), "." (1 token)
WORD_IDS = [None, 0, 0, 1, 1, 1, 2]
WORD_LABELS = [5, 7, 9]


def test_same_token_puts_each_tag_on_the_first_token_of_its_word() -> None:
    labels, words = align_labels(WORD_IDS, WORD_LABELS, "same_token")
    assert labels == [IGNORE, 5, IGNORE, 7, IGNORE, IGNORE, 9]
    assert words == [-1, 0, 0, 1, 1, 1, 2]


def test_next_token_moves_labels_and_words_one_token_left() -> None:
    labels, words = align_labels(WORD_IDS, WORD_LABELS, "next_token")
    # the BOS predicts "EU"'s tag, the last token of "EU" predicts "rejects"'s, ...
    assert labels == [5, IGNORE, 7, IGNORE, IGNORE, 9, IGNORE]
    assert words == [0, 0, 1, 1, 1, 2, -1]


def test_unknown_retroactive_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="retroactive_labels"):
        align_labels(WORD_IDS, WORD_LABELS, "next_word")


def test_merge_subwords_averages_each_word_and_keeps_the_rest() -> None:
    hidden = torch.arange(14, dtype=torch.float32).reshape(7, 2)
    words = torch.tensor([-1, 0, 0, 1, 1, 1, 2])
    merged = merge_subwords(hidden, words)
    expected = hidden.clone()
    for word in range(3):
        rows = words == word
        expected[rows] = hidden[rows].mean(0)
    assert torch.equal(merged, expected)
    assert torch.equal(merged[0], hidden[0])  # no word: its own state
    assert torch.equal(merged[1], torch.tensor([3.0, 4.0]))  # mean of rows 1 and 2
    assert torch.equal(merge_subwords(hidden, torch.full((7,), -1)), hidden)


def test_chunks_follow_conlleval() -> None:
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG", "NN", "B-MISC"]
    assert chunks(tags) == {(0, 2, "PER"), (3, 5, "LOC"), (5, 6, "LOC"), (6, 7, "ORG"), (8, 9, "MISC")}
    assert chunks(["NN", "VBZ", "-LRB-"]) == set()


def test_tagging_scores_by_hand() -> None:
    gold = [["B-PER", "I-PER", "O"], ["B-LOC", "O", "B-ORG"]]
    guess = [["B-PER", "I-PER", "O"], ["B-LOC", "B-ORG", "O"]]
    scores = tagging_scores(guess, gold)
    # words: 4 of 6 right; chunks: predicted PER, LOC, ORG(1) / gold PER, LOC, ORG(2): 2 of 3 each way
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["precision"] == pytest.approx(2 / 3)
    assert scores["recall"] == pytest.approx(2 / 3)
    assert scores["f1"] == pytest.approx(2 / 3)
    assert tagging_scores([["NN", "VB"]], [["NN", "NN"]]) == {"accuracy": 0.5}  # POS tags: no chunks
    with pytest.raises(ValueError, match="predicted tags"):
        tagging_scores([["O"]], [["O", "O"]])
