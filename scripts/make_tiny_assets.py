#!/usr/bin/env python
"""Write tiny random checkpoints and a tiny E5-format data folder for CPU runs and tests.

    python scripts/make_tiny_assets.py --output-dir cache/tiny [--family llama3 qwen2 ...] [--force]

writes ``<output-dir>/models/<family>/`` (a causal-LM folder loadable offline with
``AutoModelForCausalLM`` / ``AutoTokenizer``) for each family, ``<output-dir>/data/`` (one
``<name>.jsonl`` per E5 file with ``query``/``positive``/``negative``) and ``<output-dir>/word_task/``
(CoNLL files for ``train_configs/word_task/tiny_pos.json``). Existing outputs are kept
unless ``--force`` is given. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _import_helpers():
    try:
        from llm2vec.testing import tiny_data, tiny_models
    except ImportError:  # run from a checkout without `pip install -e .`
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from llm2vec.testing import tiny_data, tiny_models
    return tiny_data, tiny_models


def parse_args(argv: list[str] | None, families: tuple[str, ...], e5_files: tuple[str, ...]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=Path("cache/tiny"), help="default: cache/tiny")
    parser.add_argument(
        "--family",
        action="extend",
        nargs="+",
        choices=families,
        help="model families to write (default: all of %(choices)s)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of model weights and data (default: 0)")
    parser.add_argument(
        "--data-files",
        nargs="+",
        default=list(e5_files),
        metavar="NAME",
        help="E5 file names to write (default: %(default)s)",
    )
    parser.add_argument("--n-per-file", type=int, default=64, help="lines per data file (default: 64)")
    parser.add_argument("--no-models", action="store_true", help="do not write checkpoints")
    parser.add_argument("--no-data", action="store_true", help="do not write the data folder")
    parser.add_argument("--force", action="store_true", help="overwrite existing outputs")
    return parser.parse_args(argv)


def _complete_checkpoint(path: Path) -> bool:
    return (path / "config.json").is_file() and (path / "tokenizer.json").is_file() and any(
        path.glob("*.safetensors")
    )


def _complete_data(path: Path, names: list[str]) -> bool:
    return all((path / f"{name}.jsonl").is_file() for name in names)


def main(argv: list[str] | None = None) -> int:
    tiny_data, tiny_models = _import_helpers()
    args = parse_args(argv, tiny_models.FAMILIES, tiny_data.DEFAULT_E5_FILES)
    if args.n_per_file < 1:
        print("--n-per-file must be at least 1", file=sys.stderr)
        return 2
    output_dir: Path = args.output_dir

    if not args.no_models:
        for family in args.family or tiny_models.FAMILIES:
            target = output_dir / "models" / family
            if _complete_checkpoint(target) and not args.force:
                print(f"exists, skipped: {target}")
                continue
            tiny_models.save_tiny_checkpoint(family, target, seed=args.seed)
            print(f"wrote model {family}: {target}")

    if not args.no_data:
        target = output_dir / "data"
        if _complete_data(target, args.data_files) and not args.force:
            print(f"exists, skipped: {target}")
        else:
            tiny_data.write_tiny_pairs_dir(
                target, files=args.data_files, n_per_file=args.n_per_file, seed=args.seed
            )
            names = ", ".join(f"{name}.jsonl" for name in args.data_files)
            print(f"wrote data ({args.n_per_file} lines each: {names}): {target}")
        target = output_dir / "word_task"
        if all((target / f"{split}.txt").is_file() for split in tiny_data.WORD_TASK_SPLITS) and not args.force:
            print(f"exists, skipped: {target}")
        else:
            tiny_data.write_tiny_word_task(target, seed=args.seed)
            print(f"wrote word-task data (CoNLL train/validation/test): {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
