"""experiments/mteb_eval_custom.py: runs local tasks on a tiny model, skips finished tasks,
re-runs them with --overwrite, refuses tasks without an instruction, and its arguments' defaults."""

from __future__ import annotations

import json
from pathlib import Path

import mteb
import pytest

from llm2vec.evaluation import runner
from llm2vec.evaluation.mteb_encoder import build_model_meta
from tests.forked_runs import run_forked
from tests.helpers import LOCAL_TASKS as DATA
from tests.helpers import REPO
from tests.helpers import load_script as load_helper_script

SCRIPT = REPO / "experiments" / "mteb_eval_custom.py"


def load_script():
    return load_helper_script(SCRIPT)


def write_specs(path: Path, names: list[str], drop_instruction: bool = False) -> Path:
    """A spec file holding the given tiny specs, with absolute data paths."""
    specs = []
    for name in names:
        spec = json.loads((DATA / f"{name}.json").read_text())
        spec["path"] = str(DATA / spec["path"])
        if drop_instruction:
            spec.pop("instruction", None)
        specs.append(spec)
    path.write_text(json.dumps(specs))
    return path


def cli_args(model_dir: Path, specs: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        "--base_model_name_or_path", str(model_dir),
        "--local_tasks", str(specs),
        "--output_dir", str(output_dir),
        "--batch_size", "8",
        "--device", "cpu",
        *extra,
    ]


@pytest.mark.slow
def test_cli_writes_results_skips_them_and_overwrites(tmp_path, tiny_llama_dir, monkeypatch, capsys):
    specs = write_specs(tmp_path / "specs.json", ["tiny_sts", "tiny_retrieval"])
    output = tmp_path / "results_dir"
    run = run_forked(SCRIPT, cli_args(tiny_llama_dir, specs, output))  # as `python SCRIPT ...` runs it
    assert run.returncode == 0, run.stderr[-4000:]

    revision, parts = runner.evaluation_fingerprint(tiny_llama_dir, dtype="float32", max_length=512, doc_max_length=400)
    meta = build_model_meta(tiny_llama_dir, revision=revision)
    folder = output / meta.model_name_as_path() / revision  # mteb's MTEB.run layout, the fingerprint as revision
    assert json.loads((folder / "fingerprint.json").read_text())["weights"] == json.loads(json.dumps(parts["weights"]))
    paths = {name: folder / f"{name}.json" for name in ("TinySTS", "TinyRetrieval")}
    first = {name: mteb.TaskResult.from_disk(path) for name, path in paths.items()}
    assert (folder / "model_meta.json").exists() and (folder / "run_settings.jsonl").exists()
    assert sorted(p.name for p in output.iterdir()) == sorted([meta.model_name_as_path(), "embedding_cache"])
    for name, result in first.items():
        assert f"{name}: main score" in run.stdout
        assert result.task_name == name and list(result.scores) == ["test"]
    mtimes = {name: path.stat().st_mtime_ns for name, path in paths.items()}

    # second run (in-process): everything is done, so nothing is loaded or written
    def no_model(*args, **kwargs):
        raise AssertionError("the model must not be loaded when every task is done")

    monkeypatch.setattr(runner, "load_llm2vec", no_model)
    script = load_script()
    assert script.main(cli_args(tiny_llama_dir, specs, output)) == 0
    out = capsys.readouterr().out
    assert "Skipping TinySTS" in out and "Skipping TinyRetrieval" in out and "Nothing to evaluate." in out
    assert {name: path.stat().st_mtime_ns for name, path in paths.items()} == mtimes
    monkeypatch.undo()

    # --overwrite re-runs both tasks (same scores: evaluation is deterministic)
    assert script.main(cli_args(tiny_llama_dir, specs, output, "--overwrite")) == 0
    out = capsys.readouterr().out
    assert "Skipping" not in out
    for name, path in paths.items():
        assert path.stat().st_mtime_ns > mtimes[name]
        again = mteb.TaskResult.from_disk(path)
        assert again.date > first[name].date
        assert again.get_score() == pytest.approx(first[name].get_score(), abs=1e-6)


def test_missing_instruction_is_a_clear_error(tmp_path, capsys):
    specs = write_specs(tmp_path / "specs.json", ["tiny_sts"], drop_instruction=True)
    instructions = tmp_path / "instructions.json"
    instructions.write_text(json.dumps({"STS12": "Retrieve semantically similar text:"}))
    args = cli_args(Path("unused-model"), specs, tmp_path / "out", "--task_to_instructions_fp", str(instructions))
    assert load_script().main(args) == 2
    error = capsys.readouterr().err
    assert "TinySTS" in error and str(instructions) in error and "--allow_missing_instructions" in error


def test_missing_instructions_file_is_a_clear_error(tmp_path, capsys, monkeypatch):
    """A given path is read from the working directory, with no fallback to the repository."""
    specs = write_specs(tmp_path / "specs.json", ["tiny_sts"])
    monkeypatch.chdir(tmp_path)
    relative = "test_configs/mteb/task_to_instructions.json"  # exists in the repository only
    args = cli_args(Path("unused-model"), specs, tmp_path / "out", "--task_to_instructions_fp", relative)
    assert load_script().main(args) == 2
    error = capsys.readouterr().err
    assert f"instructions file {relative} not found" in error and str(tmp_path) in error


def test_arguments_need_tasks():
    with pytest.raises(SystemExit):
        load_script().parse_args(["--base_model_name_or_path", "x"])
    args = load_script().parse_args(["--base_model_name_or_path", "x", "--task_name", "subset15"])
    assert (args.batch_size, args.max_length, args.doc_max_length, args.dtype) == (32, 512, 400, None)
    assert args.output_dir == "results/"
    assert args.task_to_instructions_fp is None  # the packaged Table 13 file
