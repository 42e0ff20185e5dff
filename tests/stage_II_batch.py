"""A seeded tiny Stage II encoder and a fixed batch of pairs, shared by the in-process model tests,
the gradient-cache tests and the two-process worker (``entry_points/distributed_stage_II_worker.py``),
plus the texts and checkpoint files the Stage II tests compare."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from llm2vec import LLM2Vec  # noqa: E402
from llm2vec.llm2vec_contrastive import LLM2VecContrastive, LoraSettings  # noqa: E402
from llm2vec.testing.tiny_data import make_pairs  # noqa: E402
from llm2vec.tokenization import SEPARATOR  # noqa: E402

UNION_SIZE = 8
LOSS_SCALE = 20.0
INSTRUCTION = "Given a question, retrieve passages that answer the question"
#: what a LoRA checkpoint folder of Stage II holds
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "llm2vec_config.json", "tokenizer_config.json")
TEXTS = [
    f"{INSTRUCTION}; {SEPARATOR}How does the tide affect the reef?",
    "The orbit of the comet crossed the galaxy near a bright star.",
    "A recipe with garlic, butter and flour simmered in the kitchen.",
]


def build_model(model_dir: str | Path) -> LLM2VecContrastive:
    """The tiny encoder in float32 with a seeded, random (B != 0) LoRA adapter, in eval mode."""
    model = LLM2VecContrastive.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="sdpa")
    model.loss_scale = LOSS_SCALE
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        model.add_lora(LoraSettings(lora_r=4, lora_dropout=0.0))
    # LoRA starts with B = 0, which would leave every A without gradient: give B small seeded
    # values (the scale of the base weights), so that every LoRA weight has a non-trivial gradient.
    generator = torch.Generator().manual_seed(4321)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if ".lora_B." in name:
                parameter.copy_(0.02 * torch.randn(parameter.shape, generator=generator))
    model.eval()  # no dropout anywhere: the comparison is deterministic
    return model


def features(model: LLM2VecContrastive, start: int, stop: int) -> dict[str, Any]:
    """Tokenized queries, positives and hard negatives of pairs ``start:stop`` of the fixed batch."""
    pairs = make_pairs(UNION_SIZE, seed=11, name="ddp")[start:stop]
    return {
        "q_features": model.tokenize([f"{INSTRUCTION}; {SEPARATOR}{p['query']}" for p in pairs]),
        "d_features": model.tokenize([SEPARATOR + p["positive"] for p in pairs]),
        "n_features": model.tokenize([SEPARATOR + p["negative"] for p in pairs]),
    }


def lora_gradients(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Gradients of the trainable parameters by name (without any DDP prefix)."""
    return {name: p.grad.detach().clone() for name, p in model.named_parameters() if p.requires_grad}


def encode(model: LLM2Vec, texts: list[str]) -> torch.Tensor:
    return model.encode(texts, batch_size=64, show_progress_bar=False)
