"""The word-task classifier (dropout, then one linear layer) and its training on precomputed states.

As llm2vec's ``ModelForWordTask``: dropout on each token's state, ``Linear(hidden, labels)``,
cross-entropy averaged over the labelled tokens of a batch of sentences, only the classifier
trained. The batches, the optimizer and the schedule follow what its ``Trainer`` does with the
same training arguments: ``per_device_train_batch_size`` sentences per step in a seeded random
order each epoch, AdamW (``learning_rate``, ``weight_decay``, ``adam_*``), the ``lr_scheduler_type``
schedule with its warm-up over all epochs (``max_steps`` if set), ``stop_after_n_steps`` ending
training early. Unlike llm2vec, the classifier is float32 whatever the model's dtype.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from llm2vec.word_task.features import WordFeatures


class WordProbe(nn.Module):
    """Dropout and a linear layer from a token's hidden state to tag logits."""

    def __init__(self, hidden_size: int, num_labels: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden_size, num_labels)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.dropout(states.float()))

    @torch.no_grad()
    def predict(self, states: torch.Tensor, batch: int = 65_536) -> torch.Tensor:
        """Label ids of ``states`` (N, hidden), in evaluation mode."""
        if not len(states):
            return torch.empty(0, dtype=torch.long)
        was_training = self.training
        self.eval()
        try:
            return torch.cat([self(states[i : i + batch]).argmax(-1) for i in range(0, len(states), batch)])
        finally:
            self.train(was_training)


@dataclass
class ProbeSchedule:
    """How long and how fast the probe trains (from the run's training arguments)."""

    learning_rate: float
    epochs: float
    batch_sentences: int
    seed: int
    weight_decay: float = 0.0
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_epsilon: float = 1e-8
    scheduler: str = "linear"
    #: as in transformers: a number of steps, or below 1 a share of all steps
    warmup_steps: float = 0
    max_steps: int = -1
    stop_after_n_steps: int | None = None
    eval_every: float | None = None
    log_every: float = 50

    @classmethod
    def from_training_arguments(cls, args: Any) -> ProbeSchedule:
        """The schedule a transformers ``TrainingArguments`` describes."""
        eval_every = None
        if str(getattr(args.eval_strategy, "value", args.eval_strategy)) == "steps":
            eval_every = args.eval_steps if args.eval_steps else args.logging_steps
        return cls(
            learning_rate=args.learning_rate, epochs=args.num_train_epochs, batch_sentences=args.per_device_train_batch_size,
            seed=args.seed, weight_decay=args.weight_decay, adam_betas=(args.adam_beta1, args.adam_beta2),
            adam_epsilon=args.adam_epsilon, scheduler=str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type)),
            warmup_steps=args.warmup_steps, max_steps=args.max_steps, stop_after_n_steps=args.stop_after_n_steps,
            eval_every=eval_every, log_every=args.logging_steps,
        )


def _steps(value: float, total: int) -> int:
    """Steps given as a count, or below 1 as a share of ``total`` (transformers' convention)."""
    return int(value) if value >= 1 else math.ceil(total * value)


@dataclass
class ProbeHistory:
    """Losses logged during training and the scores of each evaluation, by step."""

    losses: list[tuple[int, float]] = field(default_factory=list)
    evaluations: list[tuple[int, dict[str, float]]] = field(default_factory=list)
    steps: int = 0


def _sentence_ranges(data: WordFeatures) -> list[tuple[int, int]]:
    counts = torch.bincount(data.sentence_of, minlength=data.sentences).tolist()
    ranges, start = [], 0
    for count in counts:
        ranges.append((start, start + count))
        start += count
    return ranges


def train_probe(
    train: WordFeatures,
    num_labels: int,
    dropout: float,
    schedule: ProbeSchedule,
    evaluate: Callable[[WordProbe], dict[str, float]] | None = None,
    log: Callable[[str], object] = print,
) -> tuple[WordProbe, ProbeHistory]:
    """Train a :class:`WordProbe` on ``train``; ``evaluate(probe)`` runs every ``eval_every`` steps."""
    from transformers import get_scheduler

    if not len(train.labels):
        raise ValueError("the training split has no labelled token")
    generator = torch.Generator().manual_seed(schedule.seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(schedule.seed)
        probe = WordProbe(train.features.shape[1], num_labels, dropout)
    ranges = _sentence_ranges(train)
    per_epoch = math.ceil(train.sentences / schedule.batch_sentences)
    total = schedule.max_steps if schedule.max_steps > 0 else math.ceil(schedule.epochs * per_epoch)
    optimizer = torch.optim.AdamW(
        probe.parameters(), lr=schedule.learning_rate, betas=schedule.adam_betas, eps=schedule.adam_epsilon,
        weight_decay=schedule.weight_decay,
    )
    scheduler = get_scheduler(
        schedule.scheduler, optimizer, num_warmup_steps=_steps(schedule.warmup_steps, total), num_training_steps=total
    )
    stop = total if schedule.stop_after_n_steps is None else min(total, schedule.stop_after_n_steps)
    log_every = max(1, _steps(schedule.log_every, total))
    eval_every = max(1, _steps(schedule.eval_every, total)) if schedule.eval_every else None
    history = ProbeHistory()
    probe.train()
    loss_function = nn.CrossEntropyLoss()
    step = 0
    while step < stop:
        order = torch.randperm(train.sentences, generator=generator).tolist()
        for first in range(0, len(order), schedule.batch_sentences):
            rows = torch.cat([torch.arange(*ranges[i]) for i in order[first : first + schedule.batch_sentences]])
            if not len(rows):
                continue  # sentences whose words were all cut away: nothing to learn from
            loss = loss_function(probe(train.features[rows]), train.labels[rows])
            loss.backward()
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % log_every == 0 or step == stop:
                history.losses.append((step, float(loss)))
                log(f"step {step}/{stop}: loss {float(loss):.4f}")
            if evaluate is not None and eval_every and step % eval_every == 0:
                history.evaluations.append((step, evaluate(probe)))
                log(f"step {step}: validation " + ", ".join(f"{k} {100 * v:.2f}" for k, v in history.evaluations[-1][1].items()))
            if step >= stop:
                break
    history.steps = step
    return probe, history
