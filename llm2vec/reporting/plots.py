"""Training curves: losses from ``trainer_state.json`` and scores of early checkpoints.

- :func:`loss_curves` reads the Trainer's ``log_history`` (entries with ``loss``, and
  ``q2d_loss`` / ``d2q_loss`` for Stage I runs) and :func:`plot_loss_curves` draws one or more runs,
  optionally Gaussian-smoothed as the paper's Figure 4 (Stage II loss, Baseline vs Anchor).
- :func:`score_curve` averages the mteb results of checkpoints (a list of ``(step, results
  folder)`` or a folder of ``checkpoint-N`` result folders) and :func:`plot_score_curves` draws
  score against step as the paper's Figure 2, optionally with the paper's Table 9 numbers.

Plots are PNG files written with matplotlib's Agg backend (no display needed).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "LOSS_KEYS",
    "ScoreCurve",
    "find_trainer_state",
    "load_trainer_state",
    "loss_curves",
    "gaussian_smooth",
    "plot_loss_curves",
    "checkpoint_result_dirs",
    "score_curve",
    "plot_score_curves",
]

#: the loss series logged by the trainers (``q2d_loss``/``d2q_loss`` in Stage I only)
LOSS_KEYS: tuple[str, ...] = ("loss", "q2d_loss", "d2q_loss")
_CHECKPOINT = re.compile(r"checkpoint-(\d+)$")


# ---------------------------------------------------------------------------------------------- losses
def find_trainer_state(path: str | os.PathLike) -> Path:
    """``trainer_state.json`` of a run: the file itself, the run folder's, or its last checkpoint's.

    Raises:
        FileNotFoundError: no trainer_state.json at or below ``path``.
    """
    path = Path(path)
    if path.is_file():
        return path
    direct = path / "trainer_state.json"
    if direct.is_file():
        return direct
    checkpoints = sorted(
        (int(m.group(1)), p)
        for p in path.glob("checkpoint-*")
        if (m := _CHECKPOINT.search(p.name)) and (p / "trainer_state.json").is_file()
    )
    if checkpoints:
        return checkpoints[-1][1] / "trainer_state.json"
    raise FileNotFoundError(f"no trainer_state.json in {path} or its checkpoint-N folders")


def load_trainer_state(path: str | os.PathLike) -> dict[str, Any]:
    """The parsed ``trainer_state.json`` (see :func:`find_trainer_state`)."""
    state = json.loads(find_trainer_state(path).read_text(encoding="utf-8"))
    if not isinstance(state, dict) or not isinstance(state.get("log_history"), list):
        raise ValueError(f"{path}: not a trainer_state.json (no 'log_history' list)")
    return state


def loss_curves(
    state: Mapping[str, Any] | str | os.PathLike, keys: Sequence[str] = LOSS_KEYS
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{key: (steps, values)}`` for each of ``keys`` logged in ``log_history``.

    Only training log entries count (those with a ``step`` and a finite value for the key); a key
    that never appears is left out. A step logged twice (e.g. after resuming) keeps its last value.
    """
    if not isinstance(state, Mapping):
        state = load_trainer_state(state)
    curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for key in keys:
        points: dict[int, float] = {}
        for entry in state.get("log_history", []):
            value = entry.get(key)
            step = entry.get("step")
            if step is None or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if not math.isfinite(float(value)):
                continue
            points[int(step)] = float(value)
        if points:
            steps = np.array(sorted(points), dtype=np.int64)
            curves[key] = (steps, np.array([points[s] for s in steps], dtype=np.float64))
    return curves


