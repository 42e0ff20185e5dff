"""The pieces of a training run that both stages wire the same way."""

from __future__ import annotations

import gc
import importlib.util
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import Dataset

from llm2vec.dataset import DatasetError, load_train_dataset
from llm2vec.model_sources import ModelSourceError
from llm2vec.training.arguments import DataArguments, EmbeddingTrainingArguments, ModelArguments
from llm2vec.training.checkpoints import checkpoint_step
from llm2vec.training.collator import PairCollator
from llm2vec.training.config_parsing import ConfigError
from llm2vec.training.run_folder import RunFolderError, RunStart
from llm2vec.training.trainer import EmbeddingTrainer, StopAfterNStepsCallback

logger = logging.getLogger(__name__)

#: errors that mean bad input rather than a bug: the entry points print them as one line
USER_ERRORS = (ConfigError, RunFolderError, DatasetError, ModelSourceError)


def resolve_attn_implementation(requested: str) -> str:
    """``flash_attention_2`` when it can run here, else SDPA (same result, more memory)."""
    if requested != "flash_attention_2":
        return requested
    if importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available():
        return requested
    logger.warning(
        "attn_implementation=flash_attention_2 needs the flash-attn package and a CUDA GPU "
        "(pip install -e '.[gpu]'); using sdpa instead. The results are the same, except under "
        "release_compat, where positions hidden by the embed mask attend to the anchor under sdpa "
        "but to nothing under flash-attention (docs/differences_from_release.md)"
    )
    return "sdpa"


def weights_loading_kwargs(model_args: ModelArguments) -> dict[str, Any]:
    """Keyword arguments for transformers' ``from_pretrained`` that the model arguments decide."""
    kwargs: dict[str, Any] = {"attn_implementation": resolve_attn_implementation(model_args.attn_implementation)}
    if model_args.torch_dtype is not None:
        kwargs["dtype"] = model_args.torch_dtype
    return kwargs


def encoder_loading_kwargs(model_args: ModelArguments) -> dict[str, Any]:
    """Keyword arguments of ``LLM2Vec.from_pretrained`` that the model arguments decide."""
    kwargs: dict[str, Any] = {
        "enable_bidirectional": model_args.bidirectional,
        "pooling_mode": model_args.pooling_mode,
        "max_length": model_args.max_seq_length,
        "prompt_template": model_args.prompt_template,
        **weights_loading_kwargs(model_args),
    }
    if model_args.tokenization is not None:
        kwargs["tokenization"] = model_args.tokenization
    return kwargs


def training_dataset(
    data_args: DataArguments, training_args: EmbeddingTrainingArguments, require_negatives: bool
) -> Dataset:
    """The task-chunked training set for this run's per-device batch size and world size."""
    return load_train_dataset(
        data_args.dataset_name,
        data_args.dataset_file_path,
        per_device_batch_size=training_args.per_device_train_batch_size,
        world_size=training_args.world_size,
        seed=training_args.seed,
        files=data_args.dataset_files,
        require_negatives=require_negatives,
        default_instruction=data_args.default_instruction,
    )


def train_and_save(
    model: nn.Module,
    dataset: Dataset,
    training_args: EmbeddingTrainingArguments,
    run: RunStart,
    with_negatives: bool = False,
    logged_outputs: Sequence[str] = (),
    data_collator: Callable[[list[Any]], Any] | None = None,
) -> EmbeddingTrainer:
    """Train ``model`` (from ``run.resume_from`` if set) and save the final model to ``output_dir``.

    Batches are (query, positive[, negative]) pairs tokenized by the model, unless ``data_collator``
    makes them otherwise (MNTP's masked blocks).

    A run resumed from a checkpoint that already reached ``stop_after_n_steps`` (it was stopped
    between that checkpoint and the final save) trains no further: the checkpoint's weights are
    saved as the final model.
    """
    # The collator consumes dataclass samples; there are no columns to drop.
    training_args.remove_unused_columns = False
    callbacks = []
    if training_args.stop_after_n_steps is not None:
        callbacks.append(StopAfterNStepsCallback(training_args.stop_after_n_steps))
    trainer = EmbeddingTrainer(
        model=model,
        args=training_args,
        train_dataset=dataset,
        data_collator=data_collator or PairCollator(model.tokenize, with_negatives=with_negatives),
        callbacks=callbacks,
        logged_outputs=logged_outputs,
    )
    reached = None if run.resume_from is None else checkpoint_step(run.resume_from)
    stop = training_args.stop_after_n_steps
    if reached is not None and stop is not None and reached >= stop:
        logger.info("%s already reached stop_after_n_steps=%d: saving it as the final model", run.resume_from, stop)
        model.load_checkpoint_weights(run.resume_from)
        trainer.state.global_step = reached
    else:
        trainer.train(resume_from_checkpoint=run.resume_from)
    trainer.save_model(training_args.output_dir)
    run.global_step = trainer.state.global_step
    return trainer


def run_main(main: Callable[[], object]) -> None:
    """Run an entry point's ``main``: bad input ends in one line, and the process group is shut down.

    Left to interpreter exit, gloo's worker threads are sometimes torn down while joinable
    ("terminate called without an active exception", an abort). The group is destroyed after
    ``main`` has returned and its models (DDP's reducer holds the group) are collected, with no
    collective in flight: a work still held by a worker thread would need the GIL to die.
    """
    try:
        main()
    except USER_ERRORS as error:
        sys.exit(f"error: {error}")
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gc.collect()
            torch.distributed.destroy_process_group()
