"""Evaluate an LLM2Vec checkpoint on MTEB tasks and/or local JSONL tasks with mteb 2.x.

    python experiments/mteb_eval_custom.py \
        --base_model_name_or_path <base model> \
        --peft_model_name_or_path <adapter> \
        --task_name subset15 \
        --task_to_instructions_fp test_configs/mteb/task_to_instructions.json \
        --output_dir results/

``--task_name`` takes an mteb task name, a comma-separated list, ``mteb56`` (the paper's 56 English
tasks) or ``subset15`` (Table 8). ``--local_tasks`` takes a spec file or a folder of specs (see
docs/evaluation.md, "Local tasks"). Without ``--task_to_instructions_fp`` the paper's Table 13
instructions shipped with llm2vec are used. Results are written in mteb's format to
``<output_dir>/<model name>/<fingerprint>/<task>.json`` (the layout of mteb's ``MTEB.run``, with
a fingerprint of the weights and settings in the revision slot); tasks with results there are
skipped unless ``--overwrite``.

Embeddings are cached in ``<output_dir>/embedding_cache/<model fingerprint>/`` as they are
computed (``--embedding_cache_dir``, ``--no_cache``): a killed evaluation resumes losing at most
one chunk, and texts shared by tasks are embedded once. Data-parallel on N GPUs (or CPU
processes, gloo): ``torchrun --nproc_per_node N experiments/mteb_eval_custom.py ...`` or
``accelerate launch --multi_gpu --num_processes N experiments/mteb_eval_custom.py ...``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llm2vec.evaluation.instructions import default_instructions_path
from llm2vec.evaluation.runner import DTYPES, USER_ERRORS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base_model_name_or_path", help="base model (hub id or folder); required to evaluate")
    parser.add_argument(
        "--peft_model_name_or_path", nargs="+", default=None, help="PEFT adapter(s), applied in order"
    )
    parser.add_argument("--task_name", default=None, help="task, comma-separated tasks, mteb56 or subset15")
    parser.add_argument("--local_tasks", default=None, help="local task spec JSON file or folder of specs")
    parser.add_argument(
        "--task_to_instructions_fp",
        default=None,
        help="{task: instruction} JSON file (default: the paper's, shipped as llm2vec/evaluation/data/"
        "task_to_instructions.json)",
    )
    parser.add_argument(
        "--allow_missing_instructions", action="store_true", help="encode tasks without an instruction"
    )
    parser.add_argument("--output_dir", default="results/")
    parser.add_argument("--model_name", default=None, help="results folder name (default: from the paths)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--dtype", choices=DTYPES, default=None, help="default: bfloat16 on GPU, float32 on CPU")
    parser.add_argument("--max_length", type=int, default=512)
    parser.add_argument("--doc_max_length", type=int, default=400)
    parser.add_argument(
        "--pooling_mode", default=None, help="override the checkpoint's pooling (e.g. mean for an untrained model)"
    )
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--attn_implementation", default=None, help="e.g. sdpa, eager, flash_attention_2")
    parser.add_argument("--overwrite", action="store_true", help="re-run tasks that already have results")
    parser.add_argument(
        "--merge_peft", action="store_true",
        help="merge the last adapter into the weights before encoding (faster on CPU; rounds in bf16)",
    )
    parser.add_argument(
        "--allow_base_mismatch", action="store_true", help="apply an adapter to a base other than the one it records"
    )
    parser.add_argument(
        "--embedding_cache_dir", default=None, help="embedding cache root (default: <output_dir>/embedding_cache)"
    )
    parser.add_argument("--no_cache", action="store_true", help="neither read nor write the embedding cache")
    parser.add_argument(
        "--cache_chunk_texts", type=int, default=None,
        help="texts per cache chunk, the most a kill loses (default: 64 x batch_size)",
    )
    parser.add_argument("--cache_report", action="store_true", help="print what the embedding cache holds and exit")
    parser.add_argument(
        "--no_packing", action="store_true", help="pad batches instead of packing them (llm2vec's batching)"
    )
    args = parser.parse_args(argv)
    if args.cache_report:
        return args
    if not args.base_model_name_or_path:
        parser.error("the following arguments are required: --base_model_name_or_path")
    if not args.task_name and not args.local_tasks:
        parser.error("give --task_name and/or --local_tasks")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cache_root = args.embedding_cache_dir or str(Path(args.output_dir) / "embedding_cache")
    if args.cache_report:
        from llm2vec.evaluation.embedding_cache import folder_report

        reports = folder_report(cache_root)
        for report in reports:
            print(report)
        total = sum(r.bytes for r in reports)
        print(f"{len(reports)} model folder(s), {total / 2**20:.1f} MiB in {cache_root}")
        return 0

    from llm2vec.evaluation.data_parallel import finish, init_from_environment

    ranks, device = init_from_environment(args.device)
    try:
        return _evaluate(args, ranks, device, cache_root)
    finally:
        finish(ranks)


def _evaluate(args: argparse.Namespace, ranks, device: str | None, cache_root: str) -> int:
    from llm2vec.evaluation.mteb_encoder import LLM2VecMTEBEncoder
    from llm2vec.evaluation.runner import (
        OutputFolderCache,
        build_tasks,
        collect_instructions,
        dtype_name,
        embedding_cache_for,
        evaluate_tasks,
        fingerprinted_model,
        load_llm2vec,
        plan_tasks,
    )

    say = print if ranks.is_main else (lambda *_, **__: None)
    packing = False if args.no_packing else None
    cache = OutputFolderCache(args.output_dir)
    try:
        tasks = build_tasks(args.task_name, args.local_tasks)
        instructions = collect_instructions(
            tasks, args.task_to_instructions_fp, allow_missing=args.allow_missing_instructions
        )
        dtype = dtype_name(args.dtype, device)
        settings = dict(
            dtype=dtype, max_length=args.max_length, doc_max_length=args.doc_max_length,
            pooling_mode=args.pooling_mode, attn_implementation=args.attn_implementation,
            instructions_path=args.task_to_instructions_fp, merge_peft=args.merge_peft,
        )
        model_meta, parts = fingerprinted_model(
            cache, args.base_model_name_or_path, args.peft_model_name_or_path, name=args.model_name, **settings
        )
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    # Rank 0 decides what runs (the results folder may be on its file system only).
    plans = plan_tasks(tasks, cache, model_meta, overwrite=args.overwrite)
    chosen = ranks.broadcast([plan.name for plan in plans if plan.run])
    for plan in plans:
        plan.run = plan.name in chosen
        if not plan.run:
            say(f"Skipping {plan.name}: results exist in {plan.result_path} (use --overwrite to re-run)")
    to_run = [plan for plan in plans if plan.run]
    if not to_run:
        say("Nothing to evaluate.")
        return 0
    say(f"Evaluating {model_meta.name} on {len(to_run)} task(s) with {ranks.world_size} process(es): "
        f"{', '.join(p.name for p in to_run)}")

    model = load_llm2vec(
        args.base_model_name_or_path,
        args.peft_model_name_or_path,
        device=device,
        dtype=dtype,
        attn_implementation=args.attn_implementation,
        max_length=args.max_length,
        doc_max_length=args.doc_max_length,
        pooling_mode=args.pooling_mode,
        allow_base_mismatch=args.allow_base_mismatch,
        merge_peft=args.merge_peft,
    )
    embeddings = None if args.no_cache else embedding_cache_for(cache_root, parts, packing, ranks)
    encoder = LLM2VecMTEBEncoder(
        model,
        instructions,
        model_meta=model_meta,
        missing_instruction="empty" if args.allow_missing_instructions else "error",
        instructions_source=args.task_to_instructions_fp or default_instructions_path(),
        batch_size=args.batch_size,
        show_progress_bar=ranks.is_main,
        cache=embeddings,
        ranks=ranks,
        chunk_texts=args.cache_chunk_texts,
        packing=packing,
    )
    scores = evaluate_tasks(encoder, to_run, cache, batch_size=args.batch_size, ranks=ranks)
    for plan in to_run:
        score = scores.get(plan.name)
        shown = f"{score:.4f}" if score is not None else "n/a"
        say(f"{plan.name}: main score {shown} -> {plan.result_path}")
    counts = encoder.counts
    say(f"texts embedded: {counts['embedded']}, read from the embedding cache: {counts['cached']}")
    if embeddings is not None:
        say(embeddings.report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
