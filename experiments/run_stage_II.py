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

from collections.abc import Sequence

from llm2vec.training.contrastive_run import run_contrastive
from llm2vec.training.setup_run import run_main


def main(argv: Sequence[str] | None = None) -> None:
    run_contrastive(argv)


if __name__ == "__main__":
    run_main(main)
