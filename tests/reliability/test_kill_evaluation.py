"""kill -9 during evaluation, then the same command: the uninterrupted scores, no broken file.

Three local tasks are evaluated once without interruption and once killed at four points in turn
(in the middle of a task, while a result file is written, right after a task is saved, in the
middle of the last task), each attempt resuming what the previous one left. Then two models whose
paths end alike get their own results, and a damaged result file is set aside and recomputed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llm2vec.evaluation.embedding_cache import folder_report
from llm2vec.testing.tiny_models import save_tiny_checkpoint
from tests.helpers import write_local_task_specs

KILLED = -9
SCRIPT = "experiments/mteb_eval_custom.py"
TASKS = ("tiny_sts", "tiny_classification", "tiny_retrieval")
CHAIN = [
    ("encode", 2),        # in the middle of the first task
    ("result_file", 4),   # the first task's result half written (after fingerprint, meta, settings)
    ("after_task", 1),    # first task saved, the second not started
    ("encode", 3),        # in the middle of a later task
]


@pytest.fixture
def tasks_folder(tmp_path: Path) -> Path:
    return write_local_task_specs(tmp_path / "tasks", TASKS)


def _argv(model: Path, tasks: Path, output: Path) -> list:
    return ["--base_model_name_or_path", model, "--local_tasks", tasks, "--output_dir", output, "--batch_size", "4"]


def _results(output: Path) -> dict[str, dict]:
    """``{revision folder: {task: main score}}`` of every model folder under ``output``."""
    found = {}
    for path in sorted(output.glob("*/*/Tiny*.json")):
        found.setdefault(f"{path.parent.parent.name}/{path.parent.name}", {})[path.stem] = (
            json.loads(path.read_text())["scores"]["test"][0]["main_score"]
        )
    return found


@pytest.mark.slow
def test_killed_evaluation_resumes_to_the_uninterrupted_scores(run_entry, tmp_path, tiny_llama_dir, tasks_folder):
    reference = tmp_path / "reference"
    assert run_entry(SCRIPT, _argv(tiny_llama_dir, tasks_folder, reference)) == 0, run_entry.log.read_text()[-3000:]
    expected = _results(reference)
    assert len(next(iter(expected.values()))) == 3
    output = tmp_path / "killed"
    argv = _argv(tiny_llama_dir, tasks_folder, output)
    for point, hit in CHAIN:
        assert run_entry(SCRIPT, argv, point, hit) == KILLED, (point, hit, run_entry.log.read_text()[-3000:])
    assert run_entry(SCRIPT, argv) == 0, run_entry.log.read_text()[-3000:]
    assert _results(output) == expected
    leftovers = [p.name for p in output.rglob("*") if p.name.startswith(".") or ".corrupt" in p.name]
    assert not leftovers, leftovers
    for path in output.rglob("*.json"):
        json.loads(path.read_text())


@pytest.mark.slow
def test_models_whose_paths_end_alike_never_share_results(run_entry, tmp_path, tasks_folder):
    first = save_tiny_checkpoint("llama3", tmp_path / "runs" / "a" / "x" / "model", seed=1)
    second = save_tiny_checkpoint("llama3", tmp_path / "runs" / "b" / "x" / "model", seed=2)
    output = tmp_path / "results"
    for model in (first, second, first):
        assert run_entry(SCRIPT, _argv(model, tasks_folder, output)) == 0, run_entry.log.read_text()[-3000:]
    results = _results(output)
    assert len(results) == 2, results  # one folder per model; the third run found the first's
    assert len({json.dumps(scores, sort_keys=True) for scores in results.values()}) == 2
    assert run_entry.log.read_text().count("Skipping TinySTS") == 1
    for folder in output.glob("*/*/"):
        recorded = json.loads((folder / "fingerprint.json").read_text())
        assert recorded["sources"][0] in (str(first), str(second))


@pytest.mark.slow
def test_a_damaged_result_is_set_aside_and_only_its_task_runs_again(run_entry, tmp_path, tiny_llama_dir, tasks_folder):
    output = tmp_path / "results"
    argv = _argv(tiny_llama_dir, tasks_folder, output)
    assert run_entry(SCRIPT, argv) == 0
    expected = _results(output)
    (result,) = output.glob("*/*/TinySTS.json")
    untouched = {p: p.read_bytes() for p in result.parent.glob("Tiny*.json") if p != result}
    result.write_text(result.read_text()[:40])  # cut short, as a tool without atomic writes leaves it
    assert run_entry(SCRIPT, argv) == 0, run_entry.log.read_text()[-3000:]
    log = run_entry.log.read_text()
    assert f"{result} cannot be read" in log and "Evaluating" in log
    assert result.with_name("TinySTS.json.corrupt").is_file()
    assert _results(output) == expected
    assert {p: p.read_bytes() for p in untouched} == untouched  # the other tasks were not recomputed
    shutil.rmtree(output)


def _cache_counts(log: str) -> list[tuple[int, int]]:
    """(embedded, read from the cache) of every finished run in the log."""
    import re

    return [(int(a), int(b)) for a, b in re.findall(r"texts embedded: (\d+), read from the embedding cache: (\d+)", log)]


@pytest.mark.slow
def test_a_run_killed_in_the_middle_of_a_cache_write_resumes_from_the_cache(
    run_entry, tmp_path, tiny_llama_dir, tasks_folder
):
    reference = tmp_path / "reference"
    plain = [*_argv(tiny_llama_dir, tasks_folder, reference), "--no_cache"]
    assert run_entry(SCRIPT, plain) == 0, run_entry.log.read_text()[-3000:]
    expected = _results(reference)
    assert not (reference / "embedding_cache").exists()
    ((total, none_cached),) = _cache_counts(run_entry.log.read_text())
    assert none_cached == 0

    output = tmp_path / "killed"
    argv = [*_argv(tiny_llama_dir, tasks_folder, output), "--cache_chunk_texts", "4"]
    # the fifth chunk is half written when the process is killed
    assert run_entry(SCRIPT, argv, "embedding_chunk", 5) == KILLED
    (cache,) = (output / "embedding_cache").iterdir()
    assert len(list(cache.glob("chunk-*.safetensors"))) == 4 and list(cache.glob(".*.tmp"))
    (report,) = folder_report(output / "embedding_cache")
    assert 4 < report.embeddings <= 16
    assert run_entry(SCRIPT, argv) == 0, run_entry.log.read_text()[-3000:]
    embedded, cached = _cache_counts(run_entry.log.read_text())[-1]
    # the four complete chunks were read, not computed again; only the killed chunk was lost
    assert cached == report.embeddings and embedded == total - report.embeddings
    assert _results(output) == expected
    assert not list(cache.glob(".*.tmp"))  # the dead run's temporary is gone

    # every task again (--overwrite): nothing is embedded, the scores are the same
    assert run_entry(SCRIPT, [*argv, "--overwrite"]) == 0
    assert _cache_counts(run_entry.log.read_text())[-1] == (0, total)
    assert _results(output) == expected
