"""Tables and plots of docs/reproduction_small.md from the finished jobs' state files.

Every number over seeds is a mean with its sample standard deviation; a difference between two
arms counts only when it is larger than the larger of their two standard deviations (with 3 seeds,
anything closer is "no difference"). Scores are mteb main scores x 100 on the proxy suite, never
MTEB. The paper's corresponding numbers (Llama-3.2-1B on MTEB or its 15-task subset) stand beside
for the direction of an effect, not for its size.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from repro_small.plan import (
    ARMS,
    DIAGNOSES,
    DIAGNOSIS_STEPS,
    EVAL_EVERY,
    FIGURE_2_ARMS,
    LONGER_STAGE_II_STEPS,
    QWEN_STAGE_II_STEPS,
    STAGE_I_EPOCH_STOPS,
    STAGE_II_STEPS,
    Train,
)

#: suite task -> mteb category, and which tasks share a corpus with the training pairs
CATEGORY = {
    "SmallBBCHeadlineRetrieval": "Retrieval", "SmallReviewPlotRetrieval": "Retrieval",
    "SmallReviewPlotReranking": "Reranking", "SmallBBCClustering": "Clustering",
    "SmallNewsgroupsClustering": "Clustering", "SmallReviewPairClassification": "PairClassification",
    "SmallBBCClassification": "Classification", "SmallReviewPolarityClassification": "Classification",
    "SmallLeeSTS": "STS",
}
IN_DOMAIN = {"SmallBBCHeadlineRetrieval", "SmallBBCClassification", "SmallBBCClustering", "SmallLeeSTS"}
CATEGORIES = ("Retrieval", "Reranking", "Clustering", "PairClassification", "Classification", "STS")
PAPER_ARM = {"Baseline": "llama3.2-1b-baseline", "OnlyD2Q": "llama3.2-1b-onlyd2q", "OnlyQ2D": "llama3.2-1b-onlyq2d",
             "Anchor": "llama3.2-1b-anchor"}


# ---------------------------------------------------------------------------- numbers
def mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def cell(values: Sequence[float], digits: int = 2) -> str:
    mean, std = mean_std(values)
    if math.isnan(mean):
        return "–"
    return f"{mean:.{digits}f} ± {std:.{digits}f} (n={len(values)})" if len(values) > 1 else f"{mean:.{digits}f} (n=1)"


def differs(a: Sequence[float], b: Sequence[float]) -> str:
    """'+x.xx', '−x.xx' when the means differ by more than the larger spread, else 'no difference'."""
    (ma, sa), (mb, sb) = mean_std(a), mean_std(b)
    if math.isnan(ma) or math.isnan(mb):
        return "–"
    delta = ma - mb
    if len(a) < 2 or len(b) < 2 or abs(delta) <= max(sa, sb):
        return f"no difference ({delta:+.2f})"
    return f"{delta:+.2f}"


def average(scores: Mapping[str, float], tasks: Iterable[str] | None = None) -> float:
    names = [t for t in (tasks if tasks is not None else scores) if t in scores]
    return 100 * statistics.fmean(scores[t] for t in names) if names else math.nan


def category_scores(scores: Mapping[str, float]) -> dict[str, float]:
    out = {}
    for category in CATEGORIES:
        values = [100 * v for task, v in scores.items() if CATEGORY.get(task) == category]
        out[category] = statistics.fmean(values) if values else math.nan
    out["Average"] = average(scores)
    out["In-domain"] = average(scores, IN_DOMAIN)
    out["Out-of-domain"] = average(scores, set(CATEGORY) - IN_DOMAIN)
    return out


# ---------------------------------------------------------------------------- collecting
class Results:
    """The finished jobs' records, by job name."""

    def __init__(self, executor: Any) -> None:
        self.executor = executor
        self.records = {job.name: executor.state(job.name) for job in executor.plan.jobs if executor.done(job)}

    def scores(self, name: str) -> dict[str, float] | None:
        record = self.records.get(name)
        return None if record is None else record.get("scores")

    def trained_as_evaluated(self, run: str, evaluation: str) -> dict[str, Any] | None:
        """The training record of ``run`` that ``evaluation`` scored. A run whose folder was lost with
        another machine is repeated here when a later job needs the folder; its record then describes
        the repeat, while the evaluations that had finished scored the original, whose record the
        repeat keeps (``repeated.adopted_record``). A row that puts a run's losses or time beside its
        scores takes them from the run that was scored."""
        record, scored = self.records.get(run), self.records.get(evaluation)
        if record is None or scored is None or "adopted_record" not in record.get("repeated", {}):
            return record  # (the first repeats did not keep the original; theirs is the only record)
        repeated = record["repeated"]
        if "evaluations_of_adopted_run" in repeated:
            of_original = evaluation in repeated["evaluations_of_adopted_run"]
        else:
            # records repeated before the list was kept: an evaluation made on the repeat's machine
            # names that machine; the originals were scored elsewhere (or before records named one)
            of_original = scored.get("machine") != record.get("machine")
        return repeated["adopted_record"] if of_original else record

    def over_seeds(self, pattern: str, seeds: Sequence[int], value: Any, scored_by: str | None = None) -> list[float]:
        """``value`` of each seed's record of ``pattern`` that exists and gives a number. With
        ``scored_by`` (an evaluation's pattern), a training run's record is the one that evaluation
        scored (see ``trained_as_evaluated``)."""
        out = []
        for seed in seeds:
            name = pattern.format(seed=seed)
            record = self.records.get(name) if scored_by is None else self.trained_as_evaluated(name, scored_by.format(seed=seed))
            if record is not None:
                result = value(record)
                if result is not None and not math.isnan(result):
                    out.append(result)
        return out


