"""The experiments of ``make reproduce-small`` as data: which runs train, from what, and what is evaluated.

Each job has a name that is also its folder and state file. Jobs come grouped in parts (``--only``
selects parts) and ordered seed by seed, so that an interrupted campaign holds complete seeds.
Everything a job does follows from its fields; the executor (``jobs.py``) runs them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SEEDS = (1, 2, 3)
#: Stage I objectives of the paper's Tables 3-4: alpha weighs EBQ2D against EBD2Q
ARMS = {"OnlyD2Q": 0.0, "Anchor": 0.2, "Alpha0.5": 0.5, "Alpha0.8": 0.8, "OnlyQ2D": 1.0}
FIGURE_2_ARMS = ("Baseline", "Anchor", "OnlyQ2D", "OnlyD2Q")
STAGE_I_STEPS = 100
STAGE_II_STEPS = 200
EVAL_EVERY = 25
PARTS = ("references", "figure2", "alpha", "table5", "diagnosis", "qwen")

CONFIGS = Path("train_configs/reproduce_small")


@dataclass(frozen=True)
class Train:
    """One training run of ``experiments/run_stage_<stage>.py`` (or ``run_<stage>.py``) with ``config`` and ``overrides``.

    ``base`` names the run whose output it starts from, or a model key of ``models.py``.
    ``stop`` is its ``stop_after_n_steps`` (None: as many Stage II steps as ``matched_to``, a
    Stage I run, took wall time, after the ``stop`` of the run in the same folder: Table 5);
    ``save_every`` its ``save_steps``; ``output`` its folder (default: its name), so that a run can
    continue another one's training.
    """

    name: str
    part: str
    stage: str  # "I", "II", or one of llm2vec's recipes: "mntp", "simcse"
    config: Path
    base: str
    stop: int | None
    save_every: int
    overrides: tuple[tuple[str, str], ...] = ()
    seed: int = 1
    output: str | None = None
    matched_to: str | None = None

    @property
    def folder(self) -> str:
        return self.output or self.name


@dataclass(frozen=True)
class Evaluate:
    """One model on a set of suite tasks: ``base`` (a model key or a run) + optionally the adapter
    of run ``adapter`` at checkpoint ``step`` (None: its final adapter). ``tasks`` is "curve" (the
    settings' curve tasks), "full" (all) or "ood" (the settings' out-of-domain tasks);
    ``max_length``/``doc_max_length`` replace the settings' evaluation lengths for this job."""

    name: str
    part: str
    base: str
    tasks: str
    adapter: str | None = None
    step: int | None = None
    pooling_mode: str | None = None
    dtype: str = "bfloat16"
    spread: bool = False  # also measure the mean pairwise cosine of the embeddings
    max_length: int | None = None
    doc_max_length: int | None = None


@dataclass(frozen=True)
class Probe:
    """Does the reconstruction of model ``base`` (a Stage I run, or the untrained model) use its
    anchor? Both reconstruction losses of the suite's held-out BBC headline -> article pairs, with
    each pair's own anchors and with another pair's (``llm2vec.evaluation.anchor_probe``)."""

    name: str
    part: str
    base: str
    seed: int = 0  # of the derangement that hands each pair another pair's anchors


Job = Train | Evaluate | Probe


def _overrides(**values: object) -> tuple[tuple[str, str], ...]:
    return tuple((key, str(value).lower() if isinstance(value, bool) else str(value)) for key, value in values.items())


@dataclass
class Plan:
    """The jobs, in the order they run."""

    jobs: list[Job] = field(default_factory=list)

    def add(self, job: Job) -> Job:
        if any(j.name == job.name for j in self.jobs):
            raise ValueError(f"two jobs named {job.name}")
        self.jobs.append(job)
        return job

    def part(self, names: tuple[str, ...]) -> list[Job]:
        return [job for job in self.jobs if job.part in names]


def _stage_two_with_curve(plan: Plan, part: str, name: str, base: str, seed: int, stop: int = STAGE_II_STEPS,
                          **overrides: object) -> Train:
    run = plan.add(Train(name, part, "II", CONFIGS / "stage_II_smollm2.json", base, stop, EVAL_EVERY,
                         _overrides(seed=seed, **overrides), seed))
    for step in range(EVAL_EVERY, stop + 1, EVAL_EVERY):
        plan.add(Evaluate(f"{name}@{step}", part, base, "full" if step == stop else "curve", name, step,
                          spread=step == stop))
    return run


