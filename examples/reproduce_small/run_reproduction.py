#!/usr/bin/env python
"""The paper's Figure 2 and Tables 3-5 in miniature, offline (``make reproduce-small``; hours on 2 cores).

    python examples/reproduce_small/run_reproduction.py [--only PART ...] [--seeds 1 2 3] [--float32]
        [--jobs PATTERN ...] [--adopt_records FILE ...] [--list] [--report]

Prepares the models (SmolLM2-135M-Instruct, Qwen2.5-Coder-1.5B-Instruct, all-MiniLM-L6-v2) and the
real-data suite, then runs the jobs of ``repro_small/plan.py`` in order: finished jobs are
skipped, an interrupted training resumes from its newest complete checkpoint. ``--report`` writes
the tables and plots of docs/reproduction_small.md from what has finished. ``--adopt_records``
continues a campaign on a new machine from the records that ``--report`` committed under docs/data/.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "examples" / "demo"))  # the demo's converter, readers and encoder

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see examples/demo/run_demo.py

from repro_small import models  # noqa: E402
from repro_small.jobs import Executor, Settings  # noqa: E402
from repro_small.demo_campaign import (  # noqa: E402
    DEMO18_CONFIGS,
    DEMO_SEEDS,
    DEMO_TASKS,
    MORE_SEEDS,
    OOD_TASKS,
    build_demo_plan,
    build_demo_suite,
)
from repro_small.llm2vec_campaign import build_llm2vec_plan, build_llm2vec_suite, llm2vec_view  # noqa: E402
from repro_small.plan import PARTS, SEEDS, build_plan  # noqa: E402

#: parts with their own folder, suite and plan besides the proxy campaign's
OWN_CAMPAIGNS = ("demo18", "llm2vec14")
ALL_PARTS = (*OWN_CAMPAIGNS, *PARTS)

#: the tasks of the Figure 2 curves (every 25 steps); finals run on the whole suite
CURVE_TASKS = ("SmallBBCHeadlineRetrieval", "SmallLeeSTS", "SmallBBCClustering")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", type=Path, default=REPO / "cache" / "reproduce_small")
    parser.add_argument("--only", nargs="+", choices=ALL_PARTS, default=list(ALL_PARTS), help="run only these parts")
    parser.add_argument("--seeds", nargs="+", type=int, default=list(SEEDS))
    parser.add_argument("--demo_seeds", nargs="+", type=int, default=list(DEMO_SEEDS))
    parser.add_argument("--jobs", nargs="+", metavar="PATTERN",
                        help="run only the jobs of the selected parts whose names match one of these shell patterns "
                             "(e.g. 'Baseline-s[0-9]*' '*Anchor-s[0-9]*'), and the jobs they build on")
    parser.add_argument("--float32", action="store_true", help="train and evaluate in float32 (CPUs without fast bf16)")
    parser.add_argument("--adopt_records", nargs="+", type=Path, default=[], metavar="FILE",
                        help="take over the jobs that finished elsewhere from records files that --report wrote "
                             "(e.g. docs/data/reproduction_small_records.json); only records whose fingerprint "
                             "matches this checkout's job are taken")
    parser.add_argument("--list", action="store_true", help="print the jobs and whether each is done, then stop")
    parser.add_argument("--report", action="store_true", help="only write the tables and plots")
    return parser.parse_args(argv)


def read_records(path: Path) -> dict[str, dict]:
    """A records file of ``--report`` (job name -> state), or an error that names the file and what is wrong."""
    import json

    try:
        records = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"--adopt_records {path}: no such file (the records are under docs/data/*_records.json)") from None
    except json.JSONDecodeError as error:
        raise SystemExit(f"--adopt_records {path}: not JSON ({error}); take the file as --report wrote it") from None
    if not isinstance(records, dict) or not all(isinstance(r, dict) and "fingerprint" in r for r in records.values()):
        raise SystemExit(f"--adopt_records {path}: expected an object of job name -> record with a 'fingerprint', "
                         "as --report writes to docs/data/*_records.json")
    return records


def adopt_records(path: Path, executors: list[Executor]) -> None:
    """Adopt the matching records of ``path`` into every campaign's state, and say what was taken and refused."""
    records = read_records(path)
    known = {job.name for executor in executors for job in executor.plan.jobs}
    adopted, refused = [], []
    for executor in executors:
        taken, differing = executor.adopt(records, str(path))
        adopted += taken
        refused += differing
    print(f"[adopt] {path}: {len(records)} records; adopted {len(adopted)}; "
          f"{len([n for n in records if n not in known])} name no job of the parts selected")
    refused = [name for name in refused if name not in adopted]  # a name may recur in another campaign's plan
    if refused:
        # Most likely the suite, a config or a job's settings changed since the records were written;
        # those jobs run again rather than mix results of two setups.
        print(f"[adopt] not adopted, their fingerprint differs from this checkout's job (they will run): {' '.join(refused)}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.chdir(REPO)
    from repro_small.suite import build_suite

    suite = build_suite(args.root / "suite")
    model_dirs = {"smollm2": models.smollm2(REPO / "cache" / "models"), "minilm": models.minilm(REPO / "cache" / "models")}
    if "qwen" in args.only:
        model_dirs["qwen"] = models.qwen(REPO / "cache" / "models")
    campaigns = []
    if "demo18" in args.only:
        # Issue 18: the demo's own data, models and evaluation lengths, one change per run.
        demo_settings = Settings(
            root=args.root / "demo18", suite=build_demo_suite(args.root / "demo18", suite), models=model_dirs,
            precision="float32" if args.float32 else "bfloat16", eval_max_length=512, eval_doc_max_length=400,
            curve_tasks=DEMO_TASKS, ood_tasks=OOD_TASKS, config_dir=REPO / DEMO18_CONFIGS,
        )
        demo_plan = build_demo_plan(tuple(args.demo_seeds))
        campaigns.append((Executor(demo_plan, demo_settings), demo_plan.jobs))
    if "llm2vec14" in args.only:
        # Issue 14: llm2vec's MNTP and SimCSE on SmolLM2 with the suite's training texts.
        l2v_root = args.root / "llm2vec14"
        l2v_models = {**model_dirs, "smollm2-llm2vec": llm2vec_view(model_dirs["smollm2"], l2v_root / "smollm2-llm2vec")}
        l2v_settings = Settings(
            root=l2v_root, suite=build_llm2vec_suite(l2v_root, suite), models=l2v_models,
            precision="float32" if args.float32 else "bfloat16", eval_max_length=96, eval_doc_max_length=64,
        )
        l2v_plan = build_llm2vec_plan(tuple(args.seeds))
        l2v_executor = Executor(l2v_plan, l2v_settings)
        campaigns.append((l2v_executor, l2v_plan.jobs))
    settings = Settings(
        root=args.root, suite=suite, models=model_dirs, precision="float32" if args.float32 else "bfloat16",
        eval_max_length=96, eval_doc_max_length=64, curve_tasks=CURVE_TASKS,
    )
    plan = build_plan(tuple(args.seeds))
    executor = Executor(plan, settings)
    campaigns.append((executor, plan.part(tuple(part for part in args.only if part not in OWN_CAMPAIGNS))))
    if args.jobs:
        unmatched = [p for p in args.jobs if not any(fnmatch.fnmatchcase(job.name, p) for _, jobs in campaigns for job in jobs)]
        if unmatched:
            raise SystemExit(f"--jobs {' '.join(unmatched)}: no job of the parts {' '.join(args.only)} has such a name "
                             "(--list prints them)")
        campaigns = [(campaign, campaign.select(args.jobs, jobs)) for campaign, jobs in campaigns]
    for path in args.adopt_records:
        adopt_records(path, [campaign for campaign, _ in campaigns])
    if args.list:
        for campaign, jobs in campaigns:
            for job in jobs:
                print(f"{'done' if campaign.done(job) else '    '}  {job.part:10s} {job.name}")
        return 0
    if not args.report:
        for campaign, jobs in campaigns:
            campaign.run(jobs)
    from repro_small.report import write_report

    write_report(executor, REPO / "docs")
    if "llm2vec14" in args.only:
        from repro_small.report_llm2vec import write_llm2vec_report

        write_llm2vec_report(l2v_executor, args.seeds, REPO / "docs")
    if "demo18" in args.only:
        from repro_small.report_demo import write_demo_report

        write_demo_report(campaigns[0][0], (*args.demo_seeds, *MORE_SEEDS), REPO / "docs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
