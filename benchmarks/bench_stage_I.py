#!/usr/bin/env python
"""Stage I optimizer step: the released computation vs this implementation (GitHub issue 6).

Model: a random Llama with Llama-3's vocabulary (128,256), hidden 256, 4 layers, 8 query / 4 KV
heads, intermediate 1024, untied lm_head, sdpa attention. Batch: 8 queries of 18..55 tokens and 8
documents of 140..512 tokens (lengths evenly spaced over the ranges; BOS first, EOS last, random
ids in between), left-padded with the EOS id like the release. One step = forward + backward +
AdamW, ``torch.set_num_threads(--threads)``.

``release`` is the released computation, written out here (not imported from the library): two
padded encoder passes with default positions, anchor = last position; per direction a padded
decoder pass over ``[anchor ; counterpart]`` with the anchor before the padding and mask
``[1 ; embed_mask]``, ``lm_head`` on the body's output for every position in the model's dtype
(nothing upcasts them) and held until the loss returns, the shifted contiguous copy, and
``CrossEntropyLoss`` with every EOS-id label ignored: the trainer's ``compute_loss`` in the
release's ``experiments/run_stage_I.py`` (lines 305-389 at 2bd7b9b, the same at 470b9b8).
``ours`` is ``LLM2Vec_q2d_d2q`` with its defaults except ``ce_chunk_size`` 1024 (the configs'
4096 would hold all 2,884 targets of this batch in one chunk). The other variants are the ablation
steps between the two (see ``VARIANTS``), ``ours_lean`` (activation checkpointing and chunks of
256: what a user short of memory sets), and ``release_ckpt``/``ours_ckpt`` with activation
checkpointing as the paper configs train, against which the memory model of
``scripts/estimate_memory.py`` is checked (printed beside their measured memory).

Measured in the same run:
* step time: variants run round-robin (one step each per round, so that a change of machine load
  hits all of them alike), ``--warmup`` rounds discarded, median of ``--steps`` rounds (the minimum
  and the process CPU time are printed too). The machine may be shared: before each step the
  script waits (``--wait-idle``) until other processes leave the CPU idle, and it prints how many
  cores other processes used during each step (from /proc/stat) so that disturbed steps show;
* memory, steady state: every variant in a fresh subprocess builds the model, batch and optimizer
  and runs one warm-up step (which allocates AdamW's state); then baseline = VmRSS, VmHWM is reset
  (``/proc/self/clear_refs`` = 5) and a second step runs. Printed: the step's memory beyond the
  state it started from (VmHWM - baseline), the whole process's peak (VmHWM over both steps) and
  the bytes of weights plus AdamW moments, the share of the process peak no layout can shed
  (Linux only);
* losses of ``release`` and ``ours`` on an unpadded batch (all queries 40 tokens, all documents
  300): with no padding the two computations are the same function (float32: within 1e-5);
* matmul FLOPs per step (useful work: encoder and decoder linear layers and causal attention
  on real tokens, lm_head at target positions; x3 for forward + backward), the FLOPs each variant
  actually executes, achieved FLOP/s, and the fraction of this machine's matmul peak (the best of
  a few 4096^3 ``torch.matmul`` in the same dtype, measured in the same run).

    python benchmarks/bench_stage_I.py                        # bf16 and fp32, all variants
    python benchmarks/bench_stage_I.py --dtypes bfloat16 --variants release,ours --steps 3
    python benchmarks/bench_stage_I.py --report benchmarks/results/stage_I_cpu.json   # shares again

With every variant measured, each technique's share of the gain is printed: its factor over the
previous variant in ``LADDER`` and that factor's share of log(release / ours).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# OpenMP threads that spin while waiting for each other stall at every barrier when another
# process takes one of the two cores (seen here: 3-5x slower steps). Sleeping waits cost little on
# an idle machine. Set before torch loads OpenMP; OMP_WAIT_POLICY=ACTIVE in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from machine import matmul_peak  # noqa: E402  (this folder, next to the script)

VOCAB, HIDDEN, LAYERS, HEADS, KV_HEADS, INTERMEDIATE = 128_256, 256, 4, 8, 4, 1024
ALPHA = 0.2
IGNORE = -100


@dataclass(frozen=True)
class Variant:
    name: str
    description: str
    packing: bool = True
    ce_implementation: str = "auto"
    ce_chunk_size: int | None = 1024
    # transformers' block-diagonal T x T mask on packed rows instead of the library's per-sample SDPA
    block_mask: bool = False
    # activation checkpointing of every decoder layer (the paper configs' ``activation_checkpointing``)
    checkpointing: bool = False
    # the released computation (``released_loss``) instead of ``LLM2Vec_q2d_d2q``
    release: bool = False


#: the release, then one technique added at a time, ending at the library's defaults
VARIANTS: dict[str, Variant] = {
    "release": Variant("release", "the released compute_loss, written out", packing=False, release=True),
    "label_only": Variant(
        "label_only", "padded passes, logits only at target positions (one piece, no float copy of all logits)",
        packing=False, ce_implementation="chunked", ce_chunk_size=None,
    ),
    "chunked": Variant(
        "chunked", "+ CE in checkpointed chunks of 1024 positions (logits recomputed in backward)",
        packing=False, ce_implementation="chunked",
    ),
    "fused": Variant(
        "fused", "+ fused CE: gradient computed in forward chunk by chunk, no recomputation",
        packing=False, ce_implementation="fused",
    ),
    "packed_mask": Variant(
        "packed_mask", "+ packing, attention kept per sample by transformers' block-diagonal T x T mask",
        block_mask=True,
    ),
    "ours": Variant(
        "ours", "+ packing with per-sample (varlen) sdpa: the library defaults (ce_chunk_size 1024, see below)"
    ),
    "ours_chunked": Variant(
        "ours_chunked", "ours with the checkpointed chunked CE instead of the fused one", ce_implementation="chunked",
    ),
    # With activation checkpointing, as every paper config trains (the release's configs too): the
    # memory model of scripts/estimate_memory.py describes these two, and is checked against them.
    "release_ckpt": Variant(
        "release_ckpt", "the release with activation checkpointing", packing=False, release=True, checkpointing=True,
    ),
    "ours_ckpt": Variant("ours_ckpt", "ours with activation checkpointing", checkpointing=True),
    # What a user short of memory sets: checkpointing and smaller cross-entropy chunks.
    "ours_lean": Variant(
        "ours_lean", "ours with activation checkpointing and ce_chunk_size 256", checkpointing=True, ce_chunk_size=256,
    ),
}


#: the variants that add one technique each, in order: each one's share of the total gain is its
#: step's factor on a log scale (the factors multiply to the total release / ours ratio)
LADDER = ("release", "label_only", "chunked", "fused", "packed_mask", "ours")


def gain_shares(rows: dict[str, dict], key: str, smaller_is_better: bool = True) -> list[tuple[str, float, float]]:
    """``(variant, factor over the previous rung, share of the total log gain)`` along ``LADDER``.

    ``key`` is a per-variant figure (median step seconds or peak MB); a factor above 1 is a gain.
    Empty when a rung is missing.
    """
    import math

    if not all(name in rows and rows[name].get(key) for name in LADDER):
        return []
    values = [float(rows[name][key]) for name in LADDER]
    factors = [(a / b if smaller_is_better else b / a) for a, b in zip(values, values[1:])]
    total = sum(math.log(f) for f in factors)
    return [(name, f, math.log(f) / total if total else float("nan")) for name, f in zip(LADDER[1:], factors)]


def print_gain_shares(dtype_name: str, rows: dict[str, dict]) -> None:
    time_shares = gain_shares(rows, "step_seconds_median")
    memory_shares = gain_shares(rows, "peak_delta_mb")
    if not time_shares:
        return
    memory = {name: (factor, share) for name, factor, share in memory_shares}
    print(f"share of the gain ({dtype_name}; factor over the previous variant, share of log(total ratio)):")
    print(f"  {'variant':<13} {'time x':>7} {'share':>7} {'memory x':>9} {'share':>7}")
    for name, factor, share in time_shares:
        m_factor, m_share = memory.get(name, (float("nan"), float("nan")))
        print(f"  {name:<13} {factor:>7.2f} {100 * share:>6.0f}% {m_factor:>9.2f} {100 * m_share:>6.0f}%")


# ---------------------------------------------------------------------------- model and batches
def build_model(dtype: torch.dtype, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    from llm2vec.testing.tiny_models import build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer("llama3")  # only for the wrapper's template; ids are drawn below
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
        num_key_value_heads=KV_HEADS, intermediate_size=INTERMEDIATE, max_position_embeddings=2048,
        tie_word_embeddings=False, bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        rope_parameters={"rope_type": "default", "rope_theta": 500000.0},
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        causal_lm = LlamaForCausalLM._from_config(config, attn_implementation="sdpa", dtype=dtype)
    causal_lm.train()
    return causal_lm, tokenizer


def make_batch(lengths: list[int], bos: int, eos: int, seed: int) -> dict[str, torch.Tensor]:
    """Left-padded rows (pad = EOS, like the release): BOS, random ids, EOS; embed_mask = attention_mask."""
    generator = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), eos)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        tokens = torch.randint(1000, VOCAB, (length,), generator=generator)
        tokens[0], tokens[-1] = bos, eos
        ids[row, width - length :] = tokens
        mask[row, width - length :] = 1
    return {"input_ids": ids, "attention_mask": mask, "embed_mask": mask.clone()}


def spaced(low: int, high: int, count: int) -> list[int]:
    return [round(low + (high - low) * i / (count - 1)) for i in range(count)]


def standard_batches(bos: int, eos: int, n: int = 8):
    return make_batch(spaced(18, 55, n), bos, eos, seed=1), make_batch(spaced(140, 512, n), bos, eos, seed=2)


def unpadded_batches(bos: int, eos: int, n: int = 8):
    return make_batch([40] * n, bos, eos, seed=3), make_batch([300] * n, bos, eos, seed=4)


# ---------------------------------------------------------------------------- the released computation
def released_loss(causal_lm, q: dict, d: dict, eos: int, alpha: float = ALPHA) -> torch.Tensor:
    """The release's Stage I loss, written out from its ``LLM2VecSupervisedTrainer.compute_loss``
    (yjoonjang/Anchor-Embedding, ``experiments/run_stage_I.py`` at 470b9b8), on the plain causal LM.

    As there: anchors first (queries, then documents), then per direction the body on
    ``[anchor ; token embeddings]`` with default positions, ``lm_head`` applied to the body's
    output in the model's dtype (no upcast), the shifted ``.contiguous()`` copies flattened to
    (-1, vocab), and ``CrossEntropyLoss``; D2Q before Q2D, ``0.8 * d2q + 0.2 * q2d``.
    """

    def anchor(features):
        hidden = causal_lm.model(input_ids=features["input_ids"], attention_mask=features["attention_mask"])
        return hidden.last_hidden_state[:, -1]

    def logits(anchor_embedding, features):
        ids = features["input_ids"]
        inputs = torch.cat([anchor_embedding[:, None], causal_lm.model.embed_tokens(ids)], dim=1)
        mask = torch.cat([torch.ones_like(ids[:, :1]), features["embed_mask"]], dim=1)
        return causal_lm.lm_head(causal_lm.model(inputs_embeds=inputs, attention_mask=mask)[0])

    def cross_entropy(direction_logits, features):
        ids = features["input_ids"]
        labels = torch.cat([torch.full_like(ids[:, :1], IGNORE), ids.masked_fill(ids == eos, IGNORE)], dim=1)
        shift_logits = direction_logits[..., :-1, :].contiguous()
        shift_labels = labels[..., 1:].contiguous()
        return torch.nn.CrossEntropyLoss()(shift_logits.view(-1, direction_logits.shape[-1]), shift_labels.view(-1))

    q_anchor, d_anchor = anchor(q), anchor(d)
    # The release keeps each direction's logits in a local of compute_loss (``d2q_logits``,
    # ``q2d_logits``) until it returns: the D2Q logits are still alive during the Q2D pass.
    d2q_logits = logits(d_anchor, q)
    d2q = cross_entropy(d2q_logits, q)
    q2d_logits = logits(q_anchor, d)
    q2d = cross_entropy(q2d_logits, d)
    loss = (1 - alpha) * d2q + alpha * q2d
    del d2q_logits, q2d_logits
    return loss


def ours_model(causal_lm, tokenizer, variant: Variant):
    from llm2vec import LLM2Vec_q2d_d2q
    from llm2vec.llm2vec_q2d_d2q import StageILossComputation
    from llm2vec.model_config import LLM2VecConfig

    computation = StageILossComputation(
        packing=variant.packing, ce_implementation=variant.ce_implementation, ce_chunk_size=variant.ce_chunk_size
    )
    model = LLM2Vec_q2d_d2q(
        causal_lm.model, tokenizer, LLM2VecConfig(alpha=ALPHA), causal_lm.lm_head, causal_lm, computation
    )
    model.train()
    return model


def step_function(name: str, causal_lm, tokenizer, q, d) -> Callable[[], float]:
    """One optimizer step of variant ``name`` (a closure that returns the loss)."""
    from llm2vec.packing import install_varlen_attention

    optimizer = torch.optim.AdamW(causal_lm.parameters(), lr=1e-5)
    variant = VARIANTS[name]
    eos = tokenizer.eos_token_id
    model = None if variant.release else ours_model(causal_lm, tokenizer, variant)

    def step() -> float:
        # Variants share one model: put its attention implementation and checkpointing back to this variant's.
        if variant.checkpointing:
            causal_lm.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        else:
            causal_lm.activation_checkpointing_disable()
        if variant.release or variant.block_mask:
            # Plain sdpa: packed rows then get transformers' block-diagonal mask.
            causal_lm.model.config._attn_implementation = "sdpa"
        else:
            install_varlen_attention(causal_lm.model)
        loss = released_loss(causal_lm, q, d, eos) if model is None else model(q, d).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return float(loss.detach())

    step.optimizer = optimizer  # type: ignore[attr-defined]

    return step


# ---------------------------------------------------------------------------- FLOPs
def _linear_flops_per_token() -> int:
    head_dim = HIDDEN // HEADS
    projections = HIDDEN * (HEADS * head_dim + 2 * KV_HEADS * head_dim) + HEADS * head_dim * HIDDEN
    return 2 * LAYERS * (projections + 3 * HIDDEN * INTERMEDIATE)


def _attention_flops(length: int, causal: bool = True) -> int:
    """QK^T and PV of one sequence over all layers; causal counts the lower triangle only."""
    pairs = length * (length + 1) // 2 if causal else length * length
    return LAYERS * 2 * 2 * pairs * HIDDEN


def useful_flops(q_lengths: list[int], d_lengths: list[int]) -> dict[str, float]:
    """Matmul FLOPs of the work the loss needs (forward x3 for forward + backward)."""
    lengths = q_lengths + d_lengths
    encoder = sum(_linear_flops_per_token() * n + _attention_flops(n) for n in lengths)
    decoder = sum(_linear_flops_per_token() * (n - 1) + _attention_flops(n - 1) for n in lengths)
    head = sum(2 * HIDDEN * VOCAB * (n - 1) for n in lengths)
    return {"encoder": 3 * encoder, "decoder": 3 * decoder, "lm_head": 3 * head}


def executed_flops(name: str, q_lengths: list[int], d_lengths: list[int]) -> float:
    """Matmul FLOPs each variant runs (padding, masked attention blocks, logits of every position,
    recomputed chunks included)."""
    variant = VARIANTS[name]
    lq, ld = max(q_lengths), max(d_lengths)
    n = len(q_lengths)
    linear = _linear_flops_per_token()
    if not variant.packing:
        # Padded: the anchor pass on (n, L), the decoder on (n, L + 1); masked attention is full.
        encoder = n * (linear * lq + _attention_flops(lq, causal=False)) + n * (linear * ld + _attention_flops(ld, False))
        decoder = n * (linear * (lq + 1) + _attention_flops(lq + 1, False)) + n * (
            linear * (ld + 1) + _attention_flops(ld + 1, False)
        )
        if variant.release:
            head_positions = n * (lq + 1) + n * (ld + 1)
        else:
            head_positions = sum(q_lengths) + sum(d_lengths) - 2 * n
        head = 2 * HIDDEN * VOCAB * head_positions
        body = encoder + decoder
    else:
        total_tokens = sum(q_lengths) + sum(d_lengths)
        if variant.block_mask:
            encoder_attention = _attention_flops(total_tokens, causal=False)
            decoder_attention = _attention_flops(total_tokens - 2 * n, causal=False)
        else:
            encoder_attention = sum(_attention_flops(x) for x in q_lengths + d_lengths)
            decoder_attention = sum(_attention_flops(x - 1) for x in q_lengths + d_lengths)
        head = 2 * HIDDEN * VOCAB * (total_tokens - 2 * n)
        body = linear * total_tokens + encoder_attention + linear * (total_tokens - 2 * n) + decoder_attention
    total = 3 * (body + head)
    if not variant.release and variant.ce_implementation == "chunked":
        total += head  # the logits are computed again in backward
    if variant.checkpointing:
        total += body  # every layer's forward runs again in backward
    return float(total)


# ---------------------------------------------------------------------------- machine load
def _cpu_busy_seconds() -> float:
    """CPU seconds all processes have been busy (all cores, from /proc/stat; 0 off Linux)."""
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_idle_cpu(max_wait: float, threshold: float = 0.25, window: float = 1.0) -> float:
    """Wait (at most ``max_wait`` s) until other processes use less than ``threshold`` cores over
    ``window`` s. The machine is shared: a step measured while others compute is slower, and not
    by the same factor for every variant. Returns the seconds waited."""
    start = time.perf_counter()
    while time.perf_counter() - start < max_wait:
        before = _cpu_busy_seconds()
        time.sleep(window)
        if (_cpu_busy_seconds() - before) / window < threshold:
            break
    return time.perf_counter() - start


# ---------------------------------------------------------------------------- memory (child process)
def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def memory_child(name: str, dtype_name: str, threads: int) -> None:
    """Steady-state memory of one step: a warm-up step first creates AdamW's state, then the
    high-water mark of the second step is compared with the resident memory just before it."""
    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    causal_lm, tokenizer = build_model(dtype)
    q, d = standard_batches(tokenizer.bos_token_id, tokenizer.eos_token_id)
    step = step_function(name, causal_lm, tokenizer, q, d)
    step()  # warm-up: optimizer state, allocator pools, lazily built kernels
    gc.collect()
    warmup_peak = _status_kb("VmHWM")
    baseline = _status_kb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    start = time.perf_counter()
    step()
    seconds = time.perf_counter() - start
    peak = _status_kb("VmHWM")
    print(json.dumps({
        "baseline_kb": baseline, "peak_kb": peak, "delta_kb": peak - baseline,
        "process_peak_kb": max(peak, warmup_peak), "model_state_kb": model_state_bytes(step) // 1024,
        "seconds": seconds,
    }))


def model_state_bytes(step: Callable[[], float]) -> int:
    """Bytes of the weights and AdamW's two moments (the state no computation layout can shed)."""
    optimizer = step.optimizer  # type: ignore[attr-defined]
    total = 0
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            total += parameter.numel() * parameter.element_size()
            for value in optimizer.state.get(parameter, {}).values():
                if torch.is_tensor(value):
                    total += value.numel() * value.element_size()
    return total


