#!/usr/bin/env python
"""Encode throughput: McGill-NLP llm2vec's ``encode`` vs this library padded, packed, on two
processes, and the sentence-transformers export (GitHub issue 15).

Texts: lengths drawn from the descriptive statistics of the 56 MTEB tasks that mteb ships
(``llm2vec.evaluation.workload``: a task's text group in proportion to its number of texts,
a lognormal length with the group's mean, clipped to its min and max), filled with English words;
queries and symmetric-task texts get an instruction, documents none. Model: llm2vec's default
setting on every path (bidirectional attention, mean pooling, llm2vec's tokenization: the word
cut to ``doc_max_length``, its prompt format, the embed mask), sdpa attention.

``llm2vec`` is llm2vec's computation written out here from its source (McGill-NLP/llm2vec
``llm2vec/llm2vec.py`` at 312adcf, methods ``encode``, ``_encode``, ``_convert_to_str``,
``tokenize``, ``forward``, ``get_pooling``): each input cut and joined with the separator, sorted
by character length (longest first), batches of ``--batch-size``, each batch tokenized padded on
the left with the embed mask from one more tokenizer call per text, the model run on
``input_ids``/``attention_mask`` with its default positions under ``torch.no_grad``, and mean
pooling by a loop over rows. Nothing is imported from this library on that path but the model
object. ``padded`` is ``LLM2Vec.encode(packing=False)``, ``packed`` the default ``encode``,
``2 processes`` the packed encode of each half (split by tokens) on two gloo processes of one
thread each, and ``sentence-transformers`` the folder ``export_sentence_transformers`` writes.

Measured in one run, interleaved, best of ``--repeats``: real tokens per second (the same token
count for every path), the ratio to llm2vec, the matmul FLOPs per second of the useful work as a
fraction of this machine's matmul peak (best 4096^3 ``torch.matmul`` in the same dtype), and the
largest embedding difference to llm2vec's own embeddings. llm2vec numbers positions over the left
padding (McGill-NLP/llm2vec #68), so its batched embeddings of padded rows differ from what it
computes for the same text alone; the comparison uses llm2vec one text at a time (its embedding
without padding effects) and prints the padding effect separately.

    python benchmarks/bench_encode.py --model cache/models/SmolLM2-135M-Instruct --dtypes float32,bfloat16
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from machine import free_port, matmul_peak  # noqa: E402  (this folder, next to the script)

SEPARATOR = "!@#$%^&*()"  # llm2vec's instruction separator
INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"
DEFAULT_MODEL = REPO / "cache" / "models" / "SmolLM2-135M-Instruct"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=None, help=f"model folder (default: {DEFAULT_MODEL} if present, else a random Llama)")
    parser.add_argument("--n-texts", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--doc-max-length", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip", default="", help="comma-separated paths to leave out (two_processes, sentence_transformers)")
    parser.add_argument("--json", default=None, help="write the figures to this file")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


# ---------------------------------------------------------------------------- texts
def make_inputs(n: int, seed: int) -> list[list[str]]:
    """``[instruction, text]`` pairs with MTEB56's text lengths (see the module docstring)."""
    from llm2vec.evaluation.workload import mteb56_text_groups, sample_lengths
    from llm2vec.testing.tiny_data import FILLER_WORDS, TOPICS

    vocabulary = [w for words in TOPICS.values() for w in words] + list(FILLER_WORDS)
    rng = random.Random(seed)
    inputs = []
    for group, length in sample_lengths(mteb56_text_groups(), n, seed=seed):
        words: list[str] = []
        while sum(len(w) + 1 for w in words) < length:
            words.append(rng.choice(vocabulary))
        text = " ".join(words)[:length].strip().capitalize() + "."
        inputs.append(["" if group.group.startswith("documents") else INSTRUCTION, text])
    return inputs


