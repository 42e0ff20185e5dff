"""Scores of predicted word tags: token accuracy, and chunk precision/recall/F1 for BIO tags.

Chunks follow conlleval (and seqeval's default mode, which llm2vec's script reports): a chunk
starts at ``B-X``, or at ``I-X`` after anything but a chunk of type X, and runs over the ``I-X``
that follow. Tags without a ``B-``/``I-`` prefix (``O``, POS tags) belong to no chunk, so for POS
tagging only the accuracy means something.
"""

from __future__ import annotations

from collections.abc import Sequence


def chunks(tags: Sequence[str]) -> set[tuple[int, int, str]]:
    """``(start, end, type)`` of every chunk of a BIO-tagged sentence (end exclusive)."""
    found: set[tuple[int, int, str]] = set()
    start, kind = 0, None
    for position, tag in enumerate([*tags, "O"]):
        prefix, _, tag_type = tag.partition("-")
        inside = prefix == "I" and tag_type == kind
        if kind is not None and not inside:
            found.add((start, position, kind))
            kind = None
        if tag_type and (prefix == "B" or (prefix == "I" and kind is None)):
            start, kind = position, tag_type
    return found


def tagging_scores(predicted: Sequence[Sequence[str]], gold: Sequence[Sequence[str]]) -> dict[str, float]:
    """Accuracy over all words, and micro precision/recall/F1 over all chunks of all sentences
    (left out when the gold tags hold no chunk)."""
    if len(predicted) != len(gold):
        raise ValueError(f"{len(predicted)} predicted sentences for {len(gold)} gold ones")
    correct = total = 0
    true_positive = predicted_chunks = gold_chunks = 0
    for guess, truth in zip(predicted, gold):
        if len(guess) != len(truth):
            raise ValueError(f"a sentence has {len(guess)} predicted tags for {len(truth)} gold tags")
        correct += sum(a == b for a, b in zip(guess, truth))
        total += len(truth)
        guessed, wanted = chunks(guess), chunks(truth)
        true_positive += len(guessed & wanted)
        predicted_chunks += len(guessed)
        gold_chunks += len(wanted)
    scores = {"accuracy": correct / total if total else 0.0}
    if gold_chunks:  # chunk scores only where the tags form chunks (not for POS tags)
        precision = true_positive / predicted_chunks if predicted_chunks else 0.0
        recall = true_positive / gold_chunks
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        scores.update(precision=precision, recall=recall, f1=f1)
    return scores
