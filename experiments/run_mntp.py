"""llm2vec's masked next-token prediction (MNTP): a LoRA adapter teaches the decoder bidirectional attention.

    python experiments/run_mntp.py train_configs/mntp/MetaLlama3.json
    torchrun --nproc_per_node=8 experiments/run_mntp.py CONFIG.json [--key value ...]

Texts (``dataset_name``: ``wikitext`` from the hub as llm2vec trains, or ``text``: UTF-8 files,
one text per line) are tokenized, concatenated and cut into blocks of ``max_seq_length``; a share
``mlm_probability`` of the tokens is masked and predicted from the position before each. The
output folder is laid out as McGill-NLP's MNTP repositories (adapter of the body, tokenizer,
``config.json``): continue with ``run_simcse.py`` or ``run_supervised.py``
(``peft_model_name_or_path`` = this folder), or embed with ``LLM2Vec.from_pretrained(output_dir)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import DataCollatorForLanguageModeling, set_seed

from llm2vec.dataset.text_blocks import TextBlocksDataset, load_mntp_texts
from llm2vec.llm2vec_mntp import LLM2VecMNTP
from llm2vec.training.arguments import MNTP_CONFIG_TYPES
from llm2vec.training.config_parsing import ConfigError, parse_config
from llm2vec.training.run_folder import claim_output_dir
from llm2vec.training.setup_run import run_main, train_and_save, weights_loading_kwargs

#: llm2vec's run_mntp.py defaults where they differ from this project's
LLM2VEC_MNTP_DEFAULTS = {"dataset_name": "wikitext", "lora_r": 8, "bidirectional": True}


def main(argv: Sequence[str] | None = None) -> None:
    model_args, data_args, mntp_args, lora_settings, training_args = parse_config(
        MNTP_CONFIG_TYPES, argv, defaults=LLM2VEC_MNTP_DEFAULTS)
    if not model_args.bidirectional or model_args.peft_model_name_or_path is not None:
        raise ConfigError("MNTP trains a bidirectional model from a base model: set bidirectional true and "
                          "leave out peft_model_name_or_path")
    if data_args.dataset_files is not None or data_args.default_instruction is not None:
        raise ConfigError("dataset_files and default_instruction apply to pair datasets, not to MNTP's texts")
    with claim_output_dir(training_args) as run:
        if run.finished:
            return
        set_seed(training_args.seed)
        model = LLM2VecMNTP.from_pretrained(model_args.model_name_or_path, mntp_args.mask_token_type,
                                            **weights_loading_kwargs(model_args))
        model.add_lora(lora_settings)
        texts = load_mntp_texts(data_args.dataset_name, data_args.dataset_file_path, mntp_args.dataset_config_name)
        dataset = TextBlocksDataset(texts, model.tokenizer, model_args.max_seq_length, seed=training_args.seed)
        all_mask = mntp_args.data_collator_type == "all_mask"
        collator = DataCollatorForLanguageModeling(
            model.tokenizer, mlm_probability=mntp_args.mlm_probability,
            mask_replace_prob=1.0 if all_mask else 0.8, random_replace_prob=0.0 if all_mask else 0.1,
        )
        train_and_save(model, dataset, training_args, run, data_collator=collator)


if __name__ == "__main__":
    run_main(main)
