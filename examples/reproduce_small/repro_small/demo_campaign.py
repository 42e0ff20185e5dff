"""Why ``make demo`` tells another story without fast bf16: controlled runs on the demo's own data.

The demo trains 20 steps per stage on pairs from gensim's Lee and newsgroups texts and evaluates
four tasks cut from the same texts. Each setting below changes one thing against the demo's
(bf16 autocast in both stages with bfloat16 Stage II weights, loss scale 50, Stage II learning rate
5e-4), for three seeds (42 is the demo's own). The evaluation adds three tasks of the proxy suite
from corpora no demo pair touches (BBC news, Rotten Tomatoes), and the untrained model with mean
pooling as a reference row. The demo's suite folder holds its training pairs and all seven tasks.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from llm2vec.files import staged_folder
from repro_small.plan import Evaluate, Plan, Train, _overrides

DEMO_SEEDS = (42, 1, 2)
#: seeds that run only the demo as shipped (Stage I, Baseline, Anchor): how often each arm trains
MORE_SEEDS = (3, 4, 5, 6)
#: (query, document) token limits for the out-of-domain tasks: the proxy suite's
OOD_LENGTHS = (96, 64)
DEMO_CONFIGS = Path("train_configs/demo")
#: the demo's configs as they were shipped when issue 18 was filed (Stage II learning rate 5e-4): the
#: campaign reads these, so that it studies that demo whatever the shipped configs become
DEMO18_CONFIGS = Path("train_configs/demo/issue18")
OOD_TASKS = ("SmallBBCHeadlineRetrieval", "SmallBBCClassification", "SmallReviewPlotRetrieval")
DEMO_TASKS = ("DemoLeeNewsRetrieval", "DemoLeeSTS", "DemoMovieReviewPolarity", "DemoNewsgroupsClustering")
FP32 = {"bf16": False, "torch_dtype": "float32"}
#: Stage II settings: name -> (Stage I setting it starts from, overrides); one change each against
#: the demo, then candidate configurations for a demo whose conclusion holds in both precisions,
#: each run as the demo runs it with fast bf16 and without (``fp32-`` names)
STAGE_II_SETTINGS = {
    "default": ("default", {}),
    "stageII-fp32": ("default", FP32),
    "stageI-fp32": ("fp32", {}),
    "fp32": ("fp32", FP32),
    "scale20": ("default", {"loss_scale": 20.0}),
    "lr1e-4": ("default", {"learning_rate": 1e-4}),
    "lr1e-3": ("default", {"learning_rate": 1e-3}),
    "fp32-lr1e-3": ("fp32", {**FP32, "learning_rate": 1e-3}),
}
STAGE_I_SETTINGS = {"default": {}, "fp32": {"bf16": False}}
#: Stage II settings whose models are also evaluated on the out-of-domain tasks, in both
#: precisions (the float32 Baseline is ``stageII-fp32``: it has no Stage I), and the candidates
WITH_OOD = ("default", "fp32", "lr1e-3", "fp32-lr1e-3")
#: the order of the campaign: the precision settings of every seed (they name the cause), then the
#: out-of-domain scores, the loss-scale and learning-rate settings (the rest of the single
#: changes), the candidates with fast bf16, then without it, and last the shipped demo (Stage II at
#: lr 1e-3 since issue 18) on MORE_SEEDS
SECONDARY = ("scale20", "lr1e-4")
#: the candidate: a lower learning rate (1e-4) escapes the collapse less often than 5e-4, so a higher
#: one (2e-3 trained seed 42's Baseline as 1e-3 did, 74.20 against 74.04, and was dropped for time)
CANDIDATES = ("lr1e-3", "fp32-lr1e-3")
#: the Baseline has no Stage I: only Stage II settings give a Baseline run
BASELINE_SETTINGS = ("default", "stageII-fp32", "scale20", "lr1e-4", *CANDIDATES)


def build_demo_suite(root: Path, proxy_suite: Path, log=print) -> Path:
    """``root/demo_suite``: the demo's training pairs and tasks, plus the out-of-domain tasks."""
    from anchor_demo.demo_data import build_demo_data

    target = root / "demo_suite"
    manifest_path = target / "manifest.json"
    demo = build_demo_data(root / "demo_data", log=log)
    sources = {"demo": json.loads((demo / "manifest.json").read_text()), "proxy": json.loads((proxy_suite / "manifest.json").read_text())}
    if manifest_path.is_file() and json.loads(manifest_path.read_text()).get("sources") == sources:
        return target
    with staged_folder(target, log=log) as staging:
        shutil.copytree(demo / "train", staging / "train")
        shutil.copytree(demo / "eval", staging / "eval")
        for name in OOD_TASKS:
            spec = json.loads((proxy_suite / "eval" / f"{name}.json").read_text())
            data = proxy_suite / "eval" / spec["path"]
            copy = shutil.copytree if data.is_dir() else shutil.copyfile
            copy(data, staging / "eval" / spec["path"])
            (staging / "eval" / f"{name}.json").write_text(json.dumps(spec, indent=2) + "\n")
        spread = json.loads((proxy_suite / "manifest.json").read_text())["spread_texts"]
        shutil.copyfile(proxy_suite / spread, staging / "spread_texts.jsonl")
        (staging / "manifest.json").write_text(json.dumps(
            {"sources": sources, "spread_texts": "spread_texts.jsonl", "ood_tasks": list(OOD_TASKS)}, indent=2) + "\n")
    return target


