"""Helpers shared by several test files: the checkout's paths, config variants, runs of the
entry points in subprocesses (single process or torchrun) and the losses they log."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TRAIN_CONFIGS = REPO / "train_configs"
TINY_STAGE_I_CONFIG = TRAIN_CONFIGS / "tiny" / "stage_I_tiny.json"
TINY_STAGE_II_CONFIG = TRAIN_CONFIGS / "tiny" / "stage_II_tiny.json"
TORCHRUN_SCRIPT = REPO / "launch" / "torchrun_multinode.sh"
#: the tiny MTEB-format tasks of ``tests/data/local_tasks`` (their specs and data)
LOCAL_TASKS = REPO / "tests" / "data" / "local_tasks"


def load_script(path: Path, name: str | None = None) -> Any:
    """The module of a script that is not part of a package (``scripts/``, ``experiments/``,
    ``benchmarks/``), registered under ``name`` (default: the file's stem) so that its dataclasses
    find their module while it loads."""
    import importlib.util

    name = name or path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def write_local_task_specs(folder: Path, names: Sequence[str]) -> Path:
    """``folder`` (created) holding the spec of each named tiny local task, its data path made absolute."""
    folder.mkdir(parents=True)
    for name in names:
        spec = json.loads((LOCAL_TASKS / f"{name}.json").read_text())
        spec["path"] = str(LOCAL_TASKS / spec["path"])
        (folder / f"{name}.json").write_text(json.dumps(spec))
    return folder


def write_config_variant(folder: Path, source: Path, name: str = "variant.json", **changes: Any) -> Path:
    """A copy of the config ``source`` with ``changes`` applied, written to ``folder / name``."""
    config = json.loads(source.read_text())
    config.update(changes)
    path = folder / name
    path.write_text(json.dumps(config, indent=2))
    return path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun(processes: int) -> list[str]:
    """``python -m torch.distributed.run`` with ``processes`` processes on one node, on a free local port."""
    return [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={processes}",
        "--master_addr=127.0.0.1", f"--master_port={free_port()}",
    ]


def subprocess_env(**extra: str) -> dict[str, str]:
    """This environment, one thread per process (the runs use both cores between them)."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", **extra}


def run_checked(
    command: list[str], *, env: dict[str, str] | None = None, timeout: float = 600, stderr_tail: int = 4000
) -> subprocess.CompletedProcess:
    """Run ``command`` in the checkout; fails the test with the end of stderr unless it succeeds."""
    env = subprocess_env() if env is None else env
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
    assert result.returncode == 0, result.stderr[-stderr_tail:]
    return result


def run_entry_point(
    script: str, config: Path, *overrides: str, launcher: list[str] | None = None, **kwargs: Any
) -> subprocess.CompletedProcess:
    """``experiments/<script> CONFIG [--key value ...]``, by ``launcher`` (e.g. torchrun); without
    one in a forked child (``forked_runs.py``), as ``python`` would run it. Fails unless it succeeds."""
    path = REPO / "experiments" / script
    if launcher is None:
        from tests.forked_runs import run_forked

        env = kwargs.pop("env", None)
        result = run_forked(path, [config, *overrides], env=subprocess_env(**(env or {})), **kwargs)
        assert result.returncode == 0, result.stderr[-4000:]
        return result
    return run_checked([*launcher, str(path), str(config), *overrides], **kwargs)


def run_torchrun_script(*args: str, **environment: str) -> subprocess.CompletedProcess:
    """``bash launch/torchrun_multinode.sh ARGS`` with ``environment`` added (head node 127.0.0.1)."""
    env = {**os.environ, "PYTHON": sys.executable, "HEAD": "127.0.0.1", **environment}
    return subprocess.run(
        ["bash", str(TORCHRUN_SCRIPT), *args], capture_output=True, text=True, env=env, cwd=REPO, timeout=300
    )


def logged_steps(trainer_state: Path) -> dict[int, dict[str, float]]:
    """The training log entries of a ``trainer_state.json`` by step."""
    history = json.loads(trainer_state.read_text())["log_history"]
    return {entry["step"]: entry for entry in history if "loss" in entry}
