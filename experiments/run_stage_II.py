"""Stage II: contrastive fine-tuning with LoRA (InfoNCE, in-batch and hard negatives).

    python experiments/run_stage_II.py train_configs/stage_II/MetaLlama3.2_1b_stage1_2000steps_stage2.json
    torchrun --nproc_per_node=8 experiments/run_stage_II.py CONFIG.json [--key value ...]

``model_name_or_path`` is a Stage I output folder (Anchor) or the original hub model (Baseline);
``peft_model_name_or_path``, if given, is merged into it before the fresh LoRA adapter is added.
``output_dir`` and its ``checkpoint-N`` folders hold the adapter, the tokenizer and
``llm2vec_config.json``; load them with
``LLM2Vec.from_pretrained(model_name_or_path, peft_model_name_or_path=output_dir)``.
With ``save_merged_model: true`` the final model is also written with the adapter merged in to
``<output_dir>/merged`` (a plain model folder, loadable with ``LLM2Vec.from_pretrained`` alone).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

from transformers import set_seed

from llm2vec.llm2vec_contrastive import LLM2VecContrastive
from llm2vec.training.arguments import STAGE_II_CONFIG_TYPES
from llm2vec.training.config_parsing import parse_config
from llm2vec.training.run_folder import claim_output_dir
from llm2vec.training.setup_run import encoder_loading_kwargs, run_main, train_and_save, training_dataset

logger = logging.getLogger(__name__)

MERGED_DIR_NAME = "merged"


def main(argv: Sequence[str] | None = None) -> None:
    model_args, data_args, stage_args, lora_settings, training_args = parse_config(STAGE_II_CONFIG_TYPES, argv)
    with claim_output_dir(training_args) as run:
        if run.finished:
            return
        set_seed(training_args.seed)
        model = LLM2VecContrastive.from_pretrained(
            model_args.model_name_or_path,
            peft_model_name_or_path=model_args.peft_model_name_or_path,
            merge_peft=True,
            **encoder_loading_kwargs(model_args),
        )
        model.loss_scale = stage_args.loss_scale
        model.gradient_cache_mini_batch_size = stage_args.gradient_cache_mini_batch_size
        if stage_args.full_parameter:
            model.train_full_parameters()
        else:
            model.add_lora(lora_settings)
        dataset = training_dataset(data_args, training_args, require_negatives=True)
        train_and_save(model, dataset, training_args, run, with_negatives=True, logged_outputs=("accuracy",))
        if stage_args.save_merged_model and training_args.should_save:
            if stage_args.full_parameter:
                logger.warning("save_merged_model: %s already holds the full model", training_args.output_dir)
            else:
                model.save(Path(training_args.output_dir) / MERGED_DIR_NAME, merge_before_save=True)


if __name__ == "__main__":
    run_main(main)
