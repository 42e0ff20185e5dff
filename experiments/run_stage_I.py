"""Stage I: bidirectional reconstruction (EBQ2D + EBD2Q), full-parameter.

    python experiments/run_stage_I.py train_configs/stage_I/MetaLlama3.2_1b_q2d_d2q.json
    torchrun --nproc_per_node=8 experiments/run_stage_I.py CONFIG.json [--key value ...]
"""

from __future__ import annotations

from collections.abc import Sequence

from transformers import set_seed

from llm2vec import LLM2Vec_q2d_d2q
from llm2vec.training.arguments import STAGE_I_CONFIG_TYPES
from llm2vec.training.config_parsing import parse_config
from llm2vec.training.run_folder import claim_output_dir
from llm2vec.training.setup_run import encoder_loading_kwargs, run_main, train_and_save, training_dataset


def main(argv: Sequence[str] | None = None) -> None:
    model_args, data_args, stage_args, loss_computation, training_args = parse_config(STAGE_I_CONFIG_TYPES, argv)
    with claim_output_dir(training_args) as run:
        if run.finished:
            return
        set_seed(training_args.seed)
        model = LLM2Vec_q2d_d2q.from_pretrained(
            model_args.model_name_or_path,
            peft_model_name_or_path=model_args.peft_model_name_or_path,
            merge_peft=True,
            alpha=stage_args.alpha,
            release_compat=stage_args.release_compat,
            **encoder_loading_kwargs(model_args),
        )
        model.loss_computation = loss_computation
        # Stage I never uses hard negatives, so they are not required, tokenized or encoded.
        dataset = training_dataset(data_args, training_args, require_negatives=False)
        train_and_save(model, dataset, training_args, run, with_negatives=False, logged_outputs=("q2d_loss", "d2q_loss"))


if __name__ == "__main__":
    run_main(main)
