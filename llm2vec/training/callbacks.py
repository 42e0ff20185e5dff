"""Trainer callbacks shared by both stages."""

from __future__ import annotations

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments


class StopAfterNStepsCallback(TrainerCallback):
    """Ends training after ``n_steps`` optimizer steps and saves there.

    The paper's recipes (like llm2vec's) keep the learning-rate schedule of the full epoch count
    and stop early, so this is not the same as ``max_steps``.
    """

    def __init__(self, n_steps: int) -> None:
        if n_steps < 1:
            raise ValueError(f"stop_after_n_steps must be positive, got {n_steps}")
        self.n_steps = n_steps

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: object
    ) -> TrainerControl:
        if state.global_step >= self.n_steps:
            control.should_training_stop = True
            control.should_save = True
        return control
