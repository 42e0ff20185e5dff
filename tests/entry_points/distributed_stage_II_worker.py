"""torchrun worker: one Stage II step under DDP (gloo, CPU) on this rank's share of a fixed batch.

    PYTHONPATH=. torchrun --nproc_per_node=2 tests/entry_points/distributed_stage_II_worker.py MODEL_DIR OUTPUT_PREFIX

Every rank builds the same tiny encoder with a seeded LoRA adapter whose B is non-zero (so every
LoRA weight gets a gradient; ``tests/stage_II_batch.py``), wraps it in ``DistributedDataParallel``,
computes the loss on rows ``[rank * n, (rank + 1) * n)`` of the ``UNION_SIZE`` pairs and
backpropagates. Each rank saves its loss and its (DDP-averaged) LoRA gradients to
``OUTPUT_PREFIX.rank<r>.pt``. ``test_distributed_stage_II.py`` compares them with one process that
sees all ``UNION_SIZE`` pairs.
"""

from __future__ import annotations

import sys

import torch

from tests.stage_II_batch import UNION_SIZE, build_model, features, lora_gradients


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
