"""The campaign as data (``plan.py``, ``demo_campaign.py``) and the executor's bookkeeping (``jobs.py``)
without training anything: every job builds on something that exists, fingerprints follow what a job
depends on, Table 5's matched step count comes from the measured logs, and the log parser finds the
seconds per step of the attempt that finished."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro_small.demo_campaign import BASELINE_SETTINGS, DEMO_SEEDS, STAGE_I_SETTINGS, STAGE_II_SETTINGS, build_demo_plan
from repro_small.jobs import Executor, ReproductionError, Settings, seconds_per_step
from repro_small.plan import DIAGNOSES, EVAL_EVERY, FIGURE_2_ARMS, STAGE_II_STEPS, Evaluate, Probe, Train, build_plan

MODELS = ("smollm2", "minilm", "qwen")


def _log(steps: int, runtime: float, first_epoch: float = 0.0) -> str:
    lines = [f"{{'loss': '1.0', 'epoch': '{first_epoch + (step + 1) / 100:.2f}'}}" for step in range(steps)]
    return "\n".join(lines + [f"{{'train_runtime': '{runtime}', 'train_loss': '1.0'}}"]) + "\n"


def test_seconds_per_step_counts_only_the_attempt_that_finished() -> None:
    assert seconds_per_step(_log(10, 35.0)) == pytest.approx(3.5)
    # a killed attempt logged 4 steps, the resumed one went back to epoch 0.03 and trained 7 more
    killed = "\n".join(f"{{'loss': '1.0', 'epoch': '{(s + 1) / 100:.2f}'}}" for s in range(4))
    assert seconds_per_step(killed + "\n" + _log(7, 14.0, first_epoch=0.02)) == pytest.approx(2.0)
    assert seconds_per_step(killed) is None  # no attempt finished


@pytest.mark.parametrize("plan", [build_plan((1, 2)), build_demo_plan(DEMO_SEEDS)], ids=["proxy", "demo18"])
def test_every_job_builds_on_an_earlier_job_or_a_model(plan) -> None:
    seen: set[str] = set()
    folders: set[str] = set()
    for job in plan.jobs:
        assert job.base in MODELS or job.base in seen, job.name
        if isinstance(job, Evaluate) and job.adapter is not None:
            assert job.adapter in folders, job.name
        if isinstance(job, Train):
            folders.add(job.folder)
            assert ("seed", str(job.seed)) in job.overrides
        seen.add(job.name)


def test_the_figure_2_curves_have_every_arm_seed_and_step() -> None:
    plan = build_plan((1, 2, 3))
    names = {job.name for job in plan.jobs}
    for seed in (1, 2, 3):
        for arm in FIGURE_2_ARMS:
            for step in range(EVAL_EVERY, STAGE_II_STEPS + 1, EVAL_EVERY):
                assert f"{arm}-s{seed}@{step}" in names
        for label in DIAGNOSES:
            assert f"{label}-s{seed}" in names
    finals = [job for job in plan.jobs if isinstance(job, Evaluate) and job.name.endswith(f"@{STAGE_II_STEPS}")]
    assert all(job.tasks == "full" for job in finals)


def test_each_demo_setting_changes_one_thing() -> None:
    plan = build_demo_plan((7,))
    trains = {job.name: job for job in plan.jobs if isinstance(job, Train)}
    default = dict(trains["demo-Anchor-default-s7"].overrides)
    assert default == {"seed": "7"}
    for setting, (stage_one, overrides) in STAGE_II_SETTINGS.items():
        anchor = trains[f"demo-Anchor-{setting}-s7"]
        assert anchor.base == f"demo-StageI-{stage_one}-s7"
        changed = {k: v for k, v in dict(anchor.overrides).items() if k != "seed"}
        assert changed == {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in overrides.items()}
        assert (f"demo-Baseline-{setting}-s7" in trains) == (setting in BASELINE_SETTINGS)
    assert set(STAGE_I_SETTINGS) == {"default", "fp32"}


def _executor(tmp_path: Path, seeds: tuple[int, ...] = (1,)) -> Executor:
    suite = tmp_path / "suite"
    suite.mkdir(parents=True)
    (suite / "manifest.json").write_text(json.dumps({"tasks": ["x"]}))
    settings = Settings(root=tmp_path / "root", suite=suite, models={"smollm2": tmp_path / "model"})
    return Executor(build_plan(seeds), settings, log=lambda _: None)


def _finish(executor: Executor, job: Train, log: str) -> None:
    executor.log_path(job).parent.mkdir(parents=True, exist_ok=True)
    executor.log_path(job).write_text(log)
    executor.state_path(job.name).parent.mkdir(parents=True, exist_ok=True)
    executor.state_path(job.name).write_text(json.dumps({"fingerprint": executor.fingerprint(job)}))


def _write_state(executor: Executor, name: str, **record: object) -> None:
    """A finished job's state file, as the executor writes it, with ``record`` in it."""
    executor.state_path(name).parent.mkdir(parents=True, exist_ok=True)
    executor.state_path(name).write_text(json.dumps({"fingerprint": executor.fingerprint(executor.by_name[name]), **record}))


