"""Per-GPU memory estimates of both training stages for the paper's five models (docs/memory.md).

    python scripts/estimate_memory.py               # the tables of docs/memory.md (markdown)
    python scripts/estimate_memory.py --json        # every term of every estimate

Everything is computed from the models' architectures (listed below, from their config.json on the
Hugging Face Hub) and from the training configs in train_configs/ (per-device batch, accumulation,
max_seq_length, ce_chunk_size), so the numbers follow the configs. Sizes are GiB (2**30 bytes).

The estimates are upper bounds for the worst micro-batch: every text at max_seq_length tokens (512).
Typical E5 micro-batches are several times shorter; a run must still survive its longest batch.
Terms that peak at different moments (the cross-entropy at the end of the forward, the layer
recomputation in the backward) are added, which makes the totals conservative.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GIB = 2**30
TOTAL_BATCH = 512
CARDS_GIB = (80, 40, 24)
#: share of a card usable by tensors (CUDA context, NCCL buffers, allocator fragmentation take the rest)
USABLE_FRACTION = 0.9
#: DeepSpeed's stage3_max_live_parameters in launch/deepspeed/zero3.json (gathered parameters kept)
ZERO3_MAX_LIVE_PARAMETERS = 1_000_000_000
ZERO3_REDUCE_BUCKET = 16_777_216
#: rows of a cross-entropy chunk whose float32 logits the fused implementation processes at once
#: (llm2vec.loss.fused_cross_entropy.DEFAULT_ROW_BLOCK; a test keeps the constants equal)
FUSED_ROW_BLOCK = 256
#: vocabulary rows per weight-gradient product (llm2vec.loss.fused_cross_entropy.WEIGHT_GRADIENT_SLICE)
WEIGHT_GRADIENT_SLICE = 16_384
LORA_R = 16
LORA_TARGETS = ("q", "k", "v", "o", "gate", "up", "down")


@dataclass(frozen=True)
class Architecture:
    """The shape of a decoder-only model (from its config.json)."""

    name: str
    stage_I_config: str
    stage_II_config: str
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied_embeddings: bool
    qkv_bias: bool
    published_parameters: int  # the count the model card / safetensors metadata gives

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def layer_parameters(self) -> int:
        h, kv, i = self.hidden, self.kv_width, self.intermediate
        q_width = self.heads * self.head_dim
        attention = h * q_width + 2 * h * kv + q_width * h
        if self.qkv_bias:
            attention += q_width + 2 * kv
        return attention + 3 * h * i + 2 * h  # MLP (gate, up, down) and two RMSNorms

    @property
    def embedding_parameters(self) -> int:
        return self.vocab * self.hidden

    @property
    def head_parameters(self) -> int:
        """lm_head parameters stored apart from the input embeddings (0 when tied)."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    @property
    def parameters(self) -> int:
        return self.embedding_parameters + self.head_parameters + self.layers * self.layer_parameters + self.hidden

    @property
    def lora_parameters(self) -> int:
        """LoRA r=16 on q/k/v/o/gate/up/down of every layer: r * (in + out) per module."""
        h, kv, i, q = self.hidden, self.kv_width, self.intermediate, self.heads * self.head_dim
        shapes = {"q": (h, q), "k": (h, kv), "v": (h, kv), "o": (q, h), "gate": (h, i), "up": (h, i), "down": (i, h)}
        return self.layers * sum(LORA_R * (a + b) for a, b in (shapes[t] for t in LORA_TARGETS))

    def layer_activation_bytes(self) -> int:
        """Bytes per token that one decoder layer's forward keeps for its backward (bf16, flash
        attention): input, normed input, q and rotated q, attention output, residual sum and the
        second normed input (8h); k, v and rotated k (3 kv); gate, up, silu(gate), product (4i); plus
        the two RMSNorms' float32 inputs (2 x 4h bytes)."""
        return 2 * (8 * self.hidden + 3 * self.kv_width + 4 * self.intermediate) + 8 * self.hidden