def _seeds(executor: Any) -> list[int]:
    return sorted({job.seed for job in executor.plan.jobs if isinstance(job, Train)})


def _curve_name(arm: str, step: int) -> str:
    if step == 0:
        return "SmolLM2-EOS@curve" if arm == "Baseline" else f"StageI-{arm}-s{{seed}}@curve"
    return f"{arm}-s{{seed}}@{step}"


def _loss_at(step: int, key: str = "loss") -> Any:
    """A training record's logged ``key`` at ``step`` (NaN if that step was not logged)."""
    return lambda record: record["losses"].get(str(step), record["losses"].get(step, {})).get(key, math.nan)


def _curve_value(curve_tasks: Sequence[str]) -> Any:
    return lambda record: average(record["scores"], curve_tasks)


# ---------------------------------------------------------------------------- sections
def references_table(results: Results) -> list[str]:
    rows = [("all-MiniLM-L6-v2 (sentence-transformers)", "all-MiniLM-L6-v2"),
            ("SmolLM2-135M-Instruct, untrained, EOS pooling", "SmolLM2-EOS"),
            ("SmolLM2-135M-Instruct, untrained, mean pooling", "SmolLM2-mean"),
            ("Qwen2.5-Coder-1.5B-Instruct, untrained, EOS pooling", "Qwen-EOS"),
            ("Qwen2.5-Coder-1.5B-Instruct, untrained, mean pooling", "Qwen-mean")]
    tasks = list(CATEGORY)
    lines = ["| model | " + " | ".join(t.removeprefix("Small") for t in tasks) + " | in-domain | out-of-domain | all |",
             "|---|" + "---:|" * (len(tasks) + 3)]
    for label, name in rows:
        scores = results.scores(name)
        if scores is None:
            lines.append(f"| {label} | " + " | ".join("–" for _ in tasks) + " | – | – | – |")
            continue
        cats = category_scores(scores)
        lines.append(f"| {label} | " + " | ".join(f"{100 * scores[t]:.2f}" if t in scores else "–" for t in tasks)
                     + f" | {cats['In-domain']:.2f} | {cats['Out-of-domain']:.2f} | {cats['Average']:.2f} |")
    return lines


