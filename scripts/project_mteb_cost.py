#!/usr/bin/env python
"""Projected GPU-hours of MTEB56 per paper model: llm2vec's padded encode against this library's
packed encode, with and without the embedding cache, on 1 and 8 GPUs (a projection, not a
measurement: see docs/evaluation.md, "What MTEB56 costs").

Inputs: every MTEB56 text group's count, distinct count and min/mean/max length in characters
(mteb's descriptive statistics, ``llm2vec.evaluation.workload``); lengths within a group drawn
lognormal (sigma 0.8) around the mean and clipped to min/max; characters per token measured on
English news text (gensim's Lee corpus) with Qwen2.5's tokenizer, 4.86; each text capped at
``doc_max_length`` = 400 tokens plus the prompt around it (10 tokens, 25 with an instruction).
Model FLOPs: forward matmuls of every layer per token plus bidirectional attention (4 x layers x
heads x head_dim x n^2 per text), as ``benchmarks/bench_encode.py`` counts them.

llm2vec pays for the padding of its batches of 32 texts sorted by length within each encode call
(simulated per group on up to 20,000 drawn lengths); this library packs, so it pays for real tokens
only, and with the cache it embeds each distinct text once and the corpus FEVER and ClimateFEVER
share once. GPU time = FLOPs / (peak x utilization), with an A100's dense bf16 peak (312 TFLOP/s)
and the same assumed utilization for both (``--utilization``, default 0.4); 8 GPUs divide the time
by 8 (token-balanced shares).

    python scripts/project_mteb_cost.py            # the markdown of docs/evaluation.md
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import random
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

CHARS_PER_TOKEN = 4.86  # Qwen2.5's tokenizer on gensim's lee_background.cor (360,082 chars, 74,068 tokens)
A100_BF16_PEAK = 312e12
SHARED_CORPORA = {("ClimateFEVER", "documents"): ("FEVER", "documents")}  # same 5.4M abstracts (+25)


def _architectures():
    spec = importlib.util.spec_from_file_location("estimate_memory", REPO / "scripts" / "estimate_memory.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["estimate_memory"] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module.MODELS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--utilization", type=float, default=0.4, help="assumed fraction of the bf16 peak")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--doc-max-length", type=int, default=400)
    parser.add_argument("--samples", type=int, default=20_000, help="drawn lengths per text group")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def group_tokens(group, args: argparse.Namespace, rng: random.Random) -> dict[str, float]:
    """Per text of the group: mean tokens and mean squared tokens, packed and as llm2vec pads them."""
    sigma = 0.8
    mu = math.log(max(group.mean_chars, 1.0)) - sigma * sigma / 2
    overhead = 10 if group.group.startswith("documents") else 25
    draws = min(group.count, args.samples)
    lengths = []
    for _ in range(draws):
        chars = min(group.max_chars, max(group.min_chars, rng.lognormvariate(mu, sigma)))
        lengths.append(min(args.doc_max_length, math.ceil(chars / CHARS_PER_TOKEN)) + overhead)
    lengths.sort(reverse=True)
    padded = padded_sq = 0
    for start in range(0, len(lengths), args.batch_size):
        batch = lengths[start : start + args.batch_size]
        padded += batch[0] * len(batch)
        padded_sq += batch[0] ** 2 * len(batch)
    return {
        "tokens": sum(lengths) / draws, "tokens_sq": sum(n * n for n in lengths) / draws,
        "padded": padded / draws, "padded_sq": padded_sq / draws,
    }


def flops(model, tokens: float, tokens_sq: float) -> float:
    h, q, kv, i = model.hidden, model.heads * model.head_dim, model.kv_width, model.intermediate
    per_token = 2 * model.layers * (h * q + 2 * h * kv + q * h + 3 * h * i)
    return per_token * tokens + 4 * model.layers * q * tokens_sq


def main(argv: list[str] | None = None) -> int:
    from llm2vec.evaluation.workload import mteb56_text_groups

    args = parse_args(argv)
    rng = random.Random(args.seed)
    groups = mteb56_text_groups()
    stats = {(g.task, g.group): group_tokens(g, args, rng) for g in groups}
    models = _architectures()
    speed = A100_BF16_PEAK * args.utilization
    texts = sum(g.count for g in groups)
    tokens = sum(g.count * stats[g.task, g.group]["tokens"] for g in groups)
    padded = sum(g.count * stats[g.task, g.group]["padded"] for g in groups)
    print(f"MTEB56: {len(groups)} text groups of {len({g.task for g in groups})} mteb tasks, {texts / 1e6:.1f}M texts, "
          f"{tokens / 1e9:.2f}G tokens ({padded / 1e9:.2f}G as llm2vec pads them: {tokens / padded:.1%} real)\n")
    print("| model | llm2vec, 1 GPU | ours packed, 1 GPU | ours packed + cache, 1 GPU | ours + cache, 8 GPUs |")
    print("|---|---:|---:|---:|---:|")
    per_task: dict[str, float] = defaultdict(float)
    for model in models:
        llm2vec = packed = cached = 0.0
        for g in groups:
            s = stats[g.task, g.group]
            llm2vec += g.count * flops(model, s["padded"], s["padded_sq"])
            real = flops(model, s["tokens"], s["tokens_sq"])
            packed += g.count * real
            if (g.task, g.group) not in SHARED_CORPORA:
                cached += g.unique * real
            if model.name == "Llama-3.1-8B":
                per_task[g.task] += g.count * real
        hours = [value / speed / 3600 for value in (llm2vec, packed, cached)]
        print(f"| {model.name} | {hours[0]:,.0f} | {hours[1]:,.0f} | {hours[2]:,.0f} | {hours[2] / 8:,.1f} |")
    total = sum(per_task.values())
    print(f"\nLlama-3.1-8B, packed, the tasks that dominate (share of {total / speed / 3600:,.0f} GPU-hours):\n")
    print("| task | GPU-hours | share |")
    print("|---|---:|---:|")
    for task, value in sorted(per_task.items(), key=lambda item: -item[1])[:10]:
        print(f"| {task} | {value / speed / 3600:,.1f} | {value / total:.1%} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