# ---------------------------------------------------------------------------- llm2vec, written out
class Llm2vecEncode:
    """McGill-NLP llm2vec's ``LLM2Vec.encode`` (see the module docstring), on a loaded model."""

    def __init__(self, model, tokenizer, max_length: int, doc_max_length: int) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.max_length, self.doc_max_length = max_length, doc_max_length
        tokenizer.padding_side = "left"
        tokenizer.pad_token = tokenizer.pad_token or tokenizer.eos_token

    def _convert_to_str(self, instruction: str, text: str) -> str:
        def count(value: str) -> int:
            return len(self.tokenizer([value], padding=True, truncation=True, max_length=self.max_length,
                                      add_special_tokens=False, return_tensors="pt")["input_ids"][0])

        length = count(text)
        while length > self.doc_max_length:
            text = " ".join(text.split()[: int(len(text.split()) * self.doc_max_length / length)])
            length = count(text)
        return f"{instruction.strip()} {SEPARATOR}{text}" if instruction else f"{SEPARATOR}{text}"

    def _tokenize(self, texts: list[str]) -> dict[str, torch.Tensor]:
        parts = [t.split(SEPARATOR) for t in texts]
        original = self.tokenizer(["".join(p) for p in parts], return_tensors="pt", padding=True, truncation=True,
                                  max_length=self.max_length)
        rows = []
        for t_i, p in enumerate(parts):
            ids = self.tokenizer([p[1] if len(p) > 1 else ""], return_tensors="pt", padding=True, truncation=True,
                                 max_length=self.max_length, add_special_tokens=False)["input_ids"][0]
            mask = torch.zeros_like(original["attention_mask"][t_i])
            if len(ids) > 0:
                mask[-len(ids):] = 1
            rows.append(mask)
        original["embed_mask"] = torch.stack(rows)
        return original

    def _encode(self, batch: list[str]) -> torch.Tensor:
        # prepare_for_tokenization leaves the text unchanged for a model llm2vec does not name
        # (SmolLM2, random models) under mean pooling
        features = self._tokenize(batch)
        embed_mask = features.pop("embed_mask")
        with torch.no_grad():
            hidden = self.model(**features).last_hidden_state
            lengths = embed_mask.sum(dim=-1)  # skip_instruction: attention_mask := embed_mask
            return torch.stack([hidden[i, -n:, :].mean(dim=0) for i, n in enumerate(lengths)]).cpu()

    def encode(self, sentences: list[list[str]], batch_size: int) -> torch.Tensor:
        texts = [self._convert_to_str(s[0], s[1]) for s in sentences]
        order = np.argsort([-len(t) for t in texts])
        sorted_texts = [texts[i] for i in order]
        out = torch.cat([self._encode(sorted_texts[s : s + batch_size]) for s in range(0, len(texts), batch_size)])
        return out[np.argsort(order)].to(torch.float32)


# ---------------------------------------------------------------------------- helpers
def useful_flops(config, lengths: list[int]) -> float:
    """Forward matmul FLOPs on real tokens: linear layers and bidirectional attention (no lm_head)."""
    h, layers = config.hidden_size, config.num_hidden_layers
    heads, kv = config.num_attention_heads, getattr(config, "num_key_value_heads", config.num_attention_heads)
    head_dim = getattr(config, "head_dim", None) or h // heads
    per_token = 2 * layers * (h * heads * head_dim + 2 * h * kv * head_dim + heads * head_dim * h
                              + 3 * h * config.intermediate_size)
    attention = sum(4 * layers * heads * head_dim * n * n for n in lengths)
    return per_token * sum(lengths) + attention


def load_encoder(model_path: str, dtype: torch.dtype, args: argparse.Namespace):
    from llm2vec.llm2vec import LLM2Vec

    return LLM2Vec.from_pretrained(
        model_path, dtype=dtype, attn_implementation="sdpa", tokenization="llm2vec", pooling_mode="mean",
        enable_bidirectional=True, max_length=args.max_length, doc_max_length=args.doc_max_length,
    ).eval()