def figure2_table(results: Results, seeds: Sequence[int], curve_tasks: Sequence[str]) -> tuple[list[str], dict]:
    from llm2vec.reporting.paper_results import load_table

    paper = load_table("table9").results
    steps = list(range(0, STAGE_II_STEPS + 1, EVAL_EVERY))
    series: dict[str, list[tuple[int, list[float]]]] = {}
    header = "| step | " + " | ".join(FIGURE_2_ARMS) + " | Anchor − Baseline | paper: Baseline / Anchor (Llama-3.2-1B, subset) |"
    lines = [header, "|---:|" + "---|" * (len(FIGURE_2_ARMS) + 2)]
    for step in steps:
        row = []
        values_by_arm = {}
        for arm in FIGURE_2_ARMS:
            values = results.over_seeds(_curve_name(arm, step), seeds if step else seeds, _curve_value(curve_tasks))
            if step == 0 and arm == "Baseline":
                record = results.records.get("SmolLM2-EOS@curve")
                values = [average(record["scores"], curve_tasks)] if record else []
            values_by_arm[arm] = values
            series.setdefault(arm, []).append((step, values))
            row.append(cell(values))
        reference = paper.get(PAPER_ARM["Baseline"], {}).get(str(step)), paper.get(PAPER_ARM["Anchor"], {}).get(str(step))
        paper_cell = f"{reference[0]} / {reference[1]}" if reference[0] is not None else "–"
        lines.append(f"| {step} | " + " | ".join(row) + f" | {differs(values_by_arm['Anchor'], values_by_arm['Baseline'])} | {paper_cell} |")
    return lines, series


def table3(results: Results, seeds: Sequence[int]) -> list[str]:
    from llm2vec.reporting.paper_results import load_table

    paper = load_table("table3").results
    columns = (*CATEGORIES, "In-domain", "Out-of-domain", "Average")
    lines = ["| arm (alpha) | " + " | ".join(columns) + " | paper Average (MTEB56) |",
             "|---|" + "---|" * (len(columns) + 1)]
    for arm, alpha in (("Baseline", "–"), ("OnlyD2Q", 0.0), ("OnlyQ2D", 1.0), ("Anchor", 0.2)):
        name = f"{arm}-s{{seed}}@{STAGE_II_STEPS}"
        cells = [cell(results.over_seeds(name, seeds, lambda r, c=c: category_scores(r["scores"])[c])) for c in columns]
        lines.append(f"| {arm} ({alpha}) | " + " | ".join(cells) + f" | {paper[PAPER_ARM[arm]]['Average']} |")
    return lines


def table4(results: Results, seeds: Sequence[int]) -> list[str]:
    from llm2vec.reporting.paper_results import load_table

    paper = {row["alpha"]: row["Subset15"] for row in load_table("table4").results.values()}
    lines = ["| alpha | arm | Average (all 9) | In-domain | Out-of-domain | paper (subset15) |", "|---:|---|---|---|---|---:|"]
    for arm, alpha in sorted(ARMS.items(), key=lambda item: item[1]):
        name = f"{arm}-s{{seed}}@{STAGE_II_STEPS}"
        cells = [cell(results.over_seeds(name, seeds, lambda r, c=c: category_scores(r["scores"])[c]))
                 for c in ("Average", "In-domain", "Out-of-domain")]
        lines.append(f"| {alpha} | {arm} | " + " | ".join(cells) + f" | {paper.get(alpha, '–')} |")
    return lines


