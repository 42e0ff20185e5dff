"""StopAfterNStepsCallback: training stops, and saves, after the given number of optimizer steps."""

from __future__ import annotations

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from llm2vec.training.trainer import StopAfterNStepsCallback


def test_stops_and_saves_at_the_step_limit(tmp_path) -> None:
    callback = StopAfterNStepsCallback(3)
    args = TrainingArguments(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    for step, stops in ((1, False), (2, False), (3, True)):
        control = callback.on_step_end(args, TrainerState(global_step=step), TrainerControl())
        assert (control.should_training_stop, control.should_save) == (stops, stops), step


@pytest.mark.parametrize("n_steps", [0, -1])
def test_step_limit_must_be_positive(n_steps: int) -> None:
    with pytest.raises(ValueError, match=f"stop_after_n_steps must be positive, got {n_steps}"):
        StopAfterNStepsCallback(n_steps)