def test_table_5_trains_as_many_more_steps_as_stage_one_took_wall_time(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    long = executor.by_name["Baseline-long-s1"]
    with pytest.raises(ReproductionError, match="needs the measured runs"):
        executor.stop_of(long)
    stage_one, baseline = executor.by_name["StageI-Anchor-s1"], executor.by_name["Baseline-s1"]
    _finish(executor, stage_one, _log(stage_one.stop, 7.0 * stage_one.stop))  # 7 s per Stage I step
    _finish(executor, baseline, _log(baseline.stop, 3.5 * baseline.stop))  # 3.5 s per Stage II step
    assert executor.stop_of(long) == baseline.stop + 2 * stage_one.stop


def test_a_fingerprint_follows_the_jobs_it_builds_on(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    evaluation = executor.by_name["Anchor-s1@25"]
    before = executor.fingerprint(evaluation)
    stage_one = executor.by_name["StageI-Anchor-s1"]
    changed = Train(**{**stage_one.__dict__, "overrides": (*stage_one.overrides, ("learning_rate", "1e-5"))})
    executor.by_name["StageI-Anchor-s1"] = changed
    assert executor.fingerprint(evaluation) != before
    assert not executor.done(evaluation)


def test_selected_jobs_come_with_what_they_build_on_in_plan_order(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    figure2 = executor.plan.part(("figure2",))
    names = [job.name for job in executor.select(["Anchor-s1@50"], figure2)]
    # the evaluation needs the Stage II run that wrote step 50 and the Stage I run that run starts from
    assert names == ["StageI-Anchor-s1", "Anchor-s1", "Anchor-s1@50"]
    # a fixed-step evaluation of the Baseline does not drag in Table 5's continuation of its folder
    names = [job.name for job in executor.select(["Baseline-s[0-9]*"], figure2)]
    assert names == ["Baseline-s1", *(f"Baseline-s1@{step}" for step in range(EVAL_EVERY, STAGE_II_STEPS + 1, EVAL_EVERY))]
    # Table 5's final evaluation does need it, and the runs its step count is measured on
    names = [job.name for job in executor.select(["Baseline-long-s1@final"], executor.plan.part(("table5",)))]
    assert names == ["Baseline-s1", "StageI-Anchor-s1", "Baseline-long-s1", "Baseline-long-s1@final"]


def test_the_demo_table_shows_mean_spread_and_every_seed(tmp_path: Path) -> None:
    from repro_small.demo_campaign import DEMO_TASKS, OOD_TASKS, build_demo_plan
    from repro_small.report import Results
    from repro_small.report_demo import demo_table

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "manifest.json").write_text("{}")
    executor = Executor(build_demo_plan((1, 2)), Settings(root=tmp_path, suite=suite, models={}), log=lambda _: None)

    for seed, (score, loss) in {1: (0.5, 2.0), 2: (0.7, 1.0)}.items():
        _write_state(executor, f"demo-Anchor-fp32-s{seed}", losses={"1": {"loss": 3.0}, "20": {"loss": loss}})
        _write_state(executor, f"demo-Anchor-fp32-s{seed}@final", scores=dict.fromkeys(DEMO_TASKS, score),
                     mean_pairwise_cosine=0.9)
        _write_state(executor, f"demo-Anchor-fp32-s{seed}@final-ood", scores=dict.fromkeys(OOD_TASKS, 0.1))
    _write_state(executor, "demo-Untrained-mean", scores=dict.fromkeys(DEMO_TASKS, 0.25))
    rows = {line.split(" | ")[0].lstrip("| "): line for line in demo_table(Results(executor), (1, 2))}
    anchor = rows["Anchor (fp32)"].split(" | ")
    assert anchor[2] == "3.00 ± 0.00 (n=2)" and anchor[3] == "1.50 ± 0.71 (n=2)"
    assert anchor[5] == "60.00 ± 14.14 (n=2)" and anchor[6] == "1: 50.0, 2: 70.0" and anchor[7] == "10.00 ± 0.00 (n=2) |"
    assert "| 25.00 |" in rows["Untrained, mean pooling"]
    assert rows["Baseline (default)"].count("–") >= 5  # nothing finished: shown as missing, not as zero


def test_the_seeds_table_has_a_column_per_seed_and_leaves_unrun_seeds_empty(tmp_path: Path) -> None:
    from repro_small.demo_campaign import DEMO_TASKS, build_demo_plan
    from repro_small.report import Results
    from repro_small.report_demo import seeds_table

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "manifest.json").write_text("{}")
    executor = Executor(build_demo_plan((1, 2)), Settings(root=tmp_path, suite=suite, models={}), log=lambda _: None)
    for seed, score in ((1, 0.3), (3, 0.6)):  # seed 3 is one of the shipped demo's further seeds
        name = f"demo-Baseline-lr1e-3-s{seed}@final"
        executor.state_path(name).parent.mkdir(parents=True, exist_ok=True)
        executor.state_path(name).write_text(json.dumps({"fingerprint": executor.fingerprint(executor.by_name[name]),
                                                         "scores": dict.fromkeys(DEMO_TASKS, score)}))
    lines = seeds_table(Results(executor), (1, 2, 3))
    assert lines[0] == "| arm | seed 1 | seed 2 | seed 3 | mean ± sd (n) |"
    baseline = next(line for line in lines if line.startswith("| Baseline, lr 1e-3 (bf16)"))
    assert baseline == "| Baseline, lr 1e-3 (bf16) | 30.00 |  | 60.00 | 45.00 ± 21.21 (n=2) |"


def test_the_demo_campaign_reads_its_pinned_configs(tmp_path: Path, monkeypatch) -> None:
    import subprocess

    from repro_small import jobs
    from repro_small.demo_campaign import DEMO18_CONFIGS

    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "manifest.json").write_text(json.dumps({"tasks": ["x"]}))
    pinned = Settings(root=tmp_path / "a", suite=suite, models={"smollm2": tmp_path / "model"},
                      config_dir=jobs.REPO / DEMO18_CONFIGS)
    shipped = Settings(root=tmp_path / "b", suite=suite, models={"smollm2": tmp_path / "model"})
    plan = build_demo_plan((1,))
    job = next(j for j in plan.jobs if j.name == "demo-Baseline-default-s1")
    commands = []
    monkeypatch.setattr(jobs.subprocess, "run", lambda argv, **kw: commands.append(argv) or subprocess.CompletedProcess(argv, 1))
    for settings in (pinned, shipped):
        executor = Executor(plan, settings, log=lambda _: None)
        with pytest.raises(ReproductionError, match="training exited with 1"):
            executor.train(job)
    assert commands[0][2] == str(jobs.REPO / DEMO18_CONFIGS / "stage_II_baseline_smollm2.json")
    assert commands[1][2] == str(jobs.REPO / job.config)
    # the pinned copy is the demo as issue 18 found it: Stage II at learning rate 5e-4
    assert json.loads(Path(commands[0][2]).read_text())["learning_rate"] == 5e-4
    # and the job's fingerprint does not depend on where its config is read
    assert Executor(plan, pinned).fingerprint(job) == Executor(plan, shipped).fingerprint(job)