MODELS = (
    Architecture("Llama-3.2-1B", "MetaLlama3.2_1b_q2d_d2q.json", "MetaLlama3.2_1b_stage1_2000steps_stage2.json",
                 hidden=2048, layers=16, intermediate=8192, heads=32, kv_heads=8, head_dim=64, vocab=128_256,
                 tied_embeddings=True, qkv_bias=False, published_parameters=1_235_814_400),
    Architecture("Qwen2.5-1.5B", "Qwen2.5_1.5b_q2d_d2q.json", "Qwen2.5_1.5b_stage1_2000steps_stage2.json",
                 hidden=1536, layers=28, intermediate=8960, heads=12, kv_heads=2, head_dim=128, vocab=151_936,
                 tied_embeddings=True, qkv_bias=True, published_parameters=1_543_714_304),
    Architecture("Llama-3.2-3B", "MetaLlama3.2_3b_q2d_d2q.json", "MetaLlama3.2_3b_stage1_2000steps_stage2.json",
                 hidden=3072, layers=28, intermediate=8192, heads=24, kv_heads=8, head_dim=128, vocab=128_256,
                 tied_embeddings=True, qkv_bias=False, published_parameters=3_212_749_824),
    Architecture("Mistral-7B", "Mistral_7b_q2d_d2q.json", "Mistral_7b_stage1_2000steps_stage2.json",
                 hidden=4096, layers=32, intermediate=14336, heads=32, kv_heads=8, head_dim=128, vocab=32_000,
                 tied_embeddings=False, qkv_bias=False, published_parameters=7_241_732_096),
    Architecture("Llama-3.1-8B", "MetaLlama3.1_8b_q2d_d2q.json", "MetaLlama3.1_8b_stage1_2000steps_stage2.json",
                 hidden=4096, layers=32, intermediate=14336, heads=32, kv_heads=8, head_dim=128, vocab=128_256,
                 tied_embeddings=False, qkv_bias=False, published_parameters=8_030_261_248),
)


def load_config(folder: str, name: str) -> dict:
    path = REPO / "train_configs" / folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the estimates read the batch split from the configs")
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------- Stage I
def stage_one(model: Architecture, strategy: str, per_device: int, world: int, seq: int = 512,
              chunk: int | None = 4096) -> dict[str, float]:
    """Bytes per GPU of full-parameter Stage I with AdamW, activation checkpointing, packing.

    strategy: "ddp" (weights, gradients and AdamW state in bfloat16, the configs' torch_dtype, plus
    DDP's gradient buckets), "zero3" (DeepSpeed bf16: 2 + 2 + 12 bytes per parameter, sharded) or
    "fsdp2" (accelerate upcasts the shards to float32 master weights: 4 + 4 + 8 bytes, sharded).
    """
    n = model.parameters
    terms: dict[str, float] = {}
    if strategy == "ddp":
        terms["weights"] = 2 * n
        terms["gradients"] = 2 * n
        terms["optimizer"] = 4 * n  # exp_avg, exp_avg_sq in the parameters' dtype
        terms["comm_buffers"] = 2 * n  # DDP buckets (gradient_as_bucket_view off)
        terms["gathered"] = 0
    elif strategy == "zero3":
        terms["weights"] = 2 * n / world
        terms["gradients"] = 2 * n / world
        terms["optimizer"] = 12 * n / world  # float32 master, exp_avg, exp_avg_sq
        terms["comm_buffers"] = 2 * 2 * ZERO3_REDUCE_BUCKET
        terms["gathered"] = 2 * min(ZERO3_MAX_LIVE_PARAMETERS, n)
    elif strategy == "fsdp2":
        terms["weights"] = 4 * n / world
        terms["gradients"] = 4 * n / world
        terms["optimizer"] = 8 * n / world
        terms["comm_buffers"] = 0
        # The root unit (embeddings, final norm, lm_head) stays gathered from forward to backward
        # (bf16 parameters and, in backward, gradients); two layer units are gathered at a time
        # (current and prefetched), one layer's unsharded bf16 gradients.
        root = model.embedding_parameters + model.head_parameters + model.hidden
        terms["gathered"] = 2 * 2 * root + 2 * 2 * model.layer_parameters + 2 * model.layer_parameters
    else:
        raise ValueError(f"unknown strategy {strategy!r}")

    # Packed micro-batch: one encoder pass over all queries and documents (<= 2 * seq tokens per
    # pair) and one decoder pass of the same length (both directions, anchors instead of EOS).
    tokens = per_device * 2 * seq
    terms.update(activation_terms(model, (tokens, tokens)))
    terms["cross_entropy"] = cross_entropy_bytes(model, tokens, chunk, fused=strategy != "zero3")
    terms["total"] = sum(terms.values())
    return terms