def measure_memory(name: str, dtype_name: str, threads: int) -> dict:
    command = [sys.executable, __file__, "--memory-child", name, "--dtypes", dtype_name, "--threads", str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    if result.returncode != 0:
        raise RuntimeError(f"memory child {name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------- memory model check
def _estimate_memory_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("estimate_memory", REPO / "scripts" / "estimate_memory.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["estimate_memory"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def memory_model_check(rows: dict[str, dict], q_lengths: list[int], d_lengths: list[int]) -> dict[str, dict]:
    """scripts/estimate_memory.py's prediction of a bf16 step (checkpointing on) beside the measured
    memory of the checkpointed variants' second step beyond the state it starts from (the terms are
    added although they peak at different moments, so the model should lie somewhat above)."""
    estimate = _estimate_memory_module()
    model = estimate.Architecture(
        "benchmark", "", "", hidden=HIDDEN, layers=LAYERS, intermediate=INTERMEDIATE, heads=HEADS,
        kv_heads=KV_HEADS, head_dim=HIDDEN // HEADS, vocab=VOCAB, tied_embeddings=False, qkv_bias=False,
        published_parameters=0,
    )
    checks = {}
    for name, row in rows.items():
        variant = VARIANTS[name]
        if not variant.checkpointing or row.get("peak_delta_mb") is None:
            continue
        terms = estimate.one_process_step(model, q_lengths, d_lengths, variant.release, variant.ce_chunk_size)
        checks[name] = {
            "predicted_mb": {k: v / 2**20 for k, v in terms.items()},
            "measured_step_mb": row["peak_delta_mb"],
        }
    if checks:
        print("memory model (scripts/estimate_memory.py, one process, checkpointing) against the measurement, MB:")
        print(f"  {'variant':<13} {'grads':>6} {'ckpts':>6} {'recomp':>7} {'CE/logits':>9} {'predicted':>10} "
              f"{'measured':>9} {'predicted/measured':>19}")
        for name, check in checks.items():
            t = check["predicted_mb"]
            step = check["measured_step_mb"]
            print(
                f"  {name:<13} {t['gradients']:>6.0f} {t['checkpoints']:>6.0f} {t['layer_recompute']:>7.0f} "
                f"{t['cross_entropy']:>9.0f} {t['total']:>10.0f} {step:>9.0f} {t['total'] / step:>19.2f}"
            )
    return checks


# ---------------------------------------------------------------------------- report
def run_dtype(dtype_name: str, names: list[str], args: argparse.Namespace) -> dict:
    dtype = getattr(torch, dtype_name)
    causal_lm, tokenizer = build_model(dtype)
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    q, d = standard_batches(bos, eos)
    q_lengths = q["attention_mask"].sum(1).tolist()
    d_lengths = d["attention_mask"].sum(1).tolist()
    print(f"\n=== {dtype_name}: queries {q_lengths}, documents {d_lengths}, {torch.get_num_threads()} threads")

    # Loss agreement on an unpadded batch.
    uq, ud = unpadded_batches(bos, eos)
    with torch.no_grad():
        released = float(released_loss(causal_lm, uq, ud, eos))
        ours = float(ours_model(causal_lm, tokenizer, VARIANTS["ours"])(uq, ud).loss)  # type: ignore[arg-type]
    print(f"unpadded batch loss: release {released:.7f}  ours {ours:.7f}  |diff| {abs(released - ours):.2e}")

    peak = matmul_peak(dtype)
    print(f"matmul peak ({dtype_name}, 4096^3, best of 4): {peak / 1e9:.1f} GFLOP/s")

    steps = {name: step_function(name, causal_lm, tokenizer, q, d) for name in names}
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu_times: dict[str, list[float]] = {name: [] for name in names}
    background: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(args.warmup + args.steps):
        line = []
        for name in names:
            waited = wait_for_idle_cpu(args.wait_idle)
            busy_before = _cpu_busy_seconds()
            start, start_cpu = time.perf_counter(), time.process_time()
            steps[name]()
            elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
            # CPU time other processes used during the step, in cores (out of os.cpu_count()).
            others = max(0.0, (_cpu_busy_seconds() - busy_before - cpu) / elapsed)
            line.append(f"{name} {elapsed:.2f}s (cpu {cpu:.2f}s, others {others:.1f} cores, waited {waited:.0f}s)")
            if round_index >= args.warmup:
                times[name].append(elapsed)
                cpu_times[name].append(cpu)
                background[name].append(others)
        kind = "warm-up" if round_index < args.warmup else "round"
        print(f"  {kind} {round_index + 1}: " + ", ".join(line), flush=True)
    del steps
    gc.collect()

    memory = {}
    if not args.skip_memory:
        for name in names:
            memory[name] = measure_memory(name, dtype_name, args.threads)

    flops = useful_flops(q_lengths, d_lengths)
    model_flops = sum(flops.values())
    print(
        f"model FLOPs per step: {model_flops / 1e9:.1f} GFLOP (encoder {flops['encoder'] / 1e9:.1f}, "
        f"decoder {flops['decoder'] / 1e9:.1f}, lm_head at targets {flops['lm_head'] / 1e9:.1f}; x3 fwd+bwd)"
    )
    reference = None
    if "release" in times:
        reference = (statistics.median(times["release"]), min(times["release"]), statistics.median(cpu_times["release"]))
    reference_memory = memory.get("release", {}).get("delta_kb")
    reference_process = memory.get("release", {}).get("process_peak_kb")
    print(
        f"{'variant':<13} {'median s':>8} {'min s':>7} {'cpu s':>7} {'speedup':>8} {'(min)':>6} {'(cpu)':>6} "
        f"{'peak MB':>8} {'leaner':>7} {'exec GF':>8} {'GF/s':>6} {'% peak':>7}"
    )
    rows = {}
    nan = float("nan")
    for name in names:
        median, fastest, cpu = statistics.median(times[name]), min(times[name]), statistics.median(cpu_times[name])
        delta = memory.get(name, {}).get("delta_kb")
        process_peak = memory.get(name, {}).get("process_peak_kb")
        state = memory.get(name, {}).get("model_state_kb")
        achieved = model_flops / median
        rows[name] = {
            "step_seconds_median": median,
            "step_seconds_min": fastest,
            "cpu_seconds_median": cpu,
            "all_step_seconds": times[name],
            "all_cpu_seconds": cpu_times[name],
            "other_processes_cores": background[name],
            "peak_delta_mb": delta / 1024 if delta is not None else None,
            "speedup": reference[0] / median if reference else None,
            "speedup_min": reference[1] / fastest if reference else None,
            "speedup_cpu": reference[2] / cpu if reference else None,
            "leaner": reference_memory / delta if reference_memory and delta else None,
            "process_peak_mb": process_peak / 1024 if process_peak is not None else None,
            "model_state_mb": state / 1024 if state is not None else None,
            "leaner_process": reference_process / process_peak if reference_process and process_peak else None,
            "executed_gflop": executed_flops(name, q_lengths, d_lengths) / 1e9,
            "model_gflops_per_s": achieved / 1e9,
            "fraction_of_peak": achieved / peak,
        }
        r = rows[name]
        print(
            f"{name:<13} {median:>8.2f} {fastest:>7.2f} {cpu:>7.2f} {r['speedup'] or nan:>8.2f} "
            f"{r['speedup_min'] or nan:>6.2f} {r['speedup_cpu'] or nan:>6.2f} "
            f"{r['peak_delta_mb'] if r['peak_delta_mb'] is not None else nan:>8.0f} {r['leaner'] or nan:>7.2f} "
            f"{r['executed_gflop']:>8.0f} {r['model_gflops_per_s']:>6.1f} {100 * r['fraction_of_peak']:>6.1f}%"
        )
    if memory:
        print(f"{'variant':<13} {'step MB':>8} {'x':>6} {'process MB':>11} {'x':>6} {'weights+AdamW MB':>17} {'share':>6}")
        for name, r in rows.items():
            if r["peak_delta_mb"] is None:
                continue
            print(
                f"{name:<13} {r['peak_delta_mb']:>8.0f} {r['leaner'] or nan:>6.2f} {r['process_peak_mb']:>11.0f} "
                f"{r['leaner_process'] or nan:>6.2f} {r['model_state_mb']:>17.0f} "
                f"{100 * r['model_state_mb'] / r['process_peak_mb']:>5.0f}%"
            )
    print_gain_shares(dtype_name, rows)
    checks = memory_model_check(rows, q_lengths, d_lengths) if dtype == torch.bfloat16 else {}
    if "release" in rows and "ours" in rows:
        ours_row = rows["ours"]
        print(
            f"RESULT {dtype_name}: step time ratio release/ours = {ours_row['speedup']:.2f} (median; "
            f"min {ours_row['speedup_min']:.2f}, cpu time {ours_row['speedup_cpu']:.2f}; target >= 4 in bf16), "
            + (
                f"memory of a step beyond the model state, steady state, ratio = {ours_row['leaner']:.2f} "
                f"(target >= 6 in bf16), whole-process peak ratio = {ours_row['leaner_process']:.2f}, "
                if ours_row["leaner"] else ""
            )
            + f"unpadded loss |diff| = {abs(released - ours):.2e}"
        )
    if "release" in rows and "ours_lean" in rows and rows["ours_lean"]["leaner"]:
        lean = rows["ours_lean"]
        print(
            f"RESULT {dtype_name} ours_lean ({VARIANTS['ours_lean'].description}): step time ratio release/ours_lean "
            f"= {lean['speedup']:.2f}, memory of a step beyond the model state ratio = {lean['leaner']:.2f}, "
            f"whole-process peak ratio = {lean['leaner_process']:.2f}"
        )
    return {
        "dtype": dtype_name, "load_average": os.getloadavg(), "q_lengths": q_lengths, "d_lengths": d_lengths, "unpadded_loss_release": released,
        "unpadded_loss_ours": ours, "matmul_peak_gflops": peak / 1e9, "model_gflop": model_flops / 1e9,
        "flops_breakdown_gflop": {k: v / 1e9 for k, v in flops.items()}, "variants": rows,
        "memory_model_check": checks,
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dtypes", default="bfloat16,float32")
    parser.add_argument("--variants", default=",".join(VARIANTS), help=f"comma-separated subset of {list(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=5, help="timed rounds (median reported)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument(
        "--wait-idle", type=float, default=30.0,
        help="before each timed step, wait up to this many seconds for other processes to leave the CPU idle",
    )
    parser.add_argument("--json", help="also write the figures to this file")
    parser.add_argument("--report", help="print the shares of the gain from a --json file of an earlier run and exit")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child, args.dtypes, args.threads)
        return
    if args.report:
        for result in json.loads(Path(args.report).read_text()):
            print_gain_shares(result["dtype"], result["variants"])
        return
    torch.set_num_threads(args.threads)
    names = [n for n in args.variants.split(",") if n]
    unknown = sorted(set(names) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"unknown variants {unknown}; choose from {list(VARIANTS)}")
    print(
        f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} threads, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}, load average {os.getloadavg()}"
    )
    results = [run_dtype(name, names, args) for name in args.dtypes.split(",") if name]
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
