"""The Trainer both stages use: the model computes its own loss in ``forward``."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset, SequentialSampler
from transformers import Trainer, TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from llm2vec.training.checkpoints import clear_complete, mark_complete, remove_old_checkpoints
from llm2vec.weights import read_safetensors_folder

TRAINING_ARGS_NAME = "training_args.bin"


class EmbeddingTrainer(Trainer):
    """A ``Trainer`` for LLM2Vec models.

    - Reads the dataset in order: the datasets already arrange task-homogeneous chunks of
      per-device batch x world size, and accelerate hands rank r the r-th batch of each chunk.
    - Logs, beside ``loss``, the mean of the named model outputs (e.g. ``q2d_loss``, ``d2q_loss``)
      over the steps since the last log, averaged across processes.
    - Saves checkpoints with the model's own ``save`` (a loadable model folder plus tokenizer and
      ``llm2vec_config.json``), marks each complete checkpoint, and reloads weights on resume.
    """

    def __init__(self, *args: Any, logged_outputs: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.logged_outputs = tuple(logged_outputs)
        self._output_sums: torch.Tensor | None = None
        self._output_count = 0

    def _get_train_sampler(self, train_dataset: Dataset | None = None) -> SequentialSampler:
        return SequentialSampler(train_dataset if train_dataset is not None else self.train_dataset)

    def compute_loss(
        self,
        model: nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        outputs = model(**inputs)
        if model.training and self.logged_outputs:
            values = torch.stack([outputs[name].detach().float() for name in self.logged_outputs])
            self._output_sums = values if self._output_sums is None else self._output_sums + values
            self._output_count += 1
        loss = outputs["loss"]
        return (loss, outputs) if return_outputs else loss

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs and self._output_sums is not None:
            means = self.accelerator.reduce(self._output_sums / self._output_count, reduction="mean")
            logs.update({name: round(float(value), 4) for name, value in zip(self.logged_outputs, means)})
            self._output_sums, self._output_count = None, 0
        super().log(logs, start_time)

    def _save(self, output_dir: str | None = None, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        output_dir = output_dir if output_dir is not None else self.args.output_dir
        if not self.args.should_save:
            return
        self.accelerator.unwrap_model(self.model).save(output_dir, state_dict=state_dict)
        torch.save(self.args, os.path.join(output_dir, TRAINING_ARGS_NAME))

    def _save_checkpoint(self, model: nn.Module, trial: Any) -> None:
        run_dir = self._get_output_dir(trial=trial)
        checkpoint = os.path.join(run_dir, f"checkpoint-{self.state.global_step}")
        if self.args.should_save:
            # An older run's folder of the same step must not look complete while it is overwritten.
            clear_complete(checkpoint)
        # transformers deletes old checkpoints at the end of its save, before this one is marked
        # complete; a crash there would leave none complete. Rotation waits for the marker here.
        limit, self.args.save_total_limit = self.args.save_total_limit, None
        try:
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = limit
        if self.args.should_save:
            mark_complete(checkpoint)
            remove_old_checkpoints(run_dir, limit, protected=self.state.best_model_checkpoint)

    def _load_from_checkpoint(self, resume_from_checkpoint: str, model: nn.Module | None = None) -> None:
        target = model if model is not None else self.model
        if self.is_fsdp_enabled:
            # FSDP2 parameters are DTensors: a full state dict is scattered into the shards.
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

            state = read_safetensors_folder(resume_from_checkpoint)
            set_model_state_dict(target, state, options=StateDictOptions(full_state_dict=True, strict=False))
            return
        self.accelerator.unwrap_model(target).load_checkpoint_weights(resume_from_checkpoint)


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