def activation_terms(model: Architecture, pass_tokens: tuple[int, ...]) -> dict[str, float]:
    """Activation checkpointing over passes of the given token counts: every layer's input of every
    pass is kept, and the backward recomputes one layer of one pass at a time (the largest)."""
    return {
        "checkpoints": model.layers * sum(pass_tokens) * model.hidden * 2,
        "layer_recompute": max(pass_tokens) * model.layer_activation_bytes(),
    }


def release_stage_one(model: Architecture, per_device: int, world: int, seq: int = 512) -> dict[str, float]:
    """Bytes per GPU of the release's Stage I: DDP with its bf16 state, activation checkpointing and
    flash attention as its configs set them, four padded passes (two encoder passes of ``seq``
    positions, two decoder passes of ``seq + 1``) and the full bf16 logits of
    :func:`release_logits_bytes` instead of a chunked cross-entropy."""
    terms = stage_one(model, "ddp", per_device, world, seq)
    terms.update(activation_terms(model, (per_device * seq,) * 2 + (per_device * (seq + 1),) * 2))
    terms["cross_entropy"] = release_logits_bytes(model, per_device, seq)
    terms["total"] = sum(v for k, v in terms.items() if k != "total")
    return terms


def one_process_step(
    model: Architecture, query_lengths: list[int], document_lengths: list[int], release: bool,
    chunk: int | None = 4096,
) -> dict[str, float]:
    """Bytes one bf16 training step needs on one process beyond the weights and AdamW's moments,
    with activation checkpointing, for a micro-batch of the given token lengths: the gradients, the
    activations and the cross-entropy (ours) or the logits (the release, padded to the longest text).
    The small-scale check of this memory model: ``benchmarks/bench_stage_I.py`` prints it beside
    the measured figures of its ``release_ckpt``, ``ours_ckpt`` and ``ours_lean`` variants."""
    rows = len(query_lengths)
    terms: dict[str, float] = {"gradients": 2 * model.parameters}
    if release:
        longest_query, longest_document = max(query_lengths), max(document_lengths)
        passes = (rows * longest_query, rows * longest_document, rows * (longest_query + 1), rows * (longest_document + 1))
        terms.update(activation_terms(model, passes))
        # D2Q runs first: its logits and log-softmax are alive while Q2D's three tensors are made.
        terms["cross_entropy"] = release_logits_peak(model, rows * (longest_query + 1), rows * (longest_document + 1))
    else:
        tokens = sum(query_lengths) + sum(document_lengths)
        terms.update(activation_terms(model, (tokens, tokens)))
        terms["cross_entropy"] = cross_entropy_bytes(model, tokens - 2 * rows, chunk, fused=True)
    terms["total"] = sum(terms.values())
    return terms


def largest_micro_batch(estimate, card_gib: int, limit: int = 256) -> int:
    """The largest power-of-two per-device batch whose estimate fits the card (0: none)."""
    best, per_device = 0, 1
    while per_device <= limit and estimate(per_device)["total"] <= USABLE_FRACTION * card_gib * GIB:
        best, per_device = per_device, per_device * 2
    return best