def gaussian_smooth(values: Sequence[float] | np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian smoothing over log points (``sigma`` in points), renormalized at the edges.

    Near the ends the kernel is cut and re-weighted, so a constant series stays constant (no
    pull towards zero as with zero padding). ``sigma <= 0`` returns a copy.
    """
    values = np.asarray(values, dtype=np.float64)
    if sigma <= 0 or values.size < 2:
        return values.copy()
    radius = max(1, int(math.ceil(4 * sigma)))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    smoothed = np.empty_like(values)
    n = values.size
    for i in range(n):
        lo, hi = max(0, i - radius), min(n, i + radius + 1)
        weights = kernel[lo - i + radius : hi - i + radius]
        smoothed[i] = float(np.dot(weights, values[lo:hi]) / weights.sum())
    return smoothed


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_loss_curves(
    runs: Mapping[str, str | os.PathLike | Mapping[str, Any]],
    output: str | os.PathLike,
    sigma: float | None = None,
    keys: Sequence[str] = LOSS_KEYS,
    title: str | None = None,
    show_raw: bool = True,
    log_y: bool = False,
) -> Path:
    """Draw the loss curves of one or more runs (``{label: run folder / trainer_state}``) to PNG.

    With ``sigma`` the curves are Gaussian-smoothed (Figure 4 of the paper) and, with
    ``show_raw``, the raw values are drawn faintly behind. Returns the PNG path.

    Raises:
        ValueError: no run has any of ``keys`` logged.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    styles = {"loss": "-", "q2d_loss": "--", "d2q_loss": ":"}
    drawn = 0
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (label, run) in enumerate(runs.items()):
        curves = loss_curves(run, keys)
        color = colors[index % len(colors)]
        for key, (steps, values) in curves.items():
            name = label if key == "loss" else f"{label} {key}"
            style = styles.get(key, "-.")
            if sigma:
                if show_raw:
                    ax.plot(steps, values, style, color=color, alpha=0.2, linewidth=0.8)
                ax.plot(steps, gaussian_smooth(values, sigma), style, color=color, label=name, linewidth=1.6)
            else:
                ax.plot(steps, values, style, color=color, label=name, linewidth=1.4)
            drawn += 1
    if drawn == 0:
        plt.close(fig)
        raise ValueError(f"none of {list(keys)} is logged in the given runs")
    ax.set_xlabel("Steps")
    ax.set_ylabel("Loss")
    if log_y:
        ax.set_yscale("log")
    ax.set_title(title or ("Training loss" + (f" (Gaussian-smoothed, σ={sigma:g})" if sigma else "")))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return _save(fig, plt, output)


def _save(fig: Any, plt: Any, output: str | os.PathLike) -> Path:
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(output, format="png")
    plt.close(fig)
    return output


# ---------------------------------------------------------------------------------------------- scores
@dataclass
class ScoreCurve:
    """Mean score per checkpoint step over ``tasks`` (the tasks every checkpoint has)."""

    steps: list[int]
    scores: list[float]
    tasks: list[str]
    dropped: dict[int, list[str]] = field(default_factory=dict)


def checkpoint_result_dirs(directory: str | os.PathLike) -> list[tuple[int, Path]]:
    """``(step, folder)`` of the ``checkpoint-N`` folders below ``directory``, by step.

    A ``checkpoint-N`` folder may hold the task files itself or mteb's ``<model>/<revision>``
    layout below it. Folders nested deeper (``<root>/<model>/<revision>`` where the model name
    ends in ``checkpoint-N``, as mteb writes ``run__checkpoint-25``) are found too.

    Raises:
        FileNotFoundError: no checkpoint folders below ``directory``.
        ValueError: two folders for the same step (results of several runs below ``directory``).
    """
    root = Path(directory)
    found: dict[int, Path] = {}
    for path in sorted(root.rglob("*")):
        if not path.is_dir():
            continue
        match = _CHECKPOINT.search(path.name)
        if not match:
            continue
        step = int(match.group(1))
        if step in found:
            if found[step] in path.parents:
                continue  # a folder inside an already found checkpoint folder
            raise ValueError(f"two result folders for step {step}: {found[step]} and {path}; pass one run's folder")
        found[step] = path
    if not found:
        raise FileNotFoundError(f"no checkpoint-N folders below {root}")
    return sorted(found.items())


def score_curve(
    points: Iterable[tuple[int, str | os.PathLike]] | str | os.PathLike,
    tasks: Sequence[str] | None = None,
) -> ScoreCurve:
    """Mean score (x 100) of each checkpoint's results.

    ``points`` is a list of ``(step, results folder)`` or a folder of ``checkpoint-N`` result
    folders. ``tasks`` fixes the tasks averaged (a checkpoint missing one of them is an error);
    by default the tasks common to all checkpoints are averaged and the others are reported in
    ``dropped``. CQADupstack forums are folded into one task as in the paper's tables.

    Raises:
        ValueError: no common task, or a checkpoint lacks one of ``tasks``.
    """
    from llm2vec.reporting.results_io import read_results_dir
    from llm2vec.reporting.tables import normalize_scores

    if isinstance(points, (str, os.PathLike)):
        points = checkpoint_result_dirs(points)
    results = sorted((int(step), normalize_scores(read_results_dir(path))[0]) for step, path in points)
    if not results:
        raise ValueError("no checkpoints given")
    if tasks is None:
        common = set.intersection(*(set(scores) for _, scores in results))
        chosen = sorted(common)
        if not chosen:
            raise ValueError("the checkpoints have no task in common")
    else:
        chosen = list(tasks)
        for step, scores in results:
            missing = [t for t in chosen if t not in scores]
            if missing:
                raise ValueError(f"checkpoint at step {step} lacks {', '.join(missing)}")
    dropped = {step: sorted(set(scores) - set(chosen)) for step, scores in results if set(scores) - set(chosen)}
    return ScoreCurve(
        steps=[step for step, _ in results],
        scores=[sum(scores[t] for t in chosen) / len(chosen) for _, scores in results],
        tasks=chosen,
        dropped=dropped,
    )


def plot_score_curves(
    curves: Mapping[str, ScoreCurve | Iterable[tuple[int, str | os.PathLike]] | str | os.PathLike],
    output: str | os.PathLike,
    tasks: Sequence[str] | None = None,
    paper_keys: Sequence[str] = (),
    title: str | None = None,
) -> Path:
    """Draw score against Stage II step for each run (Figure 2), plus paper rows of Table 9.

    ``curves`` maps labels to :class:`ScoreCurve` objects or to what :func:`score_curve` takes.
    ``paper_keys`` (e.g. ``llama3.2-1b-anchor``) add the paper's Table 9 curves, dashed.
    """
    from llm2vec.reporting.paper_results import early_stage_scores

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.2), dpi=120)
    for label, curve in curves.items():
        if not isinstance(curve, ScoreCurve):
            curve = score_curve(curve, tasks)
        ax.plot(curve.steps, curve.scores, "o-", label=f"{label} ({len(curve.tasks)} tasks)")
    for key in paper_keys:
        steps, scores = early_stage_scores(key)
        ax.plot(steps, scores, "s--", alpha=0.7, label=f"paper {key} (Table 9)")
    ax.set_xlabel("Stage II steps")
    ax.set_ylabel("Average score")
    ax.set_title(title or "Score of early Stage II checkpoints")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    return _save(fig, plt, output)