def build_demo_plan(seeds: tuple[int, ...] = DEMO_SEEDS, more_seeds: tuple[int, ...] = MORE_SEEDS) -> Plan:
    """The controlled runs of issue 18 (part ``demo18``), seed by seed.

    The demo's tasks are scored at the demo's evaluation lengths (the settings'); the
    out-of-domain tasks at the proxy suite's (``OOD_LENGTHS``), where BBC articles at 400 tokens
    would make each evaluation take ten minutes on 2 cores.
    """
    plan = Plan()
    part = "demo18"

    def evaluate(name: str, base: str, adapter: str | None = None, ood: bool = False, **fields: object) -> None:
        plan.add(Evaluate(name, part, base, "curve", adapter, **fields))
        if ood:
            fields["spread"] = False  # measured once, by the job above
            plan.add(Evaluate(f"{name}-ood", part, base, "ood", adapter, **fields, max_length=OOD_LENGTHS[0],
                              doc_max_length=OOD_LENGTHS[1]))

    evaluate("demo-Untrained-EOS", "smollm2", ood=True, spread=True)
    evaluate("demo-Untrained-mean", "smollm2", ood=True, pooling_mode="mean")
    evaluate("demo-Untrained-EOS-fp32", "smollm2", dtype="float32")
    for seed in seeds:
        for setting, overrides in STAGE_I_SETTINGS.items():
            run = plan.add(Train(f"demo-StageI-{setting}-s{seed}", part, "I", DEMO_CONFIGS / "stage_I_smollm2.json",
                                 "smollm2", 20, 10, _overrides(seed=seed, **overrides), seed))
            evaluate(f"{run.name}@final", run.name, dtype="float32" if overrides else "bfloat16", spread=True)
        for setting, (stage_one, overrides) in STAGE_II_SETTINGS.items():
            dtype = "float32" if overrides.get("torch_dtype") == "float32" else "bfloat16"
            for arm in ("Baseline", "Anchor") if setting in BASELINE_SETTINGS else ("Anchor",):
                base = "smollm2" if arm == "Baseline" else f"demo-StageI-{stage_one}-s{seed}"
                name = f"demo-{arm}-{setting}-s{seed}"
                config = DEMO_CONFIGS / f"stage_II_{arm.lower()}_smollm2.json"
                run = plan.add(Train(name, part, "II", config, base, 20, 10, _overrides(seed=seed, **overrides), seed))
                ood = setting in WITH_OOD or (arm == "Baseline" and setting == "stageII-fp32")
                evaluate(f"{name}@final", base, run.name, ood=ood, dtype=dtype, spread=True)
            if setting == "default":  # evaluation precision alone
                for arm, base in (("Baseline", "smollm2"), ("Anchor", f"demo-StageI-default-s{seed}")):
                    evaluate(f"demo-{arm}-default-s{seed}@final-fp32eval", base, f"demo-{arm}-default-s{seed}",
                             dtype="float32")
    shipped = "lr1e-3"  # the demo's Stage II since issue 18
    for seed in more_seeds:
        stage_one = plan.add(Train(f"demo-StageI-default-s{seed}", part, "I", DEMO_CONFIGS / "stage_I_smollm2.json",
                                   "smollm2", 20, 10, _overrides(seed=seed), seed))
        evaluate(f"{stage_one.name}@final", stage_one.name, spread=True)
        for arm, base in (("Baseline", "smollm2"), ("Anchor", stage_one.name)):
            overrides = STAGE_II_SETTINGS[shipped][1]
            run = plan.add(Train(f"demo-{arm}-{shipped}-s{seed}", part, "II",
                                 DEMO_CONFIGS / f"stage_II_{arm.lower()}_smollm2.json", base, 20, 10,
                                 _overrides(seed=seed, **overrides), seed))
            evaluate(f"{run.name}@final", base, run.name, ood=True, spread=True)
    # An interrupted campaign holds whole seeds of the main question (see SECONDARY); the order
    # within each group stays seed by seed.
    plan.jobs.sort(key=_phase)
    return plan


def _phase(job: Evaluate | Train) -> int:
    if _seed(job.name) in MORE_SEEDS:
        return 5
    if any(f"-{setting}-s" in job.name for setting in CANDIDATES):
        return 4 if "-fp32-" in job.name else 3
    if any(f"-{setting}-s" in job.name for setting in SECONDARY):
        return 2
    return 1 if job.name.endswith("-ood") else 0


def _seed(name: str) -> int | None:
    match = re.search(r"-s(\d+)(@|$)", name)
    return int(match.group(1)) if match else None
