#!/usr/bin/env python
"""Build the CPU demo's training pairs and local evaluation tasks from gensim's test data.

    python examples/demo/build_demo_data.py [--output-dir cache/demo/data] [--force] [--seed 0]

writes ``<output-dir>/train/*.jsonl`` (query/positive/negative/instruction pairs for the ``jsonl``
dataset), ``<output-dir>/eval/*.json`` (local task specs for ``llm2vec.evaluation.local_tasks``,
with their data) and ``<output-dir>/manifest.json`` (see ``anchor_demo.demo_data``). The text
comes from the files gensim ships in ``gensim/test/test_data`` (``pip install gensim``); nothing
is downloaded. The default folder is the one in the checkout, whatever the working directory; a
complete build with the same settings is kept unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from anchor_demo import demo_data  # beside this script: its folder is on sys.path when it runs

# examples/demo/build_demo_data.py -> the checkout: by default the data goes where run_demo.py
# looks for it, whatever the working directory
REPO = Path(__file__).resolve().parents[2]


def parse_args(argv: list[str] | None, default_output: Path) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output-dir", type=Path, default=default_output, help=f"default: {default_output}")
    parser.add_argument(
        "--test-data-dir",
        type=Path,
        default=None,
        help="folder with lee_background.cor, lee.cor, similarities0-1.txt, pang_lee_polarity.cor and "
        "mini_newsgroup (default: gensim/test/test_data of the installed gensim)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of all random choices (default: 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete build exists")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv, REPO / demo_data.DEFAULT_OUTPUT_DIR)
    try:
        sources = demo_data.default_sources(args.test_data_dir)
        output = demo_data.build_demo_data(
            args.output_dir, sources=sources, config=demo_data.DemoDataConfig(seed=args.seed), force=args.force
        )
    except (FileNotFoundError, demo_data.DemoDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    manifest = json.loads((output / demo_data.MANIFEST_FILE).read_text(encoding="utf-8"))
    print(f"data folder: {output}")
    print(f"training pairs: {manifest['train_pairs']} ({', '.join(f'{k} {v}' for k, v in manifest['train'].items())})")
    for task, info in manifest["eval"].items():
        print(f"eval {task} ({info['type']}): {', '.join(f'{k} {v}' for k, v in info['files'].items())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
