#!/usr/bin/env python
"""Throughput of ``LLM2Vec.encode`` (length-sorted batches) vs unsorted fixed-size batches.

Both strategies use the same model, texts, batch size and tokenization path
(``LLM2Vec.tokenize(..., text_max_length=doc_max_length)`` then ``LLM2Vec.embed``); the only
difference is the order in which texts are grouped into batches. ``encode`` sorts texts by
length, so a batch holds texts of similar length and little padding; the baseline takes texts in
their given order, so every batch is padded to its longest text.

Texts follow a realistic length distribution: word counts drawn from a lognormal distribution
(median ``--median-words``, clipped to ``--min-words``..``--max-words``), words from the tiny
test corpus vocabulary. By default the model is a small random Llama-3-like model (hidden 256,
4 layers) built offline; ``--model PATH`` benchmarks a real checkpoint instead.

    python benchmarks/bench_encode.py --n-texts 256 --batch-size 16 --threads 2

Prints sentences/second of both strategies, their ratio (measured in the same run, runs
interleaved, best of ``--repeats``), the padding efficiency of each and the largest difference
between the two sets of embeddings (they must agree: same texts, same model).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model folder (default: a small random llama3-like model)")
    parser.add_argument("--family", default="llama3", help="tiny model family for the random model")
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--n-texts", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--median-words", type=float, default=60.0)
    parser.add_argument("--sigma", type=float, default=0.9, help="lognormal sigma of the word counts")
    parser.add_argument("--min-words", type=int, default=5)
    parser.add_argument("--max-words", type=int, default=400)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--doc-max-length", type=int, default=400)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per strategy (best is reported)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def make_texts(n: int, median: float, sigma: float, lo: int, hi: int, seed: int) -> list[str]:
    """``n`` texts with lognormal word counts, words from the tiny corpus vocabulary."""
    from llm2vec.testing.tiny_data import FILLER_WORDS, TOPICS

    rng = random.Random(seed)
    vocabulary = [w for words in TOPICS.values() for w in words] + list(FILLER_WORDS)
    texts = []
    for _ in range(n):
        count = int(round(rng.lognormvariate(math.log(median), sigma)))
        count = min(hi, max(lo, count))
        words = [rng.choice(vocabulary) for _ in range(count)]
        texts.append(" ".join(words).capitalize() + ".")
    return texts


def build_random_model(args: argparse.Namespace, folder: Path) -> Path:
    from llm2vec.testing.tiny_models import build_tiny_model, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer(args.family)
    model = build_tiny_model(
        args.family,
        tokenizer,
        seed=args.seed,
        hidden_size=args.hidden_size,
        intermediate_size=4 * args.hidden_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.heads,
        max_position_embeddings=max(1024, args.max_length),
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def encode_unsorted(encoder, texts: list[str], batch_size: int) -> tuple[torch.Tensor, int]:
    """Fixed-size batches in the given order, through LLM2Vec's own tokenization and pooling."""
    outputs, padded = [], 0
    encoder.eval()
    with torch.inference_mode():
        for start in range(0, len(texts), batch_size):
            features = encoder.tokenize(texts[start : start + batch_size], text_max_length=encoder.doc_max_length)
            padded += features["input_ids"].numel()
            outputs.append(encoder.embed(features).float())
    return torch.cat(outputs), padded


def padded_tokens_sorted(encoder, texts: list[str], batch_size: int) -> int:
    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # as LLM2Vec.encode sorts
    total = 0
    for start in range(0, len(order), batch_size):
        batch = [texts[i] for i in order[start : start + batch_size]]
        total += encoder.tokenize(batch, text_max_length=encoder.doc_max_length)["input_ids"].numel()
    return total


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from llm2vec.llm2vec import LLM2Vec

    with tempfile.TemporaryDirectory() as tmp:
        model_path = args.model or str(build_random_model(args, Path(tmp) / "model"))
        encoder = LLM2Vec.from_pretrained(
            model_path, dtype=getattr(torch, args.dtype), max_length=args.max_length, doc_max_length=args.doc_max_length
        )
    encoder.eval()
    texts = make_texts(args.n_texts, args.median_words, args.sigma, args.min_words, args.max_words, args.seed)
    words = [len(t.split()) for t in texts]
    real_tokens = sum(
        int(encoder.tokenize([t], text_max_length=encoder.doc_max_length)["attention_mask"].sum()) for t in texts
    )

    # warm-up (allocator, kernels)
    encoder.encode(texts[: args.batch_size], batch_size=args.batch_size, show_progress_bar=False)
    encode_unsorted(encoder, texts[: args.batch_size], args.batch_size)

    sorted_times, unsorted_times = [], []
    sorted_out = unsorted_out = None
    for _ in range(args.repeats):
        start = time.perf_counter()
        sorted_out = encoder.encode(texts, batch_size=args.batch_size, show_progress_bar=False)
        sorted_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        unsorted_out, unsorted_padded = encode_unsorted(encoder, texts, args.batch_size)
        unsorted_times.append(time.perf_counter() - start)
    sorted_padded = padded_tokens_sorted(encoder, texts, args.batch_size)
    diff = float((sorted_out - unsorted_out).abs().max())

    best_sorted, best_unsorted = min(sorted_times), min(unsorted_times)
    sorted_rate = len(texts) / best_sorted
    unsorted_rate = len(texts) / best_unsorted
    config = encoder.model.config
    print(f"model: {args.model or f'random {args.family} (hidden {config.hidden_size}, {config.num_hidden_layers} layers)'}"
          f", dtype {args.dtype}, threads {torch.get_num_threads()}")
    print(f"texts: {len(texts)}, words per text: median {statistics.median(words):.0f}, mean {statistics.mean(words):.0f},"
          f" min {min(words)}, max {max(words)}; real tokens {real_tokens} (doc_max_length {args.doc_max_length})")
    print(f"batch size {args.batch_size}, best of {args.repeats} interleaved runs")
    print(f"LLM2Vec.encode (length-sorted): {sorted_rate:8.1f} sentences/s  ({best_sorted:.2f} s, "
          f"padding efficiency {real_tokens / sorted_padded:.1%})")
    print(f"unsorted fixed-size batches:    {unsorted_rate:8.1f} sentences/s  ({best_unsorted:.2f} s, "
          f"padding efficiency {real_tokens / unsorted_padded:.1%})")
    print(f"speed-up of sorting: {sorted_rate / unsorted_rate:.2f}x   (all runs, s: sorted "
          f"{', '.join(f'{t:.2f}' for t in sorted_times)}; unsorted {', '.join(f'{t:.2f}' for t in unsorted_times)})")
    print(f"padded tokens: sorted {sorted_padded}, unsorted {unsorted_padded}")
    print(f"max |difference| between the two embeddings: {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