def micro_batch_rows(world: int = 8) -> list[dict]:
    """Largest Stage I micro-batch per card: the release (DDP) against ours (DDP and FSDP2)."""
    rows = []
    for model in MODELS:
        estimates = {
            "release": lambda b, m=model: release_stage_one(m, b, world),
            "ddp": lambda b, m=model: stage_one(m, "ddp", b, world),
            "fsdp2": lambda b, m=model: stage_one(m, "fsdp2", b, world),
        }
        rows.append({"model": model.name, "fits": {
            card: {name: largest_micro_batch(estimate, card) for name, estimate in estimates.items()}
            for card in CARDS_GIB
        }})
    return rows


def cross_entropy_bytes(model: Architecture, targets: int, chunk: int | None, fused: bool) -> float:
    """Our label-only cross-entropy: logits of ``chunk`` target positions at a time (all with None).

    fused (plain lm_head: DDP, FSDP2): bf16 logits buffer of the chunk, float32 blocks of
    FUSED_ROW_BLOCK rows, the hidden gradient and the bf16 weight gradient; with several chunks
    also its float32 accumulator and the bf16 product of one vocabulary slice.
    chunked (ZeRO-3, whose hooks gather the head): bf16 and float32 logits of the chunk and the
    float32 softmax gradient when the chunk is recomputed in backward.
    """
    rows = targets if chunk is None else min(chunk, targets)
    v, h = model.vocab, model.hidden
    if fused:
        weight_gradient = v * h * 2
        if rows < targets:
            weight_gradient += v * h * 4 + min(WEIGHT_GRADIENT_SLICE, v) * h * 2
        return rows * v * 2 + min(FUSED_ROW_BLOCK, rows) * v * 4 + weight_gradient + targets * h * 2
    return rows * v * (2 + 4 + 4)


def release_logits_bytes(model: Architecture, per_device: int, seq: int = 512) -> float:
    """The release's logits at the peak of its loss: batch x (seq + 1) x vocab entries per direction,
    all bf16 (its trainer applies ``lm_head`` to the body's bf16 output and never upcasts): five
    tensors of one direction's size (:func:`release_logits_peak` with equal directions)."""
    positions = per_device * (seq + 1)
    return release_logits_peak(model, positions, positions)


def release_logits_peak(model: Architecture, first_positions: int, second_positions: int) -> float:
    """Bytes of bf16 logits alive at the peak of the release's loss, given the (padded) positions of
    the first (D2Q) and second (Q2D) direction's decoder pass. During the second direction's
    forward: the first direction's logits (``d2q_logits``, a local of the trainer's ``compute_loss``
    until it returns) and log-softmax (kept for the backward), then the second direction's logits,
    its shifted ``.contiguous()`` copy and its log-softmax."""
    return (2 * first_positions + 3 * second_positions) * model.vocab * 2


# ---------------------------------------------------------------------------- Stage II
def stage_two(model: Architecture, per_device: int, world: int, seq: int = 512) -> dict[str, float]:
    """Bytes per GPU of Stage II: LoRA r16 (float32 adapters, AdamW), frozen bf16 base, DDP,
    activation checkpointing, three padded encoder passes (queries, positives, hard negatives)."""
    n, lora = model.parameters, model.lora_parameters
    del world  # DDP: nothing is sharded
    terms: dict[str, float] = {
        "weights": 2 * n + 4 * lora,
        "gradients": 4 * lora,
        "optimizer": 8 * lora,
        "comm_buffers": 4 * lora,
        "gathered": 0,
    }
    tokens = per_device * seq  # one pass
    terms["checkpoints"] = 3 * model.layers * tokens * model.hidden * 2
    # One layer's recompute, plus each LoRA module's float32 copy of its dropped-out input and mask.
    lora_inputs = 6 * model.hidden + model.intermediate
    terms["layer_recompute"] = tokens * (model.layer_activation_bytes() + lora_inputs * (4 + 1))
    terms["cross_entropy"] = 0  # no vocabulary projection in Stage II
    terms["total"] = sum(terms.values())
    return terms