def _adoptable_records(executor: Executor, names: list[str]) -> dict[str, dict]:
    """Records as --report writes them, for jobs finished on another machine."""
    records = {}
    for name in names:
        job = executor.by_name[name]
        record = {"fingerprint": executor.fingerprint(job), "summary": f"{name} elsewhere"}
        if isinstance(job, Train):
            record.update(kind="train", steps=job.stop, train_seconds=2.0 * job.stop)
        records[name] = record
    return records


def test_records_from_another_machine_are_adopted_only_where_the_fingerprint_matches(tmp_path: Path) -> None:
    elsewhere = _executor(tmp_path / "a")
    records = _adoptable_records(elsewhere, ["Baseline-s1", "Baseline-s1@25", "Baseline-s1@50", "StageI-Anchor-s1"])
    records["Baseline-s1@50"]["fingerprint"] = "0" * 16  # written with other settings
    records["not-a-job"] = {"fingerprint": "x"}
    here = _executor(tmp_path / "b")
    _finish(here, here.by_name["StageI-Anchor-s1"], _log(3, 6.0))  # finished here too: keeps its own state
    own_state = here.state("StageI-Anchor-s1")

    adopted, refused = here.adopt(records, "records.json")

    assert adopted == ["Baseline-s1", "Baseline-s1@25"]
    assert refused == ["Baseline-s1@50"]
    assert here.done(here.by_name["Baseline-s1"]) and here.done(here.by_name["Baseline-s1@25"])
    assert not here.done(here.by_name["Baseline-s1@50"])
    assert here.state("Baseline-s1")["adopted_from"] == "records.json"
    assert here.state("Baseline-s1")["summary"] == "Baseline-s1 elsewhere"
    assert here.state("StageI-Anchor-s1") == own_state