def table5(results: Results, seeds: Sequence[int]) -> list[str]:
    from llm2vec.reporting.paper_results import load_table

    paper = load_table("table5").results
    lines = ["| run | Stage I steps | Stage II steps | Average (all 9) | training wall time | paper |",
             "|---|---:|---:|---|---|---:|"]
    long_steps = [results.records[f"Baseline-long-s{s}"]["steps"] for s in seeds if f"Baseline-long-s{s}" in results.records]
    # (The longer run's step count was matched with the records as they are here; the time column
    # is that of the runs each row's scores come from, see Results.trained_as_evaluated.)
    rows = [
        ("Baseline", f"Baseline-s{{seed}}@{STAGE_II_STEPS}", 0, STAGE_II_STEPS, ["Baseline-s{seed}"], paper["llama3.2-1b-baseline"]["Subset15"]),
        # The long run's train_seconds already covers all its steps from step 0 (the executor
        # records seconds per step x stop), so the Baseline run it continued is not added again.
        ("Baseline, trained on as long as Stage I took", "Baseline-long-s{seed}@final", 0,
         "/".join(map(str, long_steps)) or "–", ["Baseline-long-s{seed}"], paper["llama3.2-1b-baseline-3000"]["Subset15"]),
        ("Anchor (Stage I + Stage II)", f"Anchor-s{{seed}}@{STAGE_II_STEPS}", 100, STAGE_II_STEPS,
         ["StageI-Anchor-s{seed}", "Anchor-s{seed}"], paper["llama3.2-1b-anchor"]["Subset15"]),
    ]
    for label, name, stage_one, stage_two, runs, reference in rows:
        scores = results.over_seeds(name, seeds, lambda r: category_scores(r["scores"])["Average"])
        def minutes(seed: int, runs: list[str] = runs, name: str = name) -> float:
            trained = [results.trained_as_evaluated(run.format(seed=seed), name.format(seed=seed)) for run in runs]
            return sum((record or {}).get("train_seconds", math.nan) for record in trained) / 60

        wall = [value for value in map(minutes, seeds) if not math.isnan(value)]
        lines.append(f"| {label} | {stage_one} | {stage_two} | {cell(scores)} | {cell(wall)} min | {reference} |")
    return lines


def diagnosis_table(results: Results, seeds: Sequence[int], curve_tasks: Sequence[str]) -> list[str]:
    # The diagnosis runs stop at DIAGNOSIS_STEPS while the bf16 arms ran STAGE_II_STEPS and were
    # evaluated on all nine tasks only at the end; the curve tasks at DIAGNOSIS_STEPS are the one
    # score every row has at the same step, so the comparison reads that column.
    lines = [("| Stage II variant | loss at step 1 | loss at step 25 | loss at step {d} | accuracy at {d} "
              "| curve average at step {d} | mean pairwise cosine (bf16 rows: at step {s}) | average, all 9 (bf16 rows: at step {s}) |"
              ).format(d=DIAGNOSIS_STEPS, s=STAGE_II_STEPS),
             "|---|---|---|---|---|---|---|---|"]
    variants = [("Baseline (bf16, scale 50, EOS)", "Baseline-s{seed}", f"Baseline-s{{seed}}@{STAGE_II_STEPS}")]
    variants += [(label, f"{label}-s{{seed}}", f"{label}-s{{seed}}@{DIAGNOSIS_STEPS}") for label in DIAGNOSES]
    variants.append(("Anchor (bf16, scale 50, EOS)", "Anchor-s{seed}", f"Anchor-s{{seed}}@{STAGE_II_STEPS}"))
    for label, run, evaluation in variants:
        # the losses of the run the row's scores measured (a repeated run keeps the original's record)
        cells = [cell(results.over_seeds(run, seeds, _loss_at(step), scored_by=evaluation)) for step in (1, 25, DIAGNOSIS_STEPS)]
        cells.append(cell(results.over_seeds(run, seeds, _loss_at(DIAGNOSIS_STEPS, "accuracy"), scored_by=evaluation)))
        cells.append(cell(results.over_seeds(f"{run}@{DIAGNOSIS_STEPS}", seeds, _curve_value(curve_tasks))))
        cells.append(cell(results.over_seeds(evaluation, seeds, lambda r: r.get("mean_pairwise_cosine", math.nan))))
        cells.append(cell(results.over_seeds(evaluation, seeds, lambda r: category_scores(r["scores"])["Average"])))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


#: each query of a Stage II batch of 8 pairs scores 16 candidates (8 positives, 8 hard negatives),
#: so a model that scores them all alike sits at ln 16
CANDIDATES = 16
ESCAPE_WINDOW = 10


def escape_step(losses: Mapping[str, Any], last: int, window: int = ESCAPE_WINDOW) -> float:
    """The first step at which the mean loss of the last ``window`` steps is below half of
    ln(CANDIDATES): when the run has clearly left the all-alike state. NaN if it never does by ``last``."""
    values = [losses[str(step)]["loss"] for step in range(1, last + 1) if str(step) in losses]
    for end in range(window, len(values) + 1):
        if statistics.fmean(values[end - window:end]) < math.log(CANDIDATES) / 2:
            return float(end)
    return math.nan