# ---------------------------------------------------------------------------- fitting
def best_split(estimate, card_gib: int, world: int, start: int) -> tuple[int, int] | None:
    """The config's per-device batch ``start`` if its estimate fits the card, else the largest
    halving of it that does, with the accumulation that keeps TOTAL_BATCH; None if even 1 does
    not fit."""
    per_device = start
    while per_device >= 1:
        divides = TOTAL_BATCH % (per_device * world) == 0
        if divides and estimate(per_device)["total"] <= USABLE_FRACTION * card_gib * GIB:
            return per_device, TOTAL_BATCH // (per_device * world)
        per_device //= 2
    return None


def _gib(value: float) -> str:
    return f"{value / GIB:.1f}"


def _split(split: tuple[int, int] | None) -> str:
    return "—" if split is None else f"{split[0]} × {split[1]}"


def stage_one_rows(world: int = 8) -> list[dict]:
    rows = []
    for model in MODELS:
        config = load_config("stage_I", model.stage_I_config)
        per_device, seq = config["per_device_train_batch_size"], config["max_seq_length"]
        chunk = config["ce_chunk_size"]
        for strategy in ("ddp", "zero3", "fsdp2"):
            def estimate(b: int, s: str = strategy, m: Architecture = model) -> dict[str, float]:
                return stage_one(m, s, b, world, seq, chunk)

            terms = estimate(per_device)
            rows.append({
                "model": model.name, "parameters": model.parameters, "strategy": strategy, "world": world,
                "per_device": per_device, "accumulation": config["gradient_accumulation_steps"], "terms": terms,
                "unchunked_cross_entropy": cross_entropy_bytes(model, per_device * 2 * seq, None, strategy != "zero3"),
                "release_logits": release_logits_bytes(model, per_device, seq),
                "fits": {card: best_split(estimate, card, world, per_device) for card in CARDS_GIB},
            })
    return rows


def stage_two_rows(worlds: tuple[int, ...] = (8, 1)) -> list[dict]:
    rows = []
    for model in MODELS:
        config = load_config("stage_II", model.stage_II_config)
        per_device, seq = config["per_device_train_batch_size"], config["max_seq_length"]
        for world in worlds:
            def estimate(b: int, w: int = world, m: Architecture = model) -> dict[str, float]:
                return stage_two(m, b, w, seq)

            rows.append({
                "model": model.name, "lora_parameters": model.lora_parameters, "strategy": "ddp", "world": world,
                "per_device": per_device, "accumulation": config["gradient_accumulation_steps"],
                "terms": estimate(per_device),
                "fits": {card: best_split(estimate, card, world, per_device) for card in CARDS_GIB},
            })
    return rows


def stage_one_single_gpu_rows() -> list[dict]:
    """One GPU, DDP-like (no sharding): which per-device split keeps 512 on one card."""
    rows = []
    for model in MODELS:
        config = load_config("stage_I", model.stage_I_config)
        seq, chunk = config["max_seq_length"], config["ce_chunk_size"]

        def estimate(b: int, m: Architecture = model) -> dict[str, float]:
            terms = stage_one(m, "ddp", b, 1, seq, chunk)
            terms["total"] -= terms["comm_buffers"]  # no DDP wrapper on one process
            return terms

        start = config["per_device_train_batch_size"]
        rows.append({"model": model.name, "fits": {card: best_split(estimate, card, 1, start) for card in CARDS_GIB}})
    return rows


# ---------------------------------------------------------------------------- output
STRATEGY_NAMES = {"ddp": "DDP", "zero3": "ZeRO-3", "fsdp2": "FSDP2"}


