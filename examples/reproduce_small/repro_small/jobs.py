"""Runs the jobs of ``plan.py`` in order, each once: a finished job is skipped, an interrupted one resumes.

A job that did its work writes ``<root>/state/<name>.json`` with a fingerprint of what it depends
on (its fields, the fingerprints of the jobs it builds on, the suite) and what it measured (wall
time, CPU time, load, losses or scores). Training runs go through the shipped entry points with
``--resume_from_checkpoint last`` (a killed run continues; a finished one is a no-op); evaluations
run in this process and write mteb results keyed by the model's content fingerprint, so a task
whose results exist is not recomputed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anchor_demo.machine import cpu_flags, cpu_model
from anchor_demo.run_files import children_cpu_seconds, fingerprint_of, format_seconds, load_average, read_json, write_json_atomic
from repro_small.plan import Evaluate, Job, Plan, Probe, Train

REPO = Path(__file__).resolve().parents[3]
_RUNTIME = re.compile(r"'train_runtime': '([0-9.]+)'")
_EPOCH = re.compile(r"\{'loss': [^}]*'epoch': '([0-9.e-]+)'")


def seconds_per_step(log_text: str) -> float | None:
    """Training seconds per optimizer step of the last attempt that finished, from its log.

    The trainer's ``train_runtime`` (loading excluded) covers the steps that attempt trained: the
    logged steps (``logging_steps`` 1) since the epoch counter last went back, which marks where a
    killed attempt's log ends and the resumed one's begins.
    """
    ends = list(_RUNTIME.finditer(log_text))
    if not ends:
        return None
    last = ends[-1]
    epochs = [float(m.group(1)) for m in _EPOCH.finditer(log_text, 0, last.start())]
    steps = 0
    for index in range(len(epochs) - 1, -1, -1):
        steps += 1
        if index > 0 and epochs[index - 1] >= epochs[index]:
            break
    return float(last.group(1)) / steps if steps else None


def cpu_identity() -> dict[str, Any]:
    """The CPU's model name and bf16 instruction sets. oneDNN picks its bf16 kernels by them (AMX,
    AVX512-BF16 or emulation), and they round differently: the same seeded run is not the same run
    on another CPU, so every record says where it ran."""
    return {"cpu": cpu_model(), "bf16_flags": cpu_flags(("avx512_bf16", "amx_bf16"))}


SCRIPTS = {"I": REPO / "experiments" / "run_stage_I.py", "II": REPO / "experiments" / "run_stage_II.py",
           "mntp": REPO / "experiments" / "run_mntp.py", "simcse": REPO / "experiments" / "run_simcse.py"}

Log = Callable[[str], None]


class ReproductionError(RuntimeError):
    """A job failed; the message says which and why."""


@dataclass
class Settings:
    """Where things are and how they run."""

    root: Path
    suite: Path  # the built suite: train/ and eval/
    models: dict[str, Path]  # model key -> folder
    precision: str = "bfloat16"  # training autocast and evaluation dtype; "float32" where bf16 is slow
    eval_batch_size: int = 32
    eval_max_length: int = 128
    eval_doc_max_length: int = 100
    curve_tasks: tuple[str, ...] = ()
    ood_tasks: tuple[str, ...] = ()
    python: str = sys.executable
    #: where training configs are read, by file name, instead of their path in the job: a campaign
    #: that studies configs as they were keeps copies, and the shipped ones may change (the job,
    #: and so its fingerprint, keeps naming the shipped file)
    config_dir: Path | None = None

    @property
    def state_dir(self) -> Path:
        return self.root / "state"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"


def suite_fingerprint(suite: Path, root: Path) -> str:
    """The fingerprint of a suite's manifest with the campaign's root folder written as ``<root>``:
    a manifest that names its files by absolute path (the demo suite's) must not tie the records to
    the folder the repository was cloned into."""
    text = json.dumps(read_json(suite / "manifest.json"), sort_keys=True)
    return fingerprint_of(json.loads(text.replace(json.dumps(str(root.resolve()))[1:-1], "<root>")))


class Executor:
    """Runs a :class:`Plan` job by job (see the module docstring)."""

    def __init__(self, plan: Plan, settings: Settings, log: Log = print) -> None:
        self.plan = plan
        self.settings = settings
        self.log = log
        self.by_name = {job.name: job for job in plan.jobs}
        self.suite_fingerprint = suite_fingerprint(settings.suite, settings.root)

    # ---------------------------------------------------------------- state
    def state_path(self, name: str) -> Path:
        return self.settings.state_dir / f"{name.replace('/', '_')}.json"

    def state(self, name: str) -> dict[str, Any] | None:
        return read_json(self.state_path(name))

    def fingerprint(self, job: Job) -> str:
        upstream = [self.fingerprint(self.by_name[name]) for name in self.depends_on(job)]
        return fingerprint_of(dataclasses.asdict(job), upstream, self.suite_fingerprint, self.settings.precision)

    def depends_on(self, job: Job) -> list[str]:
        """The names of the jobs whose output ``job`` reads (its base run, the adapter's runs, a matched run)."""
        names = [job.base] if job.base in self.by_name else []
        if isinstance(job, Train):
            if job.matched_to:
                names.append(job.matched_to)
            # a run that continues a folder builds on the runs before it there
            names += [j.name for j in self._earlier(job) if isinstance(j, Train) and j.folder == job.folder]
        if isinstance(job, Evaluate) and job.adapter is not None:
            names += [j.name for j in self.plan.jobs if isinstance(j, Train) and j.folder == job.adapter]
        return names

    def select(self, patterns: list[str], among: list[Job]) -> list[Job]:
        """The jobs of ``among`` whose names match a shell pattern of ``patterns``, with every job they
        build on (also outside ``among``: a run cannot start without its base), in plan order."""
        wanted: set[str] = set()
        pending = [job.name for job in among if any(fnmatch.fnmatchcase(job.name, p) for p in patterns)]
        while pending:
            name = pending.pop()
            if name not in wanted:
                wanted.add(name)
                pending += self._needed_by(self.by_name[name])
        return [job for job in self.plan.jobs if job.name in wanted]

    def _needed_by(self, job: Job) -> list[str]:
        # An evaluation at a fixed step reads the checkpoint of the run that wrote that step; the runs
        # that continue the same folder afterwards (Table 5) are in its fingerprint but need not run.
        names = self.depends_on(job)
        if isinstance(job, Evaluate) and job.step is not None:
            names = [n for n in names if not (isinstance(self.by_name[n], Train) and self.by_name[n].stop is None)]
        return names

    def done(self, job: Job) -> bool:
        state = self.state(job.name)
        return state is not None and state.get("fingerprint") == self.fingerprint(job)

    # ---------------------------------------------------------------- adopting records
    def adopt(self, records: Mapping[str, Mapping[str, Any]], source: str) -> tuple[list[str], list[str]]:
        """Take over jobs that finished elsewhere, from a records file that ``--report`` wrote
        (``docs/data/*_records.json``: job name -> its state): a record of a job of this plan with the
        same fingerprint becomes the job's state file (marked ``adopted_from``), so the job is skipped.
        A record whose fingerprint differs (other settings, suite or upstream runs) is refused, and a
        job already finished here is left alone. Returns the adopted and the refused names."""
        adopted, refused = [], []
        for job in self.plan.jobs:
            record = records.get(job.name)
            if record is None or self.done(job):
                continue
            if record.get("fingerprint") != self.fingerprint(job):
                refused.append(job.name)
                continue
            write_json_atomic(self.state_path(job.name), {**record, "adopted_from": source})
            adopted.append(job.name)
        return adopted, refused

    def reads_output_of(self, job: Job) -> list[Train]:
        """The training runs whose folder ``job`` reads: the run it starts from, the earlier runs of the
        folder it continues, the runs that wrote the adapter it evaluates (not the runs it only takes
        a measurement from, like Table 5's matched Stage I)."""
        runs = []
        if isinstance(self.by_name.get(job.base), Train):
            runs.append(self.by_name[job.base])
        if isinstance(job, Train):
            runs += [j for j in self._earlier(job) if isinstance(j, Train) and j.folder == job.folder]
        elif isinstance(job, Evaluate) and job.adapter is not None:
            # a fixed step was written by a run with a fixed stop; the final adapter by the folder's last run
            runs += [j for j in self.plan.jobs if isinstance(j, Train) and j.folder == job.adapter
                     and (job.step is None or j.stop is not None)]
        return runs

    def _earlier(self, job: Job) -> list[Job]:
        position = next(i for i, j in enumerate(self.plan.jobs) if j.name == job.name)
        return self.plan.jobs[:position]

    def has_output(self, job: Train) -> bool:
        """Whether the run's folder holds the checkpoint its finished record describes (an adopted
        record comes without the folder)."""
        from llm2vec.training.run_folder import finished_step

        steps = (self.state(job.name) or {}).get("steps", job.stop)
        folder = self.settings.runs_dir / job.folder
        if (folder / f"checkpoint-{steps}").is_dir():
            return True
        # A later run of the folder trained on from it (and save_total_limit may have removed the
        # checkpoint): what comes after this run is there.
        done = finished_step(folder)
        return done is not None and done >= steps

    # ---------------------------------------------------------------- running
    def run(self, jobs: list[Job]) -> None:
        started = time.time()
        for index, job in enumerate(jobs, start=1):
            if self.done(job):
                continue
            self._rebuild_missing_inputs(job, started)
            self.log(f"[{format_seconds(time.time() - started)}] {index}/{len(jobs)} {job.name}")
            self._run_one(job)

    def _rebuild_missing_inputs(self, job: Job, started: float) -> None:
        # A job adopted from another machine's records is done but its run folder is not here; a job
        # that reads that folder needs it back. Training is seeded, so the run is repeated as it was;
        # its new record replaces the adopted one (the evaluations already adopted are kept).
        for run in self.reads_output_of(job):
            if self.done(run) and not self.has_output(run):
                self._rebuild_missing_inputs(run, started)
                adopted = self.state(run.name)
                # the evaluations already finished scored the original run, not the repeat
                scored = [j.name for j in self.plan.jobs if isinstance(j, Evaluate) and self.done(j)
                          and run.name in {r.name for r in self.reads_output_of(j)}]
                self.log(f"[{format_seconds(time.time() - started)}] {run.name} again: {job.name} reads its folder, "
                         f"which is not here (its record came from {adopted.get('adopted_from', 'elsewhere')})")
                self._run_one(run)
                self._compare_with_adopted(run, adopted, scored)

    def _compare_with_adopted(self, run: Train, adopted: dict[str, Any], scored: list[str]) -> None:
        # The repeated run should be the same training: say whether its logged losses are, step by step.
        record = self.state(run.name)
        before, after = adopted.get("losses", {}), record.get("losses", {})
        steps = sorted(set(before) | set(after), key=int)
        different = [step for step in steps if before.get(step) != after.get(step)]
        record["repeated"] = {
            "adopted_from": adopted.get("adopted_from"), "steps_compared": len(steps),
            "same_losses_as_adopted": not different, "first_different_step": int(different[0]) if different else None,
            "adopted_record": adopted,  # the measurement it replaces is kept, not lost
            "evaluations_of_adopted_run": scored,
        }
        write_json_atomic(self.state_path(run.name), record)
        if different:
            step = different[0]
            self.log(f"    {run.name}: the repeated run's losses differ from the adopted record's from step {step} "
                     f"({before.get(step)} before, {after.get(step)} now); the jobs after it use the repeated run")
        else:
            self.log(f"    {run.name}: the repeated run logged the same losses as the adopted record at all {len(steps)} steps")

    def _run_one(self, job: Job) -> None:
        wall, cpu, load = time.time(), children_cpu_seconds() + time.process_time(), load_average()
        if isinstance(job, Train):
            record = self.train(job)
        elif isinstance(job, Probe):
            record = self.probe(job)
        else:
            record = self.evaluate(job)
        record.update(
            fingerprint=self.fingerprint(job), job=dataclasses.asdict(job), wall_seconds=round(time.time() - wall, 1),
            cpu_seconds=round(children_cpu_seconds() + time.process_time() - cpu, 1),
            load_before=load, load_after=load_average(), precision=self.settings.precision, machine=cpu_identity(),
        )
        write_json_atomic(self.state_path(job.name), record)
        self.log(f"    done in {format_seconds(record['wall_seconds'])}: {record.get('summary', '')}")

    def model_path(self, key: str) -> Path:
        if key in self.settings.models:
            return self.settings.models[key]
        job = self.by_name.get(key)
        if not isinstance(job, Train):
            raise ReproductionError(f"{key} is neither a model nor a training run")
        return self.settings.runs_dir / job.folder

    # ---------------------------------------------------------------- training
    def stop_of(self, job: Train) -> int:
        if job.stop is not None:
            return job.stop
        # Table 5: as many more steps as the matched Stage I took wall time, at the measured
        # seconds per step of the run this one continues.
        previous = next(j for j in self.plan.jobs if isinstance(j, Train) and j.folder == job.folder and j.stop)
        stage_one = self.by_name[job.matched_to]
        if not (self.done(stage_one) and self.done(previous)):
            raise ReproductionError(f"{job.name} needs the measured runs {job.matched_to} and {previous.name} first")
        stage_two_step, stage_one_step = self.seconds_per_step(previous), self.seconds_per_step(stage_one)
        return previous.stop + round(stage_one.stop * stage_one_step / stage_two_step)

    def seconds_per_step(self, job: Train) -> float:
        # The record keeps the measurement (an adopted record comes without the log it was read from).
        record = self.state(job.name) or {}
        if record.get("train_seconds") and record.get("steps"):
            return record["train_seconds"] / record["steps"]
        log = self.log_path(job)
        per_step = seconds_per_step(log.read_text(errors="replace")) if log.is_file() else None
        if per_step is None:
            raise ReproductionError(f"{job.name}: neither its state file nor {log} holds a finished training's time")
        return per_step

    def log_path(self, job: Job) -> Path:
        return self.settings.root / "logs" / f"{job.name}.log"

    def train(self, job: Train) -> dict[str, Any]:
        settings = self.settings
        output = settings.runs_dir / job.folder
        stop = self.stop_of(job)
        config = settings.config_dir / job.config.name if settings.config_dir is not None else REPO / job.config
        argv = [
            str(config), "--model_name_or_path", str(self.model_path(job.base)),
            "--dataset_file_path", str(settings.suite / "train"), "--output_dir", str(output),
            "--stop_after_n_steps", str(stop), "--save_steps", str(job.save_every),
            *[item for pair in job.overrides for item in (f"--{pair[0]}", pair[1])],
        ]
        if settings.precision == "float32" and ("bf16", "false") not in job.overrides:
            argv += ["--bf16", "false", "--torch_dtype", "float32"]
        argv += ["--resume_from_checkpoint", "last"]
        self.log(f"    {Path(settings.python).name} {SCRIPTS[job.stage].relative_to(REPO)} {' '.join(argv)}")
        started = time.time()
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONUNBUFFERED": "1"}
        log_path = self.log_path(job)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("a") as handle:
            result = subprocess.run([settings.python, str(SCRIPTS[job.stage]), *argv], env=env, cwd=REPO,
                                    stdout=handle, stderr=subprocess.STDOUT, check=False)
        if result.returncode != 0:
            raise ReproductionError(f"{job.name}: training exited with {result.returncode}; see {log_path}")
        trainer_state = read_json(output / f"checkpoint-{stop}" / "trainer_state.json") or {}
        history = [entry for entry in trainer_state.get("log_history", []) if "loss" in entry]
        losses = {entry["step"]: {k: entry[k] for k in ("loss", "q2d_loss", "d2q_loss", "accuracy") if k in entry}
                  for entry in history}
        # The trainer's own runtime leaves out loading; a killed run's resumed attempt covers only
        # its part, so the time of an uninterrupted run is estimated from its seconds per step.
        per_step = seconds_per_step(log_path.read_text(errors="replace"))
        train_seconds = per_step * stop if per_step is not None else time.time() - started
        first, last = losses.get(min(losses, default=0), {}), losses.get(stop, {})
        return {
            "kind": "train", "output_dir": str(output), "steps": stop, "train_seconds": round(train_seconds, 1),
            "losses": losses, "summary": f"{stop} steps, loss {first.get('loss')} -> {last.get('loss')}",
        }

    # ---------------------------------------------------------------- evaluation
    def evaluate(self, job: Evaluate) -> dict[str, Any]:
        from repro_small.evaluate import evaluate_job

        return evaluate_job(self, job)

    def probe(self, job: Probe) -> dict[str, Any]:
        from repro_small.probe import probe_job

        return probe_job(self, job)