def random_model(folder: Path) -> str:
    from llm2vec.testing.tiny_models import build_tiny_model, build_tiny_tokenizer

    tokenizer = build_tiny_tokenizer("llama3")
    model = build_tiny_model("llama3", tokenizer, hidden_size=256, intermediate_size=1024, num_hidden_layers=4,
                             num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


# ---------------------------------------------------------------------------- two processes
def two_process_child(args: argparse.Namespace) -> None:
    import torch.distributed as dist

    from llm2vec.evaluation.data_parallel import split_by_tokens

    dist.init_process_group("gloo")
    torch.set_num_threads(1)
    rank = dist.get_rank()
    spec = json.loads(Path(args.child).read_text())
    encoder = load_encoder(spec["model"], getattr(torch, spec["dtype"]), args)
    inputs = spec["inputs"]
    mine = [inputs[i] for i in split_by_tokens(encoder.token_counts(inputs), 2)[rank]]
    encoder.encode(mine[: args.batch_size], batch_size=args.batch_size, show_progress_bar=False)  # warm-up
    best = float("inf")
    for _ in range(args.repeats):
        dist.barrier()
        start = time.perf_counter()
        encoder.encode(mine, batch_size=args.batch_size, show_progress_bar=False)
        dist.barrier()
        best = min(best, time.perf_counter() - start)
    if rank == 0:
        print(json.dumps({"seconds": best}))
    dist.destroy_process_group()


def run_two_processes(model: str, dtype_name: str, inputs: list, args: argparse.Namespace, tmp: Path) -> float:
    spec = tmp / f"two_process_{dtype_name}.json"
    spec.write_text(json.dumps({"model": model, "dtype": dtype_name, "inputs": inputs}))
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
               "--master_addr=127.0.0.1", f"--master_port={free_port()}", __file__, "--child", str(spec),
               "--batch-size", str(args.batch_size), "--repeats", str(args.repeats),
               "--max-length", str(args.max_length), "--doc-max-length", str(args.doc_max_length)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"two-process run failed:\n{result.stderr[-3000:]}")
    return json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])["seconds"]


