"""The sample type that training datasets hand to the collators."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TrainSample:
    """One training example, with texts already in the model's input format.

    Attributes:
        query: ``"{instruction}; " + SEPARATOR + query`` (or ``SEPARATOR + query`` when the
            sample has no instruction).
        positive: ``SEPARATOR + positive``; documents never get an instruction.
        negative: ``SEPARATOR + negative``, or ``None`` when the source line has no negative.
        task: the task the sample belongs to (the source file name without ``.jsonl``); all
            samples of one micro-batch share it.
    """

    query: str
    positive: str
    negative: str | None
    task: str
