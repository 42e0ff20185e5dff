"""llm2vec's supervised recipe: contrastive LoRA training on the E5 mixture, on this project's Stage II engine.

    python experiments/run_supervised.py train_configs/supervised/MetaLlama3.json
    torchrun --nproc_per_node=8 experiments/run_supervised.py CONFIG.json [--key value ...]

The same run as ``run_stage_II.py`` with llm2vec's defaults for the keys a config leaves out: mean
pooling, LoRA rank 8, llm2vec's tokenization (docs/llm2vec_compat.md). llm2vec's own configs
(``bidirectional: true``, ``peft_model_name_or_path`` = the MNTP adapter, which is merged before the
fresh adapter is added) run unchanged. Load the result with
``LLM2Vec.from_pretrained(mntp, peft_model_name_or_path=output_dir)``, as llm2vec's.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm2vec.training.contrastive_run import run_contrastive
from llm2vec.training.setup_run import run_main

#: llm2vec's run_supervised.py defaults where they differ from this project's Stage II
LLM2VEC_SUPERVISED_DEFAULTS = {"pooling_mode": "mean", "lora_r": 8, "tokenization": "llm2vec"}


def main(argv: Sequence[str] | None = None) -> None:
    run_contrastive(argv, defaults=LLM2VEC_SUPERVISED_DEFAULTS)


if __name__ == "__main__":
    run_main(main)
