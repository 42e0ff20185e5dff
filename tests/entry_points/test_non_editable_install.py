"""A non-editable install works away from the checkout.

A wheel of the package is built and installed with ``pip install --target``; with that folder on
``PYTHONPATH`` (ahead of the editable install's finder) and the working directory outside the
repository, the evaluation script finds the packaged instructions, the packaged paper results
load, and the tiny Stage I trains and saves a model.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
LOCAL_TASKS = REPO / "tests" / "data" / "local_tasks"
#: the files that define the build (those that exist are copied with the package)
BUILD_FILES = ("setup.py", "setup.cfg", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE")

# Runs a script as ``python SCRIPT ARGS`` would, after reporting where llm2vec is imported from.
LAUNCHER = """
import os, runpy, sys
import llm2vec
print("llm2vec imported from", llm2vec.__file__, file=sys.stderr)
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path[0] = os.path.dirname(script)
runpy.run_path(script, run_name="__main__")
"""


def pip(*args: str, cwd: Path) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input", *args]
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding the installed wheel (``pip install --target``)."""
    root = tmp_path_factory.mktemp("non_editable")
    # Build from a copy: an in-tree build would write build/ and *.egg-info into the checkout.
    source = root / "source"
    shutil.copytree(REPO / "llm2vec", source / "llm2vec", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in BUILD_FILES:
        if (REPO / name).is_file():
            shutil.copy2(REPO / name, source / name)
    pip("wheel", "--no-deps", "--no-build-isolation", "-w", str(root / "dist"), str(source), cwd=root)
    (wheel,) = (root / "dist").glob("*.whl")
    pip("install", "--no-deps", "--target", str(root / "site"), str(wheel), cwd=root)
    return root / "site"


def run_installed(site: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    """``python -c LAUNCHER args`` with only the installed copy on ``PYTHONPATH``."""
    env = {
        **os.environ,
        "PYTHONPATH": str(site),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "OMP_NUM_THREADS": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    result = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert f"llm2vec imported from {site / 'llm2vec' / '__init__.py'}" in result.stderr
    return result


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory outside the repository."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    assert REPO not in folder.parents
    return folder


@pytest.mark.slow
def test_installed_package_reads_its_data(site: Path, outside: Path) -> None:
    script = outside / "check_data.py"
    script.write_text(
        "from llm2vec.evaluation.instructions import default_instructions_path, load_task_instructions\n"
        "from llm2vec.reporting.paper_results import list_tables, paper_reference\n"
        "print(default_instructions_path())\n"
        "print(load_task_instructions()['ArguAna'])\n"
        "print(paper_reference('llama3.2-1b-anchor').categories['Average'])\n"
        "print(len(list_tables()))\n"
    )
    result = run_installed(site, outside, str(script))
    assert result.stdout.splitlines() == [
        str(site / "llm2vec" / "evaluation" / "data" / "task_to_instructions.json"),
        "Given a claim, find documents that refute the claim:",
        "62.24",
        "10",
    ]


@pytest.mark.slow
def test_installed_package_evaluates_with_the_packaged_instructions(
    site: Path, outside: Path, tiny_llama_dir: Path
) -> None:
    output = outside / "results"
    result = run_installed(
        site, outside, str(REPO / "experiments" / "mteb_eval_custom.py"),
        "--base_model_name_or_path", str(tiny_llama_dir),
        "--local_tasks", str(LOCAL_TASKS / "tiny_sts.json"),
        "--output_dir", str(output),
        "--batch_size", "8",
        "--device", "cpu",
    )  # no --task_to_instructions_fp: the packaged file is loaded
    assert "TinySTS: main score" in result.stdout
    (path,) = output.rglob("TinySTS.json")
    recorded = json.loads((path.parent / "fingerprint.json").read_text())  # the results folder is keyed by it
    assert recorded["instructions"] and recorded["weights"][0]["files"]["model.safetensors"]


@pytest.mark.slow
def test_installed_package_trains_the_tiny_stage_one(
    site: Path, outside: Path, tiny_llama_dir: Path, tiny_data_dir: Path
) -> None:
    output = outside / "stage_I"
    run_installed(
        site, outside, str(REPO / "experiments" / "run_stage_I.py"),
        str(REPO / "train_configs" / "tiny" / "stage_I_tiny.json"),
        "--model_name_or_path", str(tiny_llama_dir),
        "--dataset_file_path", str(tiny_data_dir),
        "--output_dir", str(output),
        "--stop_after_n_steps", "2",
        "--save_steps", "2",
        "--disable_tqdm", "true",
    )
    assert (output / "llm2vec_config.json").is_file() and (output / "config.json").is_file()
    assert list(output.glob("*.safetensors")), sorted(p.name for p in output.iterdir())
