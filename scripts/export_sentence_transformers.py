#!/usr/bin/env python
"""Export an LLM2Vec checkpoint (base model + optional PEFT adapters) as a sentence-transformers folder.

    python scripts/export_sentence_transformers.py output/stage_I/checkpoint-2000 \\
        --peft output/stage_II/checkpoint-1000 exported/anchor-llama3.2-1b

The adapters are merged into the weights (``--no-merge`` keeps the last one as an adapter). Task
prompts come from the paper's Table 13 instructions shipped with llm2vec (``--instructions FILE``
for another file, ``--no-prompts`` for none): each task ``T`` gets the prompt ``"{instruction} "``
and ``T-document`` an empty one, which is how mteb asks sentence-transformers models for
prompts. The export is checked against ``LLM2Vec.encode`` on probe texts unless ``--no-verify``.

    from sentence_transformers import SentenceTransformer
    model = SentenceTransformer("exported/anchor-llama3.2-1b")
    model.encode(["a query"], prompt_name="NQ")      # == LLM2Vec.encode([[instruction, "a query"]])
    model.encode(["a document"])                      # == LLM2Vec.encode(["a document"])
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("base", help="base model folder or hub id (e.g. a Stage I checkpoint)")
    parser.add_argument("output", type=Path, help="output folder")
    parser.add_argument("--peft", action="append", default=[], help="PEFT adapter folder (repeatable, in order)")
    parser.add_argument("--no-merge", action="store_true", help="keep the last adapter unmerged")
    prompts = parser.add_mutually_exclusive_group()
    prompts.add_argument(
        "--instructions", type=Path, help="{task: instruction} JSON (default: the paper's, shipped with llm2vec)"
    )
    prompts.add_argument("--no-prompts", action="store_true", help="write no task prompts")
    parser.add_argument("--dtype", default="float32", help="weights dtype: float32 (default), bfloat16, float16")
    parser.add_argument("--pooling-mode", help="override llm2vec_config.json's pooling_mode")
    parser.add_argument("--max-length", type=int, help="override max_length")
    parser.add_argument("--doc-max-length", type=int, help="override doc_max_length")
    parser.add_argument("--prompt-template", help="override prompt_template")
    parser.add_argument("--no-verify", action="store_true", help="skip the comparison with LLM2Vec.encode")
    parser.add_argument("--allow-approximate", action="store_true", help="export inexact pooling settings too")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from llm2vec.export import ExportError, export_sentence_transformers
    from llm2vec.llm2vec import LLM2Vec

    overrides = {
        "pooling_mode": args.pooling_mode,
        "max_length": args.max_length,
        "doc_max_length": args.doc_max_length,
        "prompt_template": args.prompt_template,
    }
    encoder = LLM2Vec.from_pretrained(
        args.base,
        peft_model_name_or_path=args.peft or None,
        merge_peft=False,
        dtype=getattr(torch, args.dtype),
        **{k: v for k, v in overrides.items() if v is not None},
    )
    try:
        report = export_sentence_transformers(
            encoder,
            args.output,
            merge=not args.no_merge,
            prompts={} if args.no_prompts else None,
            instructions_file=args.instructions,
            verify=not args.no_verify,
            allow_approximate=args.allow_approximate,
        )
    except ExportError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    summary = {
        "output_dir": str(report.output_dir),
        "layout": report.layout,
        "pooling_mode": report.pooling_mode,
        "max_seq_length": report.max_seq_length,
        "prompts": len(report.prompts),
        "exact": report.exact,
        "max_abs_diff": report.max_abs_diff,
        "min_cosine": report.min_cosine,
    }
    print(json.dumps(summary, indent=2))
    for item in report.limitations:
        print(f"limitation: {item}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
