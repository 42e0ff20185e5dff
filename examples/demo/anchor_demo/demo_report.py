"""The demo's report pieces: Anchor vs Baseline in plain words, the loss plot, each run's settings."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from anchor_demo.run_files import config_values, effective_value


def compare_arms(scores: Mapping[str, Mapping[str, float]]) -> dict[str, Any]:
    """Anchor − Baseline per task and on average (scores x 100), and a plain-words verdict."""
    baseline, anchor = scores.get("Baseline", {}), scores.get("Anchor", {})
    untrained = scores.get("Untrained", {})
    tasks = sorted(set(baseline) & set(anchor))
    per_task = {t: round(anchor[t] - baseline[t], 2) for t in tasks}
    result: dict[str, Any] = {"per_task": per_task, "tasks": len(tasks)}
    lines: list[str] = []
    if not tasks:
        result.update(average=None, wins=0, lines=["Anchor and Baseline share no task: no comparison."])
        return result
    mean = lambda d: sum(d[t] for t in tasks) / len(tasks)  # noqa: E731
    average = mean(anchor) - mean(baseline)
    wins = sum(1 for t in tasks if per_task[t] > 0)
    result.update(average=round(average, 2), wins=wins)
    result["baseline_average"] = round(mean(baseline), 2)
    result["anchor_average"] = round(mean(anchor), 2)
    if untrained and all(t in untrained for t in tasks):
        result["untrained_average"] = round(mean(untrained), 2)
    stage_I_only = scores.get("Stage I only", {})
    if stage_I_only and all(t in stage_I_only for t in tasks):
        result["stage_I_only_average"] = round(mean(stage_I_only), 2)
    lines.append(
        "Anchor − Baseline: "
        + ", ".join(f"{t} {per_task[t]:+.2f}" for t in tasks)
        + f"; average {average:+.2f}"
    )
    if average > 0:
        verdict = f"Anchor beats Baseline on average by {average:.2f} points ({wins} of {len(tasks)} tasks better)."
    elif average < 0:
        verdict = (
            f"Anchor does NOT beat Baseline at this scale: {-average:.2f} points lower on average "
            f"({wins} of {len(tasks)} tasks better)."
        )
    else:
        verdict = f"Anchor and Baseline tie on average ({wins} of {len(tasks)} tasks better for Anchor)."
    lines.append(verdict)
    if "untrained_average" in result and "stage_I_only_average" in result:
        u, s1 = result["untrained_average"], result["stage_I_only_average"]
        lines.append(
            f"Average of the same Stage II budget: {u:.2f} -> {result['baseline_average']:.2f} on the untrained "
            f"model ({result['baseline_average'] - u:+.2f}), {s1:.2f} -> {result['anchor_average']:.2f} on the "
            f"Stage I model ({result['anchor_average'] - s1:+.2f}); Stage I alone: {u:.2f} -> {s1:.2f} ({s1 - u:+.2f})."
        )
    result["lines"] = lines
    return result




def table_caption(precision: Mapping[str, Any], machine: Mapping[str, Any], seeds: Sequence[int]) -> str:
    """The line printed under the demo's table: what the numbers depend on beyond the code.

    The scores move with the training precision and the CPU that chose it (docs/demo.md shows
    both precisions and the spread over seeds), so the table carries them, not only summary.json.
    """
    training = "bf16 autocast" if precision.get("bf16") else "float32"
    versions = ", ".join(f"{name} {machine[name]}" for name in ("torch", "transformers", "peft", "mteb") if machine.get(name))
    return (f"Precision: {training} training, {precision.get('eval_dtype', 'float32')} evaluation "
            f"({precision.get('reason', 'no reason recorded')}); seed {'/'.join(map(str, seeds))}; "
            f"{machine.get('cpu', 'unknown CPU')}; {versions}.")


def plot_demo_losses(
    stage_I_dir: Path, baseline_dir: Path, anchor_dir: Path, output: Path, sigma: float = 2.0
) -> Path:
    """Two panels: Stage II loss of Baseline vs Anchor (Figure 4 style), Stage I q2d/d2q losses.

    Curves are Gaussian-smoothed (``sigma`` log points) over the faint raw values.
    """
    from llm2vec.reporting.plots import gaussian_smooth, load_trainer_state, loss_curves

    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    stage_II = {
        "Baseline": loss_curves(load_trainer_state(baseline_dir), ("loss",)).get("loss"),
        "Anchor": loss_curves(load_trainer_state(anchor_dir), ("loss",)).get("loss"),
    }
    stage_I = loss_curves(load_trainer_state(stage_I_dir))
    if not any(v is not None for v in stage_II.values()) and not stage_I:
        raise ValueError("no losses logged")
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2), dpi=120)
    colors = {"Baseline": "tab:blue", "Anchor": "tab:red"}
    for label, curve in stage_II.items():
        if curve is None:
            continue
        steps, values = curve
        left.plot(steps, values, color=colors[label], alpha=0.25, linewidth=0.8)
        left.plot(steps, gaussian_smooth(values, sigma), color=colors[label], linewidth=1.8, label=label)
    left.set_title("Stage II contrastive loss (cf. paper Figure 4)")
    left.set_xlabel("Stage II step")
    left.set_ylabel("InfoNCE loss")
    left.grid(alpha=0.3)
    left.legend()
    styles = {"loss": ("-", "k", "total (0.2·q2d + 0.8·d2q)"), "q2d_loss": ("--", "tab:green", "q2d"),
              "d2q_loss": (":", "tab:purple", "d2q")}
    for key, (steps, values) in stage_I.items():
        style, color, label = styles.get(key, ("-.", "gray", key))
        right.plot(steps, values, style, color=color, alpha=0.25, linewidth=0.8)
        right.plot(steps, gaussian_smooth(values, sigma), style, color=color, linewidth=1.8, label=label)
    right.set_title("Stage I reconstruction losses (Anchor arm)")
    right.set_xlabel("Stage I step")
    right.set_ylabel("cross-entropy")
    right.grid(alpha=0.3)
    right.legend()
    fig.suptitle(f"Gaussian-smoothed (σ={sigma:g} log points) over the raw values", fontsize=9)
    fig.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.stem}.tmp-{os.getpid()}.png")
    fig.savefig(tmp, format="png")
    plt.close(fig)
    os.replace(tmp, output)
    return output




def training_info(config_path: Path, output_dir: Path, overrides: Sequence[str]) -> dict[str, Any]:
    """Settings and logged losses of a training run, for the summary."""
    values = config_values(config_path)
    keys = (
        "per_device_train_batch_size", "gradient_accumulation_steps", "stop_after_n_steps", "learning_rate",
        "max_seq_length", "torch_dtype", "bf16", "attn_implementation", "seed", "alpha", "loss_scale",
        "lora_r", "lora_dropout",
    )
    info: dict[str, Any] = {"config": str(config_path), "output_dir": str(output_dir)}
    info["settings"] = {k: effective_value(values, overrides, k) for k in keys if k in values}
    batch = (info["settings"].get("per_device_train_batch_size") or 0) * (
        info["settings"].get("gradient_accumulation_steps") or 1
    )
    try:
        from llm2vec.reporting.plots import load_trainer_state, loss_curves

        state = load_trainer_state(output_dir)
        curves = loss_curves(state)
        steps = int(state.get("global_step") or 0)
        info["steps"] = steps
        info["samples"] = steps * batch
        for key, (_, values_) in curves.items():
            head = values_[: max(1, len(values_) // 5)]
            tail = values_[-max(1, len(values_) // 5) :]
            info[key] = {
                "first": round(float(values_[0]), 4),
                "last": round(float(values_[-1]), 4),
                "mean_first_fifth": round(float(head.mean()), 4),
                "mean_last_fifth": round(float(tail.mean()), 4),
            }
        runtime = [e.get("train_runtime") for e in state.get("log_history", []) if "train_runtime" in e]
        if runtime:
            info["train_runtime_seconds"] = runtime[-1]
    except (FileNotFoundError, ValueError):
        pass
    return info