def build_plan(seeds: tuple[int, ...] = SEEDS) -> Plan:
    """Every job of the campaign on SmolLM2-135M-Instruct, then the Qwen2.5-Coder-1.5B rows."""
    plan = Plan()
    # Reference rows: untrained models with EOS and with mean pooling, and a real small embedder.
    plan.add(Evaluate("SmolLM2-EOS", "references", "smollm2", "full", spread=True))
    plan.add(Evaluate("SmolLM2-mean", "references", "smollm2", "full", pooling_mode="mean"))
    plan.add(Evaluate("SmolLM2-EOS@curve", "references", "smollm2", "curve"))
    plan.add(Evaluate("all-MiniLM-L6-v2", "references", "minilm", "full"))
    # Whether Stage I teaches the anchor anything: its probe against the untrained model's.
    plan.add(Probe("SmolLM2@probe", "diagnosis", "smollm2"))
    for seed in seeds:
        # Figure 2 / Table 9: Stage II every 25 steps for Baseline and three Stage I objectives.
        _stage_two_with_curve(plan, "figure2", f"Baseline-s{seed}", "smollm2", seed)
        for arm in FIGURE_2_ARMS[1:]:
            stage_one = plan.add(Train(f"StageI-{arm}-s{seed}", "figure2", "I", CONFIGS / "stage_I_smollm2.json",
                                       "smollm2", STAGE_I_STEPS, STAGE_I_STEPS // 2,
                                       _overrides(seed=seed, alpha=ARMS[arm]), seed))
            plan.add(Evaluate(f"StageI-{arm}-s{seed}@curve", "figure2", stage_one.name, "curve", spread=True))
            _stage_two_with_curve(plan, "figure2", f"{arm}-s{seed}", stage_one.name, seed)
        for arm in FIGURE_2_ARMS[1:]:
            plan.add(Probe(f"StageI-{arm}-s{seed}@probe", "diagnosis", f"StageI-{arm}-s{seed}"))
        if seed == seeds[0]:
            add_longer_stage_one(plan, seed)
        # Why the Baseline stays at chance level in the demo: one change at a time, 100 steps.
        for label, overrides in DIAGNOSES.items():
            base = "smollm2" if label.startswith("Baseline") else f"StageI-Anchor-s{seed}"
            run = plan.add(Train(f"{label}-s{seed}", "diagnosis", "II", CONFIGS / "stage_II_smollm2.json", base,
                                 DIAGNOSIS_STEPS, DIAGNOSIS_STEPS // 2, _overrides(seed=seed, **overrides), seed))
            plan.add(Evaluate(f"{label}-s{seed}@{DIAGNOSIS_STEPS}", "diagnosis", base, "full", run.name,
                              pooling_mode=overrides.get("pooling_mode"), dtype=_dtype(overrides), spread=True))
    for seed in seeds:
        # Tables 3-4: the other alphas, final scores only.
        for arm in ("Alpha0.5", "Alpha0.8"):
            stage_one = plan.add(Train(f"StageI-{arm}-s{seed}", "alpha", "I", CONFIGS / "stage_I_smollm2.json",
                                       "smollm2", STAGE_I_STEPS, STAGE_I_STEPS // 2,
                                       _overrides(seed=seed, alpha=ARMS[arm]), seed))
            plan.add(Train(f"{arm}-s{seed}", "alpha", "II", CONFIGS / "stage_II_smollm2.json", stage_one.name,
                           STAGE_II_STEPS, STAGE_II_STEPS // 2, _overrides(seed=seed), seed))
            plan.add(Evaluate(f"{arm}-s{seed}@{STAGE_II_STEPS}", "alpha", stage_one.name, "full", f"{arm}-s{seed}"))
            plan.add(Probe(f"StageI-{arm}-s{seed}@probe", "alpha", stage_one.name))
    for seed in seeds:
        # Table 5: the Baseline trained on for as long (wall time) as the Anchor arm's Stage I took.
        long = plan.add(Train(f"Baseline-long-s{seed}", "table5", "II", CONFIGS / "stage_II_smollm2.json", "smollm2",
                              None, EVAL_EVERY, _overrides(seed=seed), seed, output=f"Baseline-s{seed}",
                              matched_to=f"StageI-Anchor-s{seed}"))
        plan.add(Evaluate(f"Baseline-long-s{seed}@final", "table5", "smollm2", "full", long.folder))
    add_qwen(plan)
    return plan


DIAGNOSIS_STEPS = 100
#: a whole epoch of the suite's training pairs (2,960 kept in batches of 8), where the linear
#: schedule of the 100-step Stage I runs ends; probed on the way
STAGE_I_EPOCH_STOPS = (100, 200, 370)
LONGER_STAGE_II_STEPS = 50


def add_longer_stage_one(plan: Plan, seed: int) -> None:
    """Does a longer Stage I make the anchor carry its text, and give Stage II a head start? One seed:
    the Anchor arm's Stage I continued in its own folder to a whole epoch, the anchor probed at
    each stop, then the first 50 Stage II steps from the epoch's model (the steps where the paper's
    head start shows). The first stop repeats ``StageI-Anchor-s<seed>`` on this machine."""
    folder = f"StageI-AnchorEpoch-s{seed}"
    for stop in STAGE_I_EPOCH_STOPS:
        name = folder if stop == STAGE_I_EPOCH_STOPS[-1] else f"StageI-AnchorEpoch{stop}-s{seed}"
        plan.add(Train(name, "diagnosis", "I", CONFIGS / "stage_I_smollm2.json", "smollm2", stop, STAGE_I_STEPS // 2,
                       _overrides(seed=seed, alpha=ARMS["Anchor"]), seed, output=folder))
        plan.add(Probe(f"{name}@probe", "diagnosis", name))
    _stage_two_with_curve(plan, "diagnosis", f"AnchorEpoch-s{seed}", folder, seed, stop=LONGER_STAGE_II_STEPS)
#: one change each against the Figure 2 runs (bf16 autocast, loss scale 50, EOS pooling)
DIAGNOSES: dict[str, dict[str, object]] = {
    "Baseline-fp32": {"bf16": False, "torch_dtype": "float32"},
    "Baseline-scale20": {"loss_scale": 20.0},
    "Baseline-mean": {"pooling_mode": "mean"},
    "Anchor-fp32": {"bf16": False, "torch_dtype": "float32"},
}


def add_qwen(plan: Plan) -> None:
    """Qwen2.5-Coder-1.5B-Instruct, one seed: untrained with EOS and mean pooling, and a short LoRA
    Stage II (Baseline), each on the curve tasks first and then on the whole suite. Its
    full-parameter Stage I is measured, not run (docs/reproduction_small.md says what it needs)."""
    plan.add(Evaluate("Qwen-EOS@curve", "qwen", "qwen", "curve", spread=True))
    plan.add(Evaluate("Qwen-mean@curve", "qwen", "qwen", "curve", pooling_mode="mean"))
    run = plan.add(Train("Qwen-Baseline", "qwen", "II", CONFIGS / "stage_II_qwen.json", "qwen", QWEN_STAGE_II_STEPS,
                         QWEN_STAGE_II_STEPS // 2, _overrides(seed=1), 1))
    plan.add(Evaluate(f"Qwen-Baseline@{QWEN_STAGE_II_STEPS}", "qwen", "qwen", "curve", run.name, spread=True))
    # The rest of the suite, after the curve tasks: an evaluation named like the curve one before its
    # "@" shares its results folder, so the three curve tasks are not encoded again.
    plan.add(Evaluate("Qwen-EOS", "qwen", "qwen", "full", spread=True))
    plan.add(Evaluate("Qwen-mean", "qwen", "qwen", "full", pooling_mode="mean"))
    plan.add(Evaluate(f"Qwen-Baseline@{QWEN_STAGE_II_STEPS}-all", "qwen", "qwen", "full", run.name, spread=True))


QWEN_STAGE_II_STEPS = 30


def _dtype(overrides: dict[str, object]) -> str:
    return "float32" if overrides.get("torch_dtype") == "float32" else "bfloat16"
