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
"""

from __future__ import annotations

import argparse
import sys

from llm2vec.evaluation.instructions import default_instructions_path
from llm2vec.evaluation.runner import DTYPES, USER_ERRORS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base_model_name_or_path", required=True, help="base model (hub id or folder)")
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
    args = parser.parse_args(argv)
    if not args.task_name and not args.local_tasks:
        parser.error("give --task_name and/or --local_tasks")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)

    from llm2vec.evaluation.mteb_encoder import LLM2VecMTEBEncoder
    from llm2vec.evaluation.runner import (
        OutputFolderCache,
        build_tasks,
        collect_instructions,
        dtype_name,
        evaluate_tasks,
        fingerprinted_model_meta,
        load_llm2vec,
        plan_tasks,
    )

    cache = OutputFolderCache(args.output_dir)
    try:
        tasks = build_tasks(args.task_name, args.local_tasks)
        instructions = collect_instructions(
            tasks, args.task_to_instructions_fp, allow_missing=args.allow_missing_instructions
        )
        dtype = dtype_name(args.dtype, args.device)
        model_meta = fingerprinted_model_meta(
            cache, args.base_model_name_or_path, args.peft_model_name_or_path, name=args.model_name, dtype=dtype,
            max_length=args.max_length, doc_max_length=args.doc_max_length, pooling_mode=args.pooling_mode,
            attn_implementation=args.attn_implementation, instructions_path=args.task_to_instructions_fp,
            merge_peft=args.merge_peft,
        )
    except USER_ERRORS as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    plans = plan_tasks(tasks, cache, model_meta, overwrite=args.overwrite)
    for plan in plans:
        if not plan.run:
            print(f"Skipping {plan.name}: results exist in {plan.result_path} (use --overwrite to re-run)")
    to_run = [plan for plan in plans if plan.run]
    if not to_run:
        print("Nothing to evaluate.")
        return 0
    print(f"Evaluating {model_meta.name} on {len(to_run)} task(s): {', '.join(p.name for p in to_run)}")

    model = load_llm2vec(
        args.base_model_name_or_path,
        args.peft_model_name_or_path,
        device=args.device,
        dtype=dtype,
        attn_implementation=args.attn_implementation,
        max_length=args.max_length,
        doc_max_length=args.doc_max_length,
        pooling_mode=args.pooling_mode,
        allow_base_mismatch=args.allow_base_mismatch,
        merge_peft=args.merge_peft,
    )
    encoder = LLM2VecMTEBEncoder(
        model,
        instructions,
        model_meta=model_meta,
        missing_instruction="empty" if args.allow_missing_instructions else "error",
        instructions_source=args.task_to_instructions_fp or default_instructions_path(),
        batch_size=args.batch_size,
    )
    scores = evaluate_tasks(encoder, to_run, cache, batch_size=args.batch_size)
    for plan in to_run:
        score = scores.get(plan.name)
        shown = f"{score:.4f}" if score is not None else "n/a"
        print(f"{plan.name}: main score {shown} -> {plan.result_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
