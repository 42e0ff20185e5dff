"""Training-curve extraction and PNG plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from llm2vec.reporting.plots import (
    checkpoint_result_dirs,
    find_trainer_state,
    gaussian_smooth,
    loss_curves,
    plot_loss_curves,
    plot_score_curves,
    score_curve,
)
from llm2vec.evaluation.task_lists import CQADUPSTACK_SUBSETS
from tests.helpers import load_script

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _trainer_state(n_steps: int = 60, with_components: bool = True, start: float = 10.0) -> dict:
    history = []
    for step in range(2, n_steps + 1, 2):
        entry = {"epoch": step / n_steps, "learning_rate": 1e-4, "step": step, "loss": start / step + 0.1 * (step % 3)}
        if with_components:
            entry["q2d_loss"] = 2.0 + 1.0 / step
            entry["d2q_loss"] = 1.0 + 1.0 / step
        history.append(entry)
        if step % 20 == 0:
            history.append({"eval_loss": 99.0, "step": step, "epoch": step / n_steps})
    history.append({"step": n_steps, "train_loss": 1.23, "train_runtime": 3.0, "epoch": 1.0})
    return {"global_step": n_steps, "log_history": history}


def _write_state(folder: Path, state: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "trainer_state.json"
    path.write_text(json.dumps(state))
    return path


def _is_png(path: Path, min_bytes: int = 8000) -> bool:
    data = path.read_bytes()
    return data[:8] == PNG_MAGIC and len(data) >= min_bytes


def test_loss_curves_extracts_logged_series(tmp_path: Path) -> None:
    state = _trainer_state()
    curves = loss_curves(state)
    assert set(curves) == {"loss", "q2d_loss", "d2q_loss"}
    steps, values = curves["loss"]
    assert steps.tolist() == list(range(2, 61, 2))  # eval and summary entries are not losses
    assert values[0] == pytest.approx(10.0 / 2 + 0.1 * 2)
    assert values[-1] == pytest.approx(10.0 / 60 + 0.0)
    assert curves["d2q_loss"][1][4] == pytest.approx(1.0 + 1.0 / 10)
    # From a run folder: the last checkpoint's trainer_state when the root has none.
    _write_state(tmp_path / "run" / "checkpoint-20", _trainer_state(20))
    _write_state(tmp_path / "run" / "checkpoint-100", _trainer_state(100, with_components=False))
    _write_state(tmp_path / "run" / "checkpoint-40", _trainer_state(40))
    assert find_trainer_state(tmp_path / "run") == tmp_path / "run" / "checkpoint-100" / "trainer_state.json"
    from_dir = loss_curves(tmp_path / "run")
    assert set(from_dir) == {"loss"} and from_dir["loss"][0][-1] == 100
    # A step logged twice (resume) keeps its last value.
    state["log_history"].append({"step": 2, "loss": 7.0})
    assert loss_curves(state, keys=("loss",))["loss"][1][0] == 7.0
    with pytest.raises(FileNotFoundError):
        find_trainer_state(tmp_path / "empty")


def test_gaussian_smooth() -> None:
    constant = np.full(50, 3.0)
    np.testing.assert_allclose(gaussian_smooth(constant, 5), constant)
    values = np.random.default_rng(0).normal(size=200)
    np.testing.assert_array_equal(gaussian_smooth(values, 0), values)
    smoothed = gaussian_smooth(values, 4)
    assert smoothed.std() < 0.5 * values.std()
    # Interior point: the normalized Gaussian-weighted mean of its neighbourhood.
    offsets = np.arange(-16, 17)
    weights = np.exp(-0.5 * (offsets / 4) ** 2)
    assert smoothed[100] == pytest.approx(np.dot(weights, values[84:117]) / weights.sum())
    # Edge: renormalized over the available points only.
    w0 = weights[16:]
    assert smoothed[0] == pytest.approx(np.dot(w0, values[:17]) / w0.sum())


def test_plot_loss_curves_writes_png(tmp_path: Path) -> None:
    anchor = _write_state(tmp_path / "anchor", _trainer_state(start=1.0))
    baseline = _write_state(tmp_path / "baseline", _trainer_state(with_components=False))
    out = plot_loss_curves({"Anchor": anchor, "Baseline": tmp_path / "baseline"}, tmp_path / "fig" / "loss.png", sigma=3)
    assert out == tmp_path / "fig" / "loss.png" and _is_png(out)
    raw = plot_loss_curves({"Anchor": anchor}, tmp_path / "raw.png", keys=("loss",))
    assert _is_png(raw)
    with pytest.raises(ValueError, match="none of"):
        plot_loss_curves({"Baseline": baseline}, tmp_path / "none.png", keys=("q2d_loss",))


def _write_results(folder: Path, scores: dict[str, float]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for task, score in scores.items():
        data = {"task_name": task, "mteb_version": "2.0.0", "scores": {"test": [
            {"hf_subset": "default", "languages": ["eng-Latn"], "main_score": score}]}}
        (folder / f"{task}.json").write_text(json.dumps(data))


def test_score_curve_from_checkpoint_folders(tmp_path: Path) -> None:
    root = tmp_path / "anchor"
    _write_results(root / "checkpoint-25", {"SciFact": 0.50, "STS12": 0.70, "MyLocal": 0.1})
    # mteb's layout below the checkpoint folder, with CQADupstack forums folded into one task
    forums = {forum: 0.30 for forum in CQADUPSTACK_SUBSETS}
    _write_results(root / "checkpoint-50" / "local__model" / "no_revision_available", {"SciFact": 0.60, "STS12": 0.80, **forums})
    _write_results(root / "checkpoint-75", {"SciFact": 0.62, "STS12": 0.84})
    assert [step for step, _ in checkpoint_result_dirs(root)] == [25, 50, 75]

    curve = score_curve(root)
    assert curve.steps == [25, 50, 75]
    assert curve.tasks == ["STS12", "SciFact"]
    assert curve.scores == pytest.approx([60.0, 70.0, 73.0])
    assert curve.dropped == {25: ["MyLocal"], 50: ["CQADupstackRetrieval"]}

    points = score_curve([(50, root / "checkpoint-50"), (25, root / "checkpoint-25")], tasks=["SciFact"])
    assert points.steps == [25, 50] and points.scores == pytest.approx([50.0, 60.0])
    with pytest.raises(ValueError, match="lacks"):
        score_curve(root, tasks=["SciFact", "NQ"])

    out = plot_score_curves({"Anchor": curve, "points": [(25, root / "checkpoint-25")]}, tmp_path / "early.png",
                            paper_keys=["llama3.2-1b-anchor"])
    assert _is_png(out)


def test_plot_training_script(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    module = load_script(REPO / "scripts" / "plot_training.py")
    _write_state(tmp_path / "run", _trainer_state())
    assert module.main(["loss", str(tmp_path / "run"), "--label", "Anchor", "--sigma", "2", "--out", str(tmp_path / "l.png")]) == 0
    assert _is_png(tmp_path / "l.png")
    _write_results(tmp_path / "ckpts" / "checkpoint-25", {"SciFact": 0.5})
    _write_results(tmp_path / "ckpts" / "checkpoint-50", {"SciFact": 0.6})
    code = module.main(["scores", "--run", f"A={tmp_path / 'ckpts'}", "--point", f"B=10:{tmp_path / 'ckpts' / 'checkpoint-25'}",
                        "--tasks", "SciFact", "--out", str(tmp_path / "s.png")])
    assert code == 0 and _is_png(tmp_path / "s.png")
    assert "A: 2 checkpoints, mean over 1 tasks" in capsys.readouterr().out
