"""The command line of run_reproduction.py that needs no model: reading and adopting records files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro_small.jobs import Executor, Settings
from repro_small.plan import build_plan
from tests.helpers import REPO, load_script

run_reproduction = load_script(REPO / "examples" / "reproduce_small" / "run_reproduction.py")


def _executor(tmp_path: Path) -> Executor:
    suite = tmp_path / "suite"
    suite.mkdir(parents=True)
    (suite / "manifest.json").write_text(json.dumps({"tasks": ["x"]}))
    return Executor(build_plan((1,)), Settings(root=tmp_path / "root", suite=suite, models={}), log=lambda _: None)


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no such file"), ("{not json", "not JSON"), ('["Baseline-s1"]', "job name -> record"),
     ('{"Baseline-s1": {"summary": "no fingerprint"}}', "job name -> record")],
)
def test_a_bad_records_file_is_an_error_that_names_it(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "records.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(SystemExit, match=message) as error:
        run_reproduction.read_records(path)
    assert str(path) in str(error.value)


def test_adopting_reports_what_was_taken_and_what_was_refused(tmp_path: Path, capsys) -> None:
    executor = _executor(tmp_path)
    records = {
        "Baseline-s1": {"fingerprint": executor.fingerprint(executor.by_name["Baseline-s1"]), "steps": 200},
        "Baseline-s1@25": {"fingerprint": "stale"},
        "retired-job": {"fingerprint": "x"},
    }
    path = tmp_path / "records.json"
    path.write_text(json.dumps(records))
    run_reproduction.adopt_records(path, [executor])
    out = capsys.readouterr().out
    assert "3 records; adopted 1; 1 name no job" in out
    assert "(they will run): Baseline-s1@25" in out
    assert executor.done(executor.by_name["Baseline-s1"]) and not executor.done(executor.by_name["Baseline-s1@25"])