def escape_table(results: Results, seeds: Sequence[int]) -> list[str]:
    """Every Stage II arm: how many steps it took to leave ln 16 (a run that never did by its last
    step shows as "never" in its seed's column), and its mean loss over the first 25 steps."""
    lines = [f"| Stage II run | steps to a {ESCAPE_WINDOW}-step mean loss below ln {CANDIDATES} / 2, seeds "
             + " / ".join(map(str, seeds)) + " | mean ± sd | mean loss, steps 1-25 |", "|---|---|---|---|"]
    arms = [(arm, STAGE_II_STEPS) for arm in (*FIGURE_2_ARMS, "Alpha0.5", "Alpha0.8")]
    arms += [(label, DIAGNOSIS_STEPS) for label in DIAGNOSES]
    for arm, last in arms:
        run, evaluation = f"{arm}-s{{seed}}", f"{arm}-s{{seed}}@{last}"
        records = [results.trained_as_evaluated(run.format(seed=seed), evaluation.format(seed=seed)) for seed in seeds]
        per_seed = [None if record is None else escape_step(record["losses"], last) for record in records]
        shown = ["–" if value is None else "never" if math.isnan(value) else f"{value:.0f}" for value in per_seed]
        steps = [value for value in per_seed if value is not None and not math.isnan(value)]
        early = results.over_seeds(run, seeds, lambda r: statistics.fmean(
            r["losses"][str(k)]["loss"] for k in range(1, EVAL_EVERY + 1)), scored_by=evaluation)
        lines.append(f"| {arm} | " + " / ".join(shown) + f" | {cell(steps, 1)} | {cell(early)} |")
    return lines


