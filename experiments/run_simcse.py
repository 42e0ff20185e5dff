"""llm2vec's unsupervised SimCSE recipe on this project's contrastive engine.

    python experiments/run_simcse.py train_configs/simcse/MetaLlama3.json
    torchrun --nproc_per_node=8 experiments/run_simcse.py CONFIG.json [--key value ...]

Each sentence of a text file (``dataset_name: "Wiki1M"`` or ``"text"``, one sentence per line) is
encoded twice; attention dropout (``simcse_dropout``) makes the two encodings differ, and the loss
pulls them together against the other sentences of the batch (no hard negatives). A fresh LoRA
adapter is trained on top of the model with ``peft_model_name_or_path`` (the MNTP adapter) merged in.
Keys a config leaves out take llm2vec's defaults: mean pooling, LoRA rank 8, attention dropout
0.1, llm2vec's tokenization. Load the result with
``LLM2Vec.from_pretrained(mntp, peft_model_name_or_path=output_dir)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from llm2vec.training.contrastive_run import run_contrastive
from llm2vec.training.setup_run import run_main

#: llm2vec's run_simcse.py defaults where they differ from this project's Stage II
LLM2VEC_SIMCSE_DEFAULTS = {
    "pooling_mode": "mean", "lora_r": 8, "simcse_dropout": 0.1, "tokenization": "llm2vec", "dataset_name": "Wiki1M",
}


def main(argv: Sequence[str] | None = None) -> None:
    run_contrastive(argv, defaults=LLM2VEC_SIMCSE_DEFAULTS, hard_negatives=False)


if __name__ == "__main__":
    run_main(main)
