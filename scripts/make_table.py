#!/usr/bin/env python
"""Print MTEB results as Markdown tables in the paper's layouts, beside the paper's numbers.

    python scripts/make_table.py results/run_a/checkpoint-1000 results/baseline \\
        --name anchor --name baseline --paper llama3.2-1b-anchor --layout both

Each positional argument is an mteb results folder: the folder of the task files
(``<output>/<model>/<revision>``), a model folder above it, or an output root with a single
model/revision. ``--paper`` adds the paper's column (see ``--list-paper`` for the keys) and the
differences to it. Missing tasks are listed under the tables and incomplete categories carry a
count such as ``45.10 (3/4)``; the 56-task average needs all 56 tasks. Tasks outside MTEB56
(local tasks) get their own "Other" table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from llm2vec.reporting.paper_results import available_references, paper_reference
from llm2vec.reporting.results_io import load_run
from llm2vec.reporting.tables import RunScores, make_report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="*", help="mteb results folders (one column/row each)")
    parser.add_argument("--name", action="append", default=[], help="display name per results folder, in order")
    parser.add_argument("--paper", help="paper reference key, e.g. llama3.2-1b-anchor (see --list-paper)")
    parser.add_argument("--layout", choices=("categories", "tasks", "both"), default="both")
    parser.add_argument("--digits", type=int, default=2, help="decimals (default 2)")
    parser.add_argument("--output", type=Path, help="also write the Markdown to this file")
    parser.add_argument("--list-paper", action="store_true", help="list the paper reference keys and exit")
    args = parser.parse_args(argv)
    if args.name and len(args.name) > len(args.results):
        parser.error(f"{len(args.name)} --name given for {len(args.results)} results folders")
    if not args.results and not args.paper and not args.list_paper:
        parser.error("give results folders, --paper KEY, or --list-paper")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list_paper:
        print("\n".join(available_references()))
        return 0
    paper = None
    if args.paper:
        try:
            paper = paper_reference(args.paper)
        except KeyError as error:
            print(f"error: {error.args[0]}", file=sys.stderr)
            return 2
    runs = []
    for index, path in enumerate(args.results):
        name = args.name[index] if index < len(args.name) else None
        try:
            run = load_run(path, name=name)
        except (FileNotFoundError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        runs.append(RunScores(run.name, run.scores, run.skipped))
    report = make_report(runs, paper, layout=args.layout, digits=args.digits)
    print(report, end="")
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(report, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
