"""The JSON record a word-task run writes beside its classifier."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from llm2vec.word_task.features import WordFeatures
from llm2vec.word_task.probe import ProbeHistory


def word_task_record(
    model_args: Any, task_args: Any, labels: Sequence[str], history: ProbeHistory,
    scores: Mapping[str, Mapping[str, float]], features: Mapping[str, WordFeatures],
) -> str:
    """``word_task.json``: what was probed, with which labels, how training went, the final scores."""
    record = {
        "model": dataclasses.asdict(model_args),
        "task": dataclasses.asdict(task_args),
        "labels": list(labels),
        "splits": {
            split: {"sentences": rows.sentences, "words": rows.words, "labelled_tokens": len(rows.labels),
                    "words_without_prediction": rows.unlabelled_words}
            for split, rows in features.items()
        },
        "steps": history.steps,
        "losses": history.losses,
        "evaluations": history.evaluations,
        "scores": scores,
    }
    return json.dumps(record, indent=2) + "\n"