def test_table_5_reads_the_seconds_per_step_of_adopted_records_without_their_logs(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    stage_one, baseline = executor.by_name["StageI-Anchor-s1"], executor.by_name["Baseline-s1"]
    records = _adoptable_records(executor, [stage_one.name, baseline.name])
    records[stage_one.name]["train_seconds"] = 6.0 * stage_one.stop
    records[baseline.name]["train_seconds"] = 1.5 * baseline.stop
    executor.adopt(records, "records.json")
    assert not executor.log_path(stage_one).exists()
    assert executor.stop_of(executor.by_name["Baseline-long-s1"]) == baseline.stop + 4 * stage_one.stop


class _Recorder:
    """Stands in for the trainer and the evaluator: records the order of the jobs and writes the
    checkpoint folder a real training leaves behind."""

    def __init__(self, executor: Executor) -> None:
        self.executor, self.ran = executor, []
        executor.train = self.train
        executor.evaluate = self.evaluate

    def train(self, job: Train) -> dict:
        self.ran.append(job.name)
        (self.executor.settings.runs_dir / job.folder / f"checkpoint-{job.stop}").mkdir(parents=True)
        losses = {"1": {"loss": 2.5}, "2": {"loss": 2.25 if job.name.startswith("Baseline") else 2.0}}
        return {"kind": "train", "steps": job.stop, "train_seconds": 1.0 * job.stop, "losses": losses, "summary": "here"}

    def evaluate(self, job: Evaluate) -> dict:
        self.ran.append(job.name)
        return {"kind": "evaluate", "scores": {}, "summary": "here"}


def test_a_job_that_reads_an_adopted_runs_folder_has_that_run_trained_again_first(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    records = _adoptable_records(executor, ["StageI-Anchor-s1", "Baseline-s1", "Baseline-s1@25"])
    for name in ("StageI-Anchor-s1", "Baseline-s1"):
        records[name]["losses"] = {"1": {"loss": 2.5}, "2": {"loss": 2.0}}
    executor.adopt(records, "records.json")
    recorder = _Recorder(executor)

    # Stage II of Anchor starts from the Stage I folder, which came only as a record
    executor.run([executor.by_name[name] for name in ("StageI-Anchor-s1", "Anchor-s1", "Anchor-s1@25")])
    assert recorder.ran == ["StageI-Anchor-s1", "Anchor-s1", "Anchor-s1@25"]
    repeated = executor.state("StageI-Anchor-s1")  # the new run's record replaced the adopted one
    assert "adopted_from" not in repeated
    assert set(repeated["machine"]) == {"cpu", "bf16_flags"}  # bf16 rounds by CPU: every record says where it ran
    adopted_record = repeated["repeated"].pop("adopted_record")
    assert repeated["repeated"] == {"adopted_from": "records.json", "steps_compared": 2,
                                    "same_losses_as_adopted": True, "first_different_step": None,
                                    "evaluations_of_adopted_run": []}
    assert adopted_record["summary"] == "StageI-Anchor-s1 elsewhere"  # the replaced measurement is kept

    # an adopted evaluation needs nothing; the next one of the same run needs the run's checkpoints
    recorder.ran.clear()
    executor.run([executor.by_name[name] for name in ("Baseline-s1", "Baseline-s1@25", "Baseline-s1@50")])
    assert recorder.ran == ["Baseline-s1", "Baseline-s1@50"]
    assert executor.state("Baseline-s1")["repeated"]["first_different_step"] == 2  # the recorder logs 2.25 there
    # the adopted @25 scored the original run; @50, evaluated after the repeat, scored the repeat
    assert executor.state("Baseline-s1")["repeated"]["evaluations_of_adopted_run"] == ["Baseline-s1@25"]

    # with the folders here now, nothing is trained twice
    recorder.ran.clear()
    executor.run([executor.by_name["Anchor-s1@50"]])
    assert recorder.ran == ["Anchor-s1@50"]


def test_every_stage_one_run_and_the_untrained_model_get_an_anchor_probe(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    probes = [job for job in executor.plan.jobs if isinstance(job, Probe)]
    stage_one = [job.name for job in executor.plan.jobs if isinstance(job, Train) and job.stage == "I"]
    assert sorted(p.base for p in probes) == sorted(["smollm2", *stage_one])
    # a probe reads its Stage I run's folder, so an adopted Stage I run is trained again for it
    probe = executor.by_name["StageI-Anchor-s1@probe"]
    assert [run.name for run in executor.reads_output_of(probe)] == ["StageI-Anchor-s1"]
    assert [job.name for job in executor.select(["StageI-Anchor-s1@probe"], executor.plan.part(("diagnosis",)))] == [
        "StageI-Anchor-s1", "StageI-Anchor-s1@probe"]


def test_the_probe_table_shows_own_other_and_gap_over_seeds(tmp_path: Path) -> None:
    from repro_small.report import Results, probe_table

    executor = Executor(build_plan((1, 2)), _executor(tmp_path).settings, log=lambda _: None)

    def finish(name: str, q2d_own: float, q2d_other: float) -> None:
        direction = {"own": q2d_own, "other": q2d_other, "gap": q2d_other - q2d_own, "gap_std": 0.1, "own_lower": 0.75}
        probe = {"pairs": 250, "q2d": direction, "d2q": {**direction, "own_lower": 0.5},
                 "query_anchor_cosine": 0.9, "document_anchor_cosine": 0.8}
        executor.state_path(name).parent.mkdir(parents=True, exist_ok=True)
        executor.state_path(name).write_text(json.dumps({"fingerprint": executor.fingerprint(executor.by_name[name]),
                                                         "probe": probe}))

    finish("SmolLM2@probe", 5.0, 5.0)
    finish("StageI-Anchor-s1@probe", 3.0, 3.5)
    finish("StageI-Anchor-s2@probe", 3.2, 3.9)
    lines = probe_table(Results(executor), (1, 2))
    untrained = next(line for line in lines if "untrained" in line)
    anchor = next(line for line in lines if "Anchor (0.2)" in line)
    assert "| 5.000 (n=1) | 5.000 (n=1) | 0.000 (n=1) |" in untrained
    # own 3.0/3.2, other 3.5/3.9, gap 0.5/0.7 over the two seeds
    assert "| 3.100 ± 0.141 (n=2) | 3.700 ± 0.283 (n=2) | 0.600 ± 0.141 (n=2) |" in anchor
    assert "75 ± 0 (n=2) % / 50 ± 0 (n=2) %" in anchor
    assert "OnlyQ2D (1.0) | – |" in next(line for line in lines if "OnlyQ2D" in line)


def test_a_probe_refuses_a_folder_that_a_later_run_trained_on(tmp_path: Path) -> None:
    from llm2vec.training.run_folder import mark_finished
    from repro_small.probe import check_model_step

    executor = _executor(tmp_path)
    first, probe = executor.by_name["StageI-AnchorEpoch100-s1"], executor.by_name["StageI-AnchorEpoch100-s1@probe"]
    folder = executor.settings.runs_dir / first.folder
    folder.mkdir(parents=True)
    executor.state_path(first.name).parent.mkdir(parents=True, exist_ok=True)
    executor.state_path(first.name).write_text(json.dumps({"fingerprint": executor.fingerprint(first), "steps": 100}))
    mark_finished(folder, 100)
    check_model_step(executor, probe)  # the folder holds step 100: fine
    mark_finished(folder, 200)  # the continuation has run since
    with pytest.raises(ReproductionError, match="holds the model of step 200"):
        check_model_step(executor, probe)
    check_model_step(executor, executor.by_name["SmolLM2@probe"])  # an untrained model has no run folder


def test_a_run_that_continues_a_folder_builds_on_the_runs_before_it(tmp_path: Path) -> None:
    executor = _executor(tmp_path)
    assert executor.depends_on(executor.by_name["StageI-AnchorEpoch-s1"]) == [
        "StageI-AnchorEpoch100-s1", "StageI-AnchorEpoch200-s1"]
    assert executor.depends_on(executor.by_name["StageI-AnchorEpoch100-s1"]) == []
    # Table 5's continuation keeps what it built on before (its fingerprint must not move)
    assert executor.depends_on(executor.by_name["Baseline-long-s1"]) == ["StageI-Anchor-s1", "Baseline-s1"]


def test_the_longer_stage_one_table_shows_each_stop_and_the_first_stage_two_steps(tmp_path: Path) -> None:
    from repro_small.report import Results, longer_stage_one_table

    executor = _executor(tmp_path)

    # 12 logged steps: the last 10 average to Q2D 3.0 and D2Q 2.0
    losses = {str(s): {"q2d_loss": 9.0 if s <= 2 else 3.0, "d2q_loss": 9.0 if s <= 2 else 2.0} for s in range(1, 13)}
    _write_state(executor, "StageI-AnchorEpoch100-s1", steps=100, losses=losses)
    direction = {"own": 3.0, "other": 3.25, "gap": 0.25, "gap_std": 0.5, "own_lower": 0.7}
    _write_state(executor, "StageI-AnchorEpoch100-s1@probe", probe={"q2d": direction, "d2q": {**direction, "gap": -0.01},
                                                                    "query_anchor_cosine": 0.99, "document_anchor_cosine": 0.98})
    curve = ("A", "B")
    _write_state(executor, "AnchorEpoch-s1@25", scores={"A": 0.5, "B": 0.7})
    lines = longer_stage_one_table(Results(executor), 1, curve)
    assert "| 100 | 3.00 / 2.00 | +0.250 ± 0.500 (70 % own better) | -0.010 ± 0.500 (70 % own better) | 0.990 / 0.980 |" in lines
    assert "| 200 | – | – | – | – |" in lines
    assert any(line.startswith("| 25 | 60.00 |") for line in lines)


def test_a_run_whose_folder_a_later_run_trained_on_is_not_trained_again(tmp_path: Path) -> None:
    from llm2vec.training.run_folder import mark_finished

    executor = _executor(tmp_path)
    first, second = executor.by_name["StageI-AnchorEpoch100-s1"], executor.by_name["StageI-AnchorEpoch200-s1"]
    folder = executor.settings.runs_dir / first.folder
    for run in (first, second):
        executor.state_path(run.name).parent.mkdir(parents=True, exist_ok=True)
        executor.state_path(run.name).write_text(json.dumps({"fingerprint": executor.fingerprint(run), "steps": run.stop}))
    (folder / "checkpoint-200").mkdir(parents=True)  # save_total_limit 1 removed checkpoint-100
    mark_finished(folder, 200)
    assert executor.has_output(first) and executor.has_output(second)
    recorder = _Recorder(executor)
    executor.run([executor.by_name["StageI-AnchorEpoch-s1"]])
    assert recorder.ran == ["StageI-AnchorEpoch-s1"]


def test_the_diagnosis_table_compares_every_variant_at_the_same_step(tmp_path: Path) -> None:
    from repro_small.report import DIAGNOSIS_STEPS, Results, diagnosis_table

    executor = _executor(tmp_path)

    curve = ("SmallBBCHeadlineRetrieval", "SmallLeeSTS")
    # the bf16 Baseline has only the curve tasks at the diagnosis step; the float32 run all of them
    _write_state(executor, f"Baseline-s1@{DIAGNOSIS_STEPS}", scores={"SmallBBCHeadlineRetrieval": 0.6, "SmallLeeSTS": 0.8})
    _write_state(executor, f"Baseline-fp32-s1@{DIAGNOSIS_STEPS}", scores={"SmallBBCHeadlineRetrieval": 0.5, "SmallLeeSTS": 0.6,
                                                                          "SmallBBCClassification": 0.9})
    lines = diagnosis_table(Results(executor), (1,), curve)
    assert f"curve average at step {DIAGNOSIS_STEPS}" in lines[0]
    baseline = next(line for line in lines if line.startswith("| Baseline (bf16"))
    fp32 = next(line for line in lines if line.startswith("| Baseline-fp32 "))
    assert baseline.split(" | ")[5] == "70.00 (n=1)"  # (60 + 80) / 2
    assert fp32.split(" | ")[5] == "55.00 (n=1)"  # (50 + 60) / 2: the third task is not a curve task


def test_table_5_counts_the_longer_baselines_training_time_once(tmp_path: Path) -> None:
    from repro_small.report import Results, table5

    executor = _executor(tmp_path)

    # 200 steps at 5 s, continued to 337 steps: the long run's record estimates all 337 steps (1,685 s)
    _write_state(executor, "Baseline-s1", steps=200, train_seconds=1000.0)
    _write_state(executor, "Baseline-long-s1", steps=337, train_seconds=1685.0)
    _write_state(executor, "StageI-Anchor-s1", steps=100, train_seconds=700.0)
    _write_state(executor, "Anchor-s1", steps=200, train_seconds=800.0)
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in table5(Results(executor), (1,))[2:]}
    assert rows["Baseline"][4] == "16.67 (n=1) min"
    assert rows["Baseline, trained on as long as Stage I took"][2] == "337"
    assert rows["Baseline, trained on as long as Stage I took"][4] == "28.08 (n=1) min"  # 1,685 s, not 1,685 + 1,000
    assert rows["Anchor (Stage I + Stage II)"][4] == "25.00 (n=1) min"


def test_rows_take_a_repeated_runs_losses_and_time_from_the_run_its_scores_measured(tmp_path: Path) -> None:
    from repro_small.report import STAGE_II_STEPS, Results, diagnosis_table, table5

    executor = _executor(tmp_path)
    evaluation = f"Baseline-s1@{STAGE_II_STEPS}"

    def step_one_loss_and_minutes() -> tuple[str, str]:
        results = Results(executor)
        row = next(line for line in diagnosis_table(results, (1,), ("SmallLeeSTS",)) if line.startswith("| Baseline (bf16"))
        return row.split(" | ")[1], table5(results, (1,))[2].split(" | ")[4]

    original = {"steps": 200, "train_seconds": 600.0, "losses": {"1": {"loss": 11.0}}}
    here = {"cpu": "CPU B", "bf16_flags": []}

    def repeat(**listed: object) -> None:
        # repeated on CPU B (other losses, other speed) after the original was scored elsewhere
        _write_state(executor, "Baseline-s1", steps=200, train_seconds=1200.0, losses={"1": {"loss": 10.0}}, machine=here,
                     repeated={"adopted_from": "records.json", "adopted_record": original, **listed})

    repeat(evaluations_of_adopted_run=[evaluation])
    _write_state(executor, evaluation, scores={"SmallLeeSTS": 0.5}, machine={"cpu": "CPU A", "bf16_flags": []})
    assert step_one_loss_and_minutes() == ("11.00 (n=1)", "10.00 (n=1) min")  # 600 s of the scored run, not 1,200
    repeat(evaluations_of_adopted_run=[])  # scored after the repeat: the repeat's own record
    assert step_one_loss_and_minutes() == ("10.00 (n=1)", "20.00 (n=1) min")
    # records repeated before the list was kept: told apart by the machine the evaluation names
    repeat()
    assert step_one_loss_and_minutes() == ("11.00 (n=1)", "10.00 (n=1) min")
    _write_state(executor, evaluation, scores={"SmallLeeSTS": 0.5}, machine=here)
    assert step_one_loss_and_minutes() == ("10.00 (n=1)", "20.00 (n=1) min")
    # the first repeats did not keep the original record: the repeat's is the only one there is
    _write_state(executor, "Baseline-s1", steps=200, train_seconds=1200.0, losses={"1": {"loss": 10.0}}, machine=here,
                 repeated={"adopted_from": "records.json", "evaluations_of_adopted_run": [evaluation]})
    assert step_one_loss_and_minutes() == ("10.00 (n=1)", "20.00 (n=1) min")


def test_the_qwen_table_sets_each_qwen_row_beside_smollm2_at_the_nearest_step(tmp_path: Path) -> None:
    from repro_small.report import CATEGORY, QWEN_STAGE_II_STEPS, Results, qwen_table

    executor = _executor(tmp_path, seeds=(1, 2, 3))
    curve = ("SmallBBCHeadlineRetrieval", "SmallLeeSTS")
    _write_state(executor, "SmolLM2-mean", scores={"SmallBBCHeadlineRetrieval": 0.2, "SmallLeeSTS": 0.4, "SmallBBCClassification": 0.9})
    for seed, score in ((1, 0.5), (2, 0.7)):
        _write_state(executor, f"Baseline-s{seed}", steps=200, train_seconds=1000.0,
                     losses={"1": {"loss": 10.0 + seed}, "25": {"loss": 1.0}})
        _write_state(executor, f"Baseline-s{seed}@25", scores={"SmallBBCHeadlineRetrieval": score, "SmallLeeSTS": score})
    _write_state(executor, "Qwen-Baseline", steps=QWEN_STAGE_II_STEPS, train_seconds=1800.0,
                 losses={"1": {"loss": 2.5}, str(QWEN_STAGE_II_STEPS): {"loss": 0.5}})
    _write_state(executor, f"Qwen-Baseline@{QWEN_STAGE_II_STEPS}", scores={"SmallBBCHeadlineRetrieval": 0.9, "SmallLeeSTS": 0.6},
                 mean_pairwise_cosine=0.25)
    # all nine tasks: the average of the nine, and its own spread measurement
    every_task = dict.fromkeys(CATEGORY, 0.5) | {"SmallLeeSTS": 0.59}
    _write_state(executor, f"Qwen-Baseline@{QWEN_STAGE_II_STEPS}-all", scores=every_task, mean_pairwise_cosine=0.3)
    _write_state(executor, "Qwen-mean", scores={"SmallLeeSTS": 0.4})  # an incomplete record is no all-9 average
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in qwen_table(Results(executor), (1, 2, 3), curve)[2:]}
    assert rows["SmolLM2-135M, untrained, mean"][3] == "30.00 (n=1)"  # curve tasks only: (20 + 40) / 2
    assert rows["SmolLM2-135M, untrained, EOS"][3] == "–"  # not run: an empty row, not a zero
    smollm2 = rows["SmolLM2-135M, Baseline, 25 LoRA steps (lr 5e-4)"]
    assert smollm2[3] == "60.00 ± 14.14 (n=2)"
    assert smollm2[4] == "–"  # evaluated on the curve tasks only
    assert smollm2[6] == "11.50 ± 0.71 (n=2) / 1.00 ± 0.00 (n=2)"
    assert smollm2[7] == "2.08 ± 0.00 (n=2) min |"  # 25 of 200 steps of 1,000 s
    assert rows["Qwen2.5-Coder-1.5B, untrained, mean"][4] == "–"
    # the spread of a model measured on the curve tasks only is shown too
    _write_state(executor, "Qwen-EOS@curve", scores={"SmallLeeSTS": 0.1}, mean_pairwise_cosine=0.9)
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in qwen_table(Results(executor), (1, 2, 3), curve)[2:]}
    assert rows["Qwen2.5-Coder-1.5B, untrained, EOS"][5] == "0.900 (n=1)"
    qwen = rows[f"Qwen2.5-Coder-1.5B, Baseline, {QWEN_STAGE_II_STEPS} LoRA steps (lr 2e-4)"]
    assert qwen[1:7] == ["90.00 (n=1)", "60.00 (n=1)", "75.00 (n=1)", "51.00 (n=1)", "0.300 (n=1)", "2.50 (n=1) / 0.50 (n=1)"]
    assert qwen[7] == "30.00 (n=1) min |"