# ---------------------------------------------------------------------------- one dtype
def run_dtype(model_path: str, dtype_name: str, inputs: list, args: argparse.Namespace, tmp: Path) -> dict:
    dtype = getattr(torch, dtype_name)
    encoder = load_encoder(model_path, dtype, args)
    reference = Llm2vecEncode(encoder.model, encoder.tokenizer, args.max_length, args.doc_max_length)
    lengths = encoder.token_counts(inputs)
    tokens = sum(lengths)
    paths = {
        "llm2vec": lambda: reference.encode(inputs, args.batch_size),
        "padded": lambda: encoder.encode(inputs, batch_size=args.batch_size, show_progress_bar=False, packing=False),
        "packed": lambda: encoder.encode(inputs, batch_size=args.batch_size, show_progress_bar=False),
    }
    skip = set(filter(None, args.skip.split(",")))
    st_model = None
    if "sentence_transformers" not in skip:
        st_model, st_note = export_for_st(encoder, tmp / f"st_{dtype_name}", dtype)
        if st_model is not None:
            prompts = [s[0] + " " if s[0] else "" for s in inputs]

            def st_encode() -> torch.Tensor:
                # one call per prompt, as mteb's sentence-transformers wrapper encodes a task side
                out = torch.empty(len(inputs), encoder.model.config.hidden_size)
                for prompt in sorted(set(prompts)):
                    rows = [i for i, p in enumerate(prompts) if p == prompt]
                    out[rows] = torch.as_tensor(st_model.encode([inputs[i][1] for i in rows], prompt=prompt,
                                                                batch_size=args.batch_size, convert_to_tensor=True)).float()
                return out

            paths["sentence_transformers"] = st_encode
        else:
            print(f"  sentence-transformers: not measured ({st_note})")
    warm = inputs[: args.batch_size]  # warm-up: allocator pools, kernels
    reference.encode(warm, args.batch_size)
    encoder.encode(warm, batch_size=args.batch_size, show_progress_bar=False)
    encoder.encode(warm, batch_size=args.batch_size, show_progress_bar=False, packing=False)
    times: dict[str, list[float]] = {name: [] for name in paths}
    outputs: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):
        for name, fn in paths.items():
            start = time.perf_counter()
            outputs[name] = fn()
            times[name].append(time.perf_counter() - start)
    if "two_processes" not in skip:
        times["two_processes"] = [run_two_processes(model_path, dtype_name, inputs, args, tmp)]

    # llm2vec alone per text: its embedding without the padding effect
    sample = list(range(0, len(inputs), max(1, len(inputs) // 24)))
    alone = torch.cat([reference.encode([inputs[i]], 1) for i in sample])
    differences = {name: float((out[sample] - alone).abs().max()) for name, out in outputs.items()}
    if "sentence_transformers" in outputs:
        # exact only without an instruction (the export cannot leave one out of a mean)
        documents = [row for row, i in enumerate(sample) if not inputs[i][0]]
        differences["sentence_transformers"] = float(
            (outputs["sentence_transformers"][[sample[r] for r in documents]] - alone[documents]).abs().max()
        )
    scale = float(alone.abs().max())
    padding_effect = differences.pop("llm2vec")
    peak = matmul_peak(dtype)
    flops = useful_flops(encoder.model.config, lengths)
    base = min(times["llm2vec"])
    rows = {}
    print(f"\n=== {dtype_name}: {len(inputs)} texts, {tokens} real tokens (mean {tokens / len(inputs):.0f}, max "
          f"{max(lengths)}), batch size {args.batch_size}, {torch.get_num_threads()} threads, matmul peak "
          f"{peak / 1e9:.0f} GFLOP/s")
    print(f"{'path':<22} {'best s':>7} {'tokens/s':>9} {'x llm2vec':>9} {'% peak':>7} {'max |diff| to llm2vec alone':>28}")
    print("(sentence-transformers: documents only, the texts it can embed exactly)")
    for name, values in times.items():
        best = min(values)
        rows[name] = {
            "seconds": values, "tokens_per_second": tokens / best, "ratio": base / best,
            "fraction_of_peak": flops / best / peak, "max_abs_diff": differences.get(name),
        }
        diff = differences.get(name)
        print(f"{name:<22} {best:>7.2f} {tokens / best:>9.0f} {base / best:>9.2f} {100 * flops / best / peak:>6.1f}% "
              f"{'' if diff is None else f'{diff:.2e}':>28}")
    print(f"llm2vec batched vs alone (its padding effect, #68): {padding_effect:.2e}; largest |embedding| {scale:.3f}; "
          f"packed vs padded: {float((outputs['packed'] - outputs['padded']).abs().max()):.2e}")
    print(f"RESULT {dtype_name}: packed encode {rows['packed']['ratio']:.2f}x llm2vec's tokens/s (target >= 2)")
    return {"dtype": dtype_name, "tokens": tokens, "texts": len(inputs), "matmul_peak_gflops": peak / 1e9,
            "useful_gflop": flops / 1e9, "llm2vec_padding_effect": padding_effect, "largest_abs_embedding": scale, "paths": rows}


def export_for_st(encoder, folder: Path, dtype: torch.dtype):
    try:
        from sentence_transformers import SentenceTransformer

        from llm2vec.export import export_sentence_transformers

        # approximate: sentence-transformers cannot leave the instruction out of a mean; timed all the same
        export_sentence_transformers(encoder, folder, prompts={}, verify=False, allow_approximate=True)
        return SentenceTransformer(str(folder), device="cpu", model_kwargs={"dtype": dtype}), ""
    except Exception as error:  # noqa: BLE001 - reported, not hidden
        return None, f"{type(error).__name__}: {str(error)[:200]}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        two_process_child(args)
        return 0
    torch.set_num_threads(args.threads)
    inputs = make_inputs(args.n_texts, args.seed)
    flags = [f for f in ("avx512_bf16", "amx_bf16") if f in Path("/proc/cpuinfo").read_text()]
    print(f"CPU flags: {', '.join(flags) or 'no avx512_bf16/amx_bf16 (bf16 matmuls emulated)'}; torch {torch.__version__}")
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or (str(DEFAULT_MODEL) if DEFAULT_MODEL.is_dir() else random_model(Path(tmp) / "model"))
        print(f"model: {model}")
        for dtype_name in args.dtypes.split(","):
            results.append(run_dtype(model, dtype_name, inputs, args, Path(tmp)))
    if args.json:
        Path(args.json).write_text(json.dumps({"model": model, "flags": flags, "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
