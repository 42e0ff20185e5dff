"""One contrastive training run from a config: the engine of Stage II and of llm2vec's supervised recipe.

The model is loaded (a base or a Stage I output, with ``peft_model_name_or_path`` merged in),
a fresh LoRA adapter is added (or every weight is trained), and the InfoNCE loss with in-batch
and hard negatives is minimised; llm2vec's unsupervised SimCSE is the same run on sentences paired
with themselves, without hard negatives, with attention dropout. Entry points differ only in the defaults they give keys that
their configs leave out (:func:`run_contrastive`'s ``defaults``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import set_seed

from llm2vec.llm2vec_contrastive import LLM2VecContrastive
from llm2vec.training.arguments import STAGE_II_CONFIG_TYPES
from llm2vec.training.config_parsing import parse_config
from llm2vec.training.run_folder import claim_output_dir
from llm2vec.training.setup_run import encoder_loading_kwargs, train_and_save, training_dataset

logger = logging.getLogger(__name__)

#: the folder under ``output_dir`` that ``save_merged_model`` writes
MERGED_DIR_NAME = "merged"


def run_contrastive(
    argv: Sequence[str] | None = None, defaults: Mapping[str, Any] | None = None, hard_negatives: bool = True
) -> None:
    """Train from ``CONFIG.json [--key value ...]``; ``defaults`` fill keys the config does not set.

    ``hard_negatives=False`` trains on in-batch negatives only (the data need none: SimCSE).
    """
    model_args, data_args, stage_args, lora_settings, training_args = parse_config(
        STAGE_II_CONFIG_TYPES, argv, defaults=defaults
    )
    with claim_output_dir(training_args) as run:
        if run.finished:
            return
        set_seed(training_args.seed)
        model = LLM2VecContrastive.from_pretrained(
            model_args.model_name_or_path,
            peft_model_name_or_path=model_args.peft_model_name_or_path,
            merge_peft=True,
            **encoder_loading_kwargs(model_args),
            **({} if stage_args.simcse_dropout is None else {"attention_dropout": stage_args.simcse_dropout}),
        )
        model.loss_scale = stage_args.loss_scale
        model.gradient_cache_mini_batch_size = stage_args.gradient_cache_mini_batch_size
        if stage_args.full_parameter:
            model.train_full_parameters()
        else:
            model.add_lora(lora_settings)
        dataset = training_dataset(data_args, training_args, require_negatives=hard_negatives)
        train_and_save(model, dataset, training_args, run, with_negatives=hard_negatives, logged_outputs=("accuracy",))
        if stage_args.save_merged_model and training_args.should_save:
            if stage_args.full_parameter:
                logger.warning("save_merged_model: %s already holds the full model", training_args.output_dir)
            else:
                model.save(Path(training_args.output_dir) / MERGED_DIR_NAME, merge_before_save=True)