def test_a_run_leaves_ln_16_when_its_ten_step_mean_loss_falls_below_half_of_it(tmp_path: Path) -> None:
    import math

    from repro_small.report import Results, escape_step, escape_table

    # ln 16 / 2 = 1.386: nine steps at 2.77 then 0.0 keep the 10-step mean at 2.49 (step 10) ...
    losses = {str(step): {"loss": 2.77 if step <= 9 else 0.0} for step in range(1, 31)}
    # ... steps 10-13 bring it to 2.77 * 6 / 10 = 1.66, step 14 to 2.77 * 5 / 10 = 1.385 < 1.386
    assert escape_step(losses, 30) == 14.0
    assert math.isnan(escape_step(losses, 13))  # not by the run's last step
    executor = _executor(tmp_path, seeds=(1, 2))
    _write_state(executor, "Baseline-s1", steps=200, losses={str(k): {"loss": 1.0} for k in range(1, 201)})
    _write_state(executor, f"Baseline-s1@{STAGE_II_STEPS}", scores={"SmallLeeSTS": 0.5})
    _write_state(executor, "Baseline-s2", steps=200, losses={str(k): {"loss": 3.0} for k in range(1, 201)})
    _write_state(executor, f"Baseline-s2@{STAGE_II_STEPS}", scores={"SmallLeeSTS": 0.5})
    row = next(line for line in escape_table(Results(executor), (1, 2)) if line.startswith("| Baseline |")).split(" | ")
    assert row[1:] == ["10 / never", "10.0 (n=1)", "2.00 ± 1.41 (n=2) |"]


def test_a_suite_fingerprint_does_not_depend_on_where_the_repository_was_cloned(tmp_path: Path) -> None:
    from repro_small.jobs import suite_fingerprint

    def suite(clone: str, train_file: str = "train") -> tuple[Path, Path]:
        root = tmp_path / clone / "cache"
        (root / "suite").mkdir(parents=True)
        (root / "suite" / "manifest.json").write_text(json.dumps({"dataset_file_path": str(root / "data" / train_file)}))
        return root / "suite", root

    assert suite_fingerprint(*suite("a")) == suite_fingerprint(*suite("b"))
    assert suite_fingerprint(*suite("c")) != suite_fingerprint(*suite("d", train_file="other"))