def probe_table(results: Results, seeds: Sequence[int]) -> list[str]:
    """The anchor probe: reconstruction loss (nats per token) of the held-out headline pairs with
    their own anchors and with another pair's; the gap is what the anchor tells about its text."""
    lines = ["| model (alpha) | Q2D own | Q2D other | Q2D gap | D2Q own | D2Q other | D2Q gap | pairs with own anchor better, Q2D / D2Q | query / document anchor cosine |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = [("SmolLM2-135M-Instruct, untrained", "SmolLM2@probe", [0])]
    rows += [(f"Stage I {arm} ({alpha})", f"StageI-{arm}-s{{seed}}@probe", seeds)
             for arm, alpha in sorted(ARMS.items(), key=lambda item: item[1])]
    for label, name, over in rows:
        def value(*keys: str) -> Any:
            def read(record: dict) -> float:
                node = record["probe"]
                for key in keys:
                    node = node[key]
                return node
            return read
        cells = [cell(results.over_seeds(name, over, value(direction, key)), 3)
                 for direction in ("q2d", "d2q") for key in ("own", "other", "gap")]
        share = " / ".join(cell([100 * v for v in results.over_seeds(name, over, value(d, "own_lower"))], 0) + " %"
                           for d in ("q2d", "d2q"))
        cosine = " / ".join(cell(results.over_seeds(name, over, value(k)), 3) for k in ("query_anchor_cosine", "document_anchor_cosine"))
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {share} | {cosine} |")
    return lines


def longer_stage_one_table(results: Results, seed: int, curve_tasks: Sequence[str]) -> list[str]:
    """One seed's Stage I continued to a whole epoch: its losses and anchor probe at each stop, then
    the curve tasks in its first Stage II steps beside the Figure 2 arms at the same steps."""
    lines = ["| Stage I steps | Q2D / D2Q loss, last 10 steps | Q2D gap | D2Q gap | query / document anchor cosine |",
             "|---:|---|---|---|---|"]
    for stop in STAGE_I_EPOCH_STOPS:
        name = f"StageI-AnchorEpoch-s{seed}" if stop == STAGE_I_EPOCH_STOPS[-1] else f"StageI-AnchorEpoch{stop}-s{seed}"
        run, probe = results.records.get(name), results.records.get(f"{name}@probe")
        if run is None:
            lines.append(f"| {stop} | – | – | – | – |")
            continue
        last = [run["losses"][k] for k in sorted(run["losses"], key=int)[-10:]]
        losses = " / ".join(f"{statistics.fmean(entry.get(key, math.nan) for entry in last):.2f}" for key in ("q2d_loss", "d2q_loss"))
        if probe is None:
            lines.append(f"| {stop} | {losses} | – | – | – |")
            continue
        p = probe["probe"]
        gaps = [f"{p[d]['gap']:+.3f} ± {p[d]['gap_std']:.3f} ({100 * p[d]['own_lower']:.0f} % own better)" for d in ("q2d", "d2q")]
        lines.append(f"| {stop} | {losses} | {gaps[0]} | {gaps[1]} | {p['query_anchor_cosine']:.3f} / {p['document_anchor_cosine']:.3f} |")
    lines += ["", "| Stage II step | after the epoch's Stage I (n=1) | Baseline | Anchor (100 Stage I steps) |", "|---:|---|---|---|"]
    seeds = _seeds(results.executor)
    for step in range(EVAL_EVERY, LONGER_STAGE_II_STEPS + 1, EVAL_EVERY):
        record = results.records.get(f"AnchorEpoch-s{seed}@{step}")
        value = f"{average(record['scores'], curve_tasks):.2f}" if record else "–"
        arms = [cell(results.over_seeds(_curve_name(arm, step), seeds, _curve_value(curve_tasks))) for arm in ("Baseline", "Anchor")]
        lines.append(f"| {step} | {value} | " + " | ".join(arms) + " |")
    return lines


def qwen_table(results: Results, seeds: Sequence[int], curve_tasks: Sequence[str]) -> list[str]:
    """Qwen2.5-Coder-1.5B-Instruct (one seed) beside SmolLM2-135M-Instruct: untrained with each
    pooling, then a short LoRA Stage II, on the curve tasks and on all nine. The SmolLM2 rows read the
    curve tasks out of the full-suite references and take its Baseline at the checkpoint nearest
    the Qwen run's last step (evaluated on the curve tasks only)."""
    nearest = min(range(EVAL_EVERY, STAGE_II_STEPS + 1, EVAL_EVERY), key=lambda step: abs(step - QWEN_STAGE_II_STEPS))
    tasks = list(curve_tasks)
    lines = ["| model | " + " | ".join(t.removeprefix("Small") for t in tasks)
             + " | curve average | all 9 | mean pairwise cosine | loss at step 1 / last step | training wall time |",
             "|---|" + "---|" * (len(tasks) + 5)]
    qwen_baseline = f"Qwen-Baseline@{QWEN_STAGE_II_STEPS}"
    smollm2_final = f"Baseline-s{{seed}}@{STAGE_II_STEPS}"
    # (label, curve-task evaluation, all-task evaluation, training run, its step at that evaluation)
    rows = [
        ("SmolLM2-135M, untrained, EOS", "SmolLM2-EOS", "SmolLM2-EOS", None, 0),
        ("SmolLM2-135M, untrained, mean", "SmolLM2-mean", "SmolLM2-mean", None, 0),
        (f"SmolLM2-135M, Baseline, {nearest} LoRA steps (lr 5e-4)", f"Baseline-s{{seed}}@{nearest}", None, "Baseline-s{seed}", nearest),
        (f"SmolLM2-135M, Baseline, {STAGE_II_STEPS} LoRA steps (lr 5e-4)", smollm2_final, smollm2_final, "Baseline-s{seed}",
         STAGE_II_STEPS),
        ("Qwen2.5-Coder-1.5B, untrained, EOS", "Qwen-EOS@curve", "Qwen-EOS", None, 0),
        ("Qwen2.5-Coder-1.5B, untrained, mean", "Qwen-mean@curve", "Qwen-mean", None, 0),
        (f"Qwen2.5-Coder-1.5B, Baseline, {QWEN_STAGE_II_STEPS} LoRA steps (lr 2e-4)", qwen_baseline,
         f"{qwen_baseline}-all", "Qwen-Baseline", QWEN_STAGE_II_STEPS),
    ]
    def complete(record: dict) -> float:  # the all-nine average only of a record with all nine tasks
        return average(record["scores"]) if set(CATEGORY) <= set(record["scores"]) else math.nan

    for label, evaluation, everything, run, last in rows:
        # the SmolLM2 Baselines have three seeds, the other rows one record (the pattern has no {seed})
        row_seeds = seeds if "{seed}" in evaluation else seeds[:1]
        cells = [cell(results.over_seeds(evaluation, row_seeds, lambda r, t=t: 100 * r["scores"].get(t, math.nan))) for t in tasks]
        cells.append(cell(results.over_seeds(evaluation, row_seeds, _curve_value(curve_tasks))))
        cells.append(cell(results.over_seeds(everything, row_seeds, complete)) if everything else "–")
        # the spread of the same model's embeddings, whichever of its two evaluations measured it
        spread = [results.over_seeds(name, row_seeds, lambda r: r.get("mean_pairwise_cosine", math.nan))
                  for name in (everything, evaluation) if name]
        cells.append(cell(next((values for values in spread if values), []), 3))
        if run is None:
            cells += ["–", "–"]
        else:
            losses = [cell(results.over_seeds(run, row_seeds, _loss_at(step), scored_by=evaluation)) for step in (1, last)]
            # (a run compared before its last step: its time up to that step is its share)
            minutes = results.over_seeds(run, row_seeds, lambda r: r["train_seconds"] * last / r["steps"] / 60, scored_by=evaluation)
            cells += [" / ".join(losses), f"{cell(minutes)} min"]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def plot_figure2(series: Mapping[str, list[tuple[int, list[float]]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6.4, 4.0))
    for arm, points in series.items():
        kept = [(step, values) for step, values in points if values]
        if not kept:
            continue
        steps = [step for step, _ in kept]
        means = [mean_std(values)[0] for _, values in kept]
        stds = [mean_std(values)[1] for _, values in kept]
        axis.plot(steps, means, marker="o", label=arm)
        axis.fill_between(steps, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)], alpha=0.2)
    axis.set_xlabel("Stage II step")
    axis.set_ylabel("curve tasks, mean main score × 100")
    axis.set_title("SmolLM2-135M: Stage II from the base model (Baseline)\nor from a Stage I model (the other arms)",
                   fontsize=10)
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)