def markdown() -> str:
    out = []
    out.append("Parameters (computed from the architectures; they equal the published counts):\n")
    out.append("| model | parameters | hidden | layers | intermediate | KV heads × dim | vocabulary | tied head "
               "| LoRA r16 parameters |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for m in MODELS:
        out.append(f"| {m.name} | {m.parameters:,} | {m.hidden} | {m.layers} | {m.intermediate} | "
                   f"{m.kv_heads} × {m.head_dim} | {m.vocab:,} | {'yes' if m.tied_embeddings else 'no'} | "
                   f"{m.lora_parameters:,} |")

    out.append("\nStage I, full-parameter AdamW, 8 GPUs, the configs' per-device batch, worst case (all texts "
               "512 tokens), GiB per GPU:\n")
    out.append("| model | strategy | config | weights + grads + AdamW | buffers + gathered | checkpoints "
               "| layer recompute | cross-entropy (chunk 4096) | **total** | cross-entropy unchunked "
               "| release logits (≥) | 80 GB | 40 GB | 24 GB |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in stage_one_rows():
        t = row["terms"]
        out.append(
            f"| {row['model']} | {STRATEGY_NAMES[row['strategy']]} | {row['per_device']} × {row['accumulation']} | "
            f"{_gib(t['weights'] + t['gradients'] + t['optimizer'])} | {_gib(t['comm_buffers'] + t['gathered'])} | "
            f"{_gib(t['checkpoints'])} | {_gib(t['layer_recompute'])} | {_gib(t['cross_entropy'])} | "
            f"**{_gib(t['total'])}** | {_gib(row['unchunked_cross_entropy'])} | {_gib(row['release_logits'])} | "
            + " | ".join(_split(row["fits"][card]) for card in CARDS_GIB) + " |"
        )

    out.append("\nLargest Stage I micro-batch (pairs per GPU, powers of two, worst case, 8 GPUs): the release "
               "(DDP, full bf16 logits, padded passes) against ours (DDP; FSDP2):\n")
    out.append("| model | " + " | ".join(f"{card} GB release / ours DDP / ours FSDP2" for card in CARDS_GIB) + " |")
    out.append("| --- |" + " --- |" * len(CARDS_GIB))
    for row in micro_batch_rows():
        cells = [" / ".join(str(row["fits"][card][k] or "—") for k in ("release", "ddp", "fsdp2")) for card in CARDS_GIB]
        out.append(f"| {row['model']} | " + " | ".join(cells) + " |")

    out.append("\nStage I on one GPU (no sharding), per device × accumulation for a total of 512 (config's "
               "per-device batch or less):\n")
    out.append("| model | 80 GB | 40 GB | 24 GB |")
    out.append("| --- | --- | --- | --- |")
    for row in stage_one_single_gpu_rows():
        out.append(f"| {row['model']} | " + " | ".join(_split(row["fits"][c]) for c in CARDS_GIB) + " |")

    out.append("\nStage II, LoRA r16, DDP, the configs' per-device batch (64), worst case, GiB per GPU:\n")
    out.append("| model | GPUs | config | weights + LoRA state | checkpoints | layer recompute | **total** "
               "| 80 GB | 40 GB | 24 GB |")
    out.append("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for row in stage_two_rows():
        t = row["terms"]
        out.append(
            f"| {row['model']} | {row['world']} | "
            f"{row['per_device']} × {TOTAL_BATCH // (row['per_device'] * row['world'])} | "
            f"{_gib(t['weights'] + t['gradients'] + t['optimizer'] + t['comm_buffers'])} | {_gib(t['checkpoints'])} | "
            f"{_gib(t['layer_recompute'])} | **{_gib(t['total'])}** | "
            + " | ".join(_split(row["fits"][card]) for card in CARDS_GIB) + " |"
        )
    return "\n".join(out)


def check_parameter_counts() -> None:
    for model in MODELS:
        if model.parameters != model.published_parameters:
            raise AssertionError(
                f"{model.name}: computed {model.parameters:,}, published {model.published_parameters:,}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print every term as JSON instead of the tables")
    args = parser.parse_args()
    check_parameter_counts()
    if args.json:
        print(json.dumps({
            "models": [asdict(m) | {"parameters": m.parameters, "lora_parameters": m.lora_parameters} for m in MODELS],
            "stage_I_8_gpus": stage_one_rows(),
            "stage_I_1_gpu": stage_one_single_gpu_rows(),
            "stage_II": stage_two_rows(),
        }, indent=1, default=str))
    else:
        print(markdown())


if __name__ == "__main__":
    main()
