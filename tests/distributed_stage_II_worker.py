"""torchrun worker: one Stage II step under DDP (gloo, CPU) on this rank's share of a fixed batch.

    torchrun --nproc_per_node=2 tests/distributed_stage_II_worker.py MODEL_DIR OUTPUT_PREFIX

Every rank builds the same tiny encoder with a seeded LoRA adapter whose B is non-zero (so every
LoRA weight gets a gradient), wraps it in ``DistributedDataParallel``, computes the loss on
rows ``[rank * n, (rank + 1) * n)`` of the ``UNION_SIZE`` pairs and backpropagates. Each rank saves
its loss and its (DDP-averaged) LoRA gradients to ``OUTPUT_PREFIX.rank<r>.pt``.
``tests/test_stage_II.py`` compares them with one process that sees all ``UNION_SIZE`` pairs, using
``build_model`` and ``features`` of this module.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402

from llm2vec.llm2vec_contrastive import LLM2VecContrastive, LoraSettings  # noqa: E402
from llm2vec.tokenization import SEPARATOR  # noqa: E402
from llm2vec.testing.tiny_data import make_pairs  # noqa: E402

UNION_SIZE = 8
LOSS_SCALE = 20.0
INSTRUCTION = "Given a question, retrieve passages that answer the question"


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


def main(model_dir: str, output_prefix: str) -> None:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    if UNION_SIZE % world:
        raise SystemExit(f"world size {world} does not divide {UNION_SIZE}")
    model = build_model(model_dir)
    ddp = DistributedDataParallel(model)
    share = UNION_SIZE // world
    output = ddp(**features(model, rank * share, (rank + 1) * share))
    output.loss.backward()
    torch.save(
        {"world": world, "loss": output.loss.detach(), "accuracy": output.accuracy, "grads": lora_gradients(model)},
        f"{output_prefix}.rank{rank}.pt",
    )
    dist.barrier()
    dist.destroy_process_group()


if __name__ == "__main__":
    torch.set_num_threads(1)
    main(sys.argv[1], sys.argv[2])