def write_report(executor: Any, docs: Path) -> None:
    """Write docs/reproduction_small_results.md (tables), the Figure 2 plot and the raw numbers."""
    results = Results(executor)
    seeds = _seeds(executor)
    curve = executor.settings.curve_tasks
    figure2, series = figure2_table(results, seeds, curve)
    plot_figure2(series, docs / "images" / "reproduction_small_figure2.png")
    sections = {
        "references": references_table(results), "figure2": figure2, "table3": table3(results, seeds),
        "table4": table4(results, seeds), "table5": table5(results, seeds),
        "diagnosis": diagnosis_table(results, seeds, curve),
        "leaving ln 16": escape_table(results, seeds),
        "anchor probe": probe_table(results, seeds),
        "longer Stage I": longer_stage_one_table(results, seeds[0], curve),
        "Qwen2.5-Coder-1.5B": qwen_table(results, seeds, curve),
    }
    text = ["<!-- written by examples/reproduce_small/run_reproduction.py --report; do not edit -->"]
    for name, lines in sections.items():
        text += ["", f"### {name}", "", *lines]
    (docs / "reproduction_small_results.md").write_text("\n".join(text) + "\n")
    (docs / "data").mkdir(exist_ok=True)
    (docs / "data" / "reproduction_small_records.json").write_text(json.dumps(results.records, indent=1, default=str) + "\n")
    finished = sum(1 for job in executor.plan.jobs if job.name in results.records)
    print(f"{finished} of {len(executor.plan.jobs)} jobs finished; tables in {docs / 'reproduction_small_results.md'}")
