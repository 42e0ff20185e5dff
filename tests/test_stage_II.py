"""Stage II: the LoRA contrastive model, its checkpoints, multi-process gradients, the entry point
end to end (Stage I -> Stage II -> reload), resume, and the paper's Stage II configs."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from llm2vec import LLM2Vec
from llm2vec.dataset import load_train_dataset
from llm2vec.llm2vec_contrastive import LORA_TARGET_MODULES, LLM2VecContrastive, LoraSettings
from llm2vec.loss.hard_negative_nll_loss import HardNegativeNLLLoss, cosine_similarity_matrix
from llm2vec.tokenization import SEPARATOR
from llm2vec.testing.tiny_data import write_tiny_pairs_dir
from llm2vec.training.arguments import STAGE_II_CONFIG_TYPES
from llm2vec.training.checkpoints import COMPLETE_MARKER
from llm2vec.training.config_parsing import parse_config

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "train_configs"
WORKER = Path(__file__).resolve().parent / "distributed_stage_II_worker.py"
STAGE_II_TYPES = STAGE_II_CONFIG_TYPES
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors", "llm2vec_config.json", "tokenizer_config.json")
TEXTS = [
    f"Given a question, retrieve passages that answer the question; {SEPARATOR}How does the tide affect the reef?",
    "The orbit of the comet crossed the galaxy near a bright star.",
    "A recipe with garlic, butter and flour simmered in the kitchen.",
]


def _worker_module() -> Any:
    spec = importlib.util.spec_from_file_location("distributed_stage_II_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _encode(model: LLM2Vec, texts: list[str]) -> torch.Tensor:
    return model.encode(texts, batch_size=64, show_progress_bar=False)


def _lora_model(model_dir: Path, **settings: Any) -> LLM2VecContrastive:
    model = LLM2VecContrastive.from_pretrained(model_dir, dtype=torch.float32)
    model.add_lora(LoraSettings(**settings))
    return model


# ---------------------------------------------------------------------- model (in process)
def test_only_lora_parameters_train(tiny_llama_dir: Path) -> None:
    model = _lora_model(tiny_llama_dir, lora_r=8)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    layers = model.model.config.num_hidden_layers
    # lora_A and lora_B of every target projection of every layer, and nothing else
    assert len(trainable) == 2 * len(LORA_TARGET_MODULES) * layers
    assert all(".lora_A." in name or ".lora_B." in name for name in trainable)
    for target in LORA_TARGET_MODULES:
        assert sum(f".{target}.lora_" in name for name in trainable) == 2 * layers, target
    assert any("embed_tokens" in name for name in frozen) and not any("lora_" in name for name in frozen)
    config = model.model.peft_config["default"]
    assert config.r == 8 and config.lora_alpha == 16  # alpha defaults to 2 r
    assert config.lora_dropout == pytest.approx(0.05) and config.bias == "none"
    assert set(config.target_modules) == set(LORA_TARGET_MODULES)
    with pytest.raises(ValueError, match="already has a LoRA adapter"):
        model.add_lora(LoraSettings(lora_r=8))

    full = LLM2VecContrastive.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    full.train_full_parameters()
    assert all(p.requires_grad for p in full.parameters())
    assert not any("lora_" in name for name, _ in full.named_parameters())
    explicit = _lora_model(tiny_llama_dir, lora_r=4, lora_alpha=5)
    assert explicit.model.peft_config["default"].lora_alpha == 5


def test_forward_is_the_loss_of_the_pooled_embeddings_and_only_lora_gets_gradients(tiny_llama_dir: Path) -> None:
    worker = _worker_module()
    model = worker.build_model(tiny_llama_dir)
    batch = worker.features(model, 0, 4)
    output = model(**batch)
    with torch.no_grad():
        embeddings = [model.embed(batch[key]) for key in ("q_features", "d_features", "n_features")]
        scores, labels = HardNegativeNLLLoss(worker.LOSS_SCALE).scores(*embeddings)
    assert output.loss.item() == pytest.approx(HardNegativeNLLLoss(worker.LOSS_SCALE)(*embeddings).item(), abs=1e-6)
    assert output.accuracy.item() == pytest.approx((scores.argmax(-1) == labels).float().mean().item())
    without_negatives = model(q_features=batch["q_features"], d_features=batch["d_features"])
    assert without_negatives.loss.item() != pytest.approx(output.loss.item(), abs=1e-4)

    output.loss.backward()
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None and parameter.grad.abs().max() > 0, name
        else:
            assert parameter.grad is None, name


def test_adapter_checkpoint_reloads_and_restores_exactly(tiny_llama_dir: Path, tmp_path: Path) -> None:
    worker = _worker_module()
    trained = worker.build_model(tiny_llama_dir)  # random non-zero LoRA B: the adapter matters
    expected = _encode(trained, TEXTS)
    checkpoint = trained.save(tmp_path / "checkpoint")
    for name in ADAPTER_FILES:
        assert (checkpoint / name).is_file(), name
    assert not (checkpoint / "model.safetensors").exists(), "only the adapter is saved"
    assert all("lora_" in key for key in load_file(checkpoint / "adapter_model.safetensors"))

    reloaded = LLM2Vec.from_pretrained(tiny_llama_dir, peft_model_name_or_path=checkpoint)
    assert torch.allclose(_encode(reloaded, TEXTS), expected, atol=1e-6)
    base = _encode(LLM2Vec.from_pretrained(tiny_llama_dir), TEXTS)
    assert (base - expected).abs().max() > 1e-3, "the adapter must change the embeddings"

    # Resume: a fresh adapter (B = 0) gets exactly the saved weights back.
    fresh = LLM2VecContrastive.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    fresh.add_lora(LoraSettings(lora_r=4, lora_dropout=0.0))
    fresh.load_checkpoint_weights(checkpoint)
    trained_state = {n: p for n, p in trained.named_parameters() if p.requires_grad}
    fresh_state = {n: p for n, p in fresh.named_parameters() if p.requires_grad}
    assert trained_state.keys() == fresh_state.keys()
    assert all(torch.equal(trained_state[n], fresh_state[n]) for n in trained_state)

    wrong_rank = _lora_model(tiny_llama_dir, lora_r=8)
    with pytest.raises(ValueError, match="LoRA rank"):
        wrong_rank.load_checkpoint_weights(checkpoint)


def test_full_parameter_checkpoint_is_a_full_model(tiny_llama_dir: Path, tmp_path: Path) -> None:
    model = LLM2VecContrastive.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    model.train_full_parameters()
    with torch.no_grad():
        model.model.layers[0].mlp.down_proj.weight.add_(0.05)
    expected = _encode(model, TEXTS)
    checkpoint = model.save(tmp_path / "full")
    assert (checkpoint / "model.safetensors").is_file() and not (checkpoint / "adapter_config.json").exists()
    assert torch.allclose(_encode(LLM2Vec.from_pretrained(checkpoint), TEXTS), expected, atol=1e-6)
    resumed = LLM2VecContrastive.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    resumed.train_full_parameters()
    resumed.load_checkpoint_weights(checkpoint)
    assert torch.equal(resumed.model.layers[0].mlp.down_proj.weight, model.model.layers[0].mlp.down_proj.weight)


def test_given_adapter_is_merged_before_the_fresh_lora(tiny_llama_dir: Path, tmp_path: Path) -> None:
    first = _worker_module().build_model(tiny_llama_dir)
    first_dir = first.save(tmp_path / "first_adapter")
    expected = _encode(first, TEXTS)
    model = LLM2VecContrastive.from_pretrained(
        tiny_llama_dir, peft_model_name_or_path=first_dir, merge_peft=True, dtype=torch.float32
    )
    assert not model.has_adapter
    assert torch.allclose(_encode(model, TEXTS), expected, atol=1e-5)
    model.add_lora(LoraSettings(lora_r=8))  # a fresh adapter starts at B = 0: the merged model's embeddings are kept
    assert torch.allclose(_encode(model, TEXTS), expected, atol=1e-5)


# ---------------------------------------------------------------------- two processes
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_give_the_loss_and_lora_gradients_of_one_process_on_the_union(
    tiny_llama_dir: Path, tmp_path: Path
) -> None:
    prefix = tmp_path / "ddp"
    command = [
        sys.executable, "-m", "torch.distributed.run",
        "--nnodes=1", "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
        str(WORKER), str(tiny_llama_dir), str(prefix),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(REPO)}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert result.returncode == 0, result.stderr[-4000:]

    worker = _worker_module()
    model = worker.build_model(tiny_llama_dir)
    output = model(**worker.features(model, 0, worker.UNION_SIZE))
    output.loss.backward()
    reference = worker.lora_gradients(model)
    assert min(g.abs().max().item() for g in reference.values()) > 1e-5, "every LoRA weight needs a gradient"

    for rank in (0, 1):
        saved = torch.load(f"{prefix}.rank{rank}.pt")
        assert saved["world"] == 2
        assert saved["loss"].item() == pytest.approx(output.loss.item(), abs=1e-5)
        assert saved["accuracy"].item() == pytest.approx(output.accuracy.item())
        grads = {name.removeprefix("module."): g for name, g in saved["grads"].items()}
        assert grads.keys() == reference.keys()
        difference = max((grads[n] - reference[n]).abs().max().item() for n in reference)
        assert difference < 1e-5, f"rank {rank}: max |grad difference| {difference:.3g}"
        # also per tensor, relative to its own size (some LoRA A gradients are small)
        for name in reference:
            relative = (grads[name] - reference[name]).abs().max() / reference[name].abs().max()
            assert relative < 1e-3, (rank, name, relative.item())


# ---------------------------------------------------------------------- entry points end to end
def _run(script: str, config: str, *overrides: str, processes: int = 1) -> subprocess.CompletedProcess:
    launcher = [sys.executable]
    if processes > 1:
        launcher += [
            "-m", "torch.distributed.run", "--nnodes=1", f"--nproc_per_node={processes}",
            "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
        ]
    command = [*launcher, str(REPO / "experiments" / script), str(CONFIGS / "tiny" / config), *overrides]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    return result


def _stage_two_overrides(base: Path, data: Path) -> list[str]:
    return ["--model_name_or_path", str(base), "--dataset_file_path", str(data), "--disable_tqdm", "true"]


def _logged(trainer_state: Path) -> dict[int, dict[str, float]]:
    history = json.loads(trainer_state.read_text())["log_history"]
    return {entry["step"]: entry for entry in history if "loss" in entry}


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, tiny_data_dir: Path) -> dict[str, Path]:
    """Stage I (4 steps) on the tiny Llama, then the tiny Stage II config (60 steps) on its output."""
    root = tmp_path_factory.mktemp("stage_II_pipeline")
    stage_one, stage_two = root / "s1", root / "s2"
    _run(
        "run_stage_I.py", "stage_I_tiny.json",
        "--output_dir", str(stage_one), "--model_name_or_path", str(tiny_llama_dir),
        "--dataset_file_path", str(tiny_data_dir), "--stop_after_n_steps", "4", "--save_steps", "4",
        "--disable_tqdm", "true",
    )
    _run(
        "run_stage_II.py", "stage_II_tiny.json",
        "--output_dir", str(stage_two), "--save_merged_model", "true", *_stage_two_overrides(stage_one, tiny_data_dir),
    )
    return {"stage_one": stage_one, "stage_two": stage_two, "data": tiny_data_dir}


def _tiny_config() -> dict[str, Any]:
    return json.loads((CONFIGS / "tiny" / "stage_II_tiny.json").read_text())


@pytest.mark.slow
def test_stage_II_output_reloads_with_the_trained_embeddings(pipeline: dict[str, Path]) -> None:
    stage_one, stage_two = pipeline["stage_one"], pipeline["stage_two"]
    steps = _tiny_config()["stop_after_n_steps"]
    final_checkpoint = stage_two / f"checkpoint-{steps}"
    for folder in (stage_two, final_checkpoint):
        for name in ADAPTER_FILES:
            assert (folder / name).is_file(), folder / name
    assert (final_checkpoint / COMPLETE_MARKER).is_file()
    adapter_config = json.loads((stage_two / "adapter_config.json").read_text())
    assert adapter_config["r"] == 8 and adapter_config["lora_alpha"] == 16

    reloaded = LLM2Vec.from_pretrained(stage_one, peft_model_name_or_path=stage_two)
    assert reloaded.pooling_mode == "eos_token"
    embeddings = _encode(reloaded, TEXTS)
    # <output_dir>/merged was written from the weights in memory at the end of training.
    merged = _encode(LLM2Vec.from_pretrained(stage_two / "merged"), TEXTS)
    assert torch.allclose(embeddings, merged, atol=1e-5), (embeddings - merged).abs().max()
    base = _encode(LLM2Vec.from_pretrained(stage_one), TEXTS)
    assert (embeddings - base).abs().max() > 1e-2, "training must have changed the embeddings"
    final = load_file(stage_two / "adapter_model.safetensors")
    at_last_step = load_file(final_checkpoint / "adapter_model.safetensors")
    assert final.keys() == at_last_step.keys() and all(torch.equal(final[k], at_last_step[k]) for k in final)


HELD_OUT_FILES = ("nq", "squad")
GROUP = 16  # candidates per retrieval group: the tiny config's batch size


def _held_out_accuracy(model: LLM2Vec, data_dir: Path) -> tuple[float, float]:
    """Top-1 query -> positive retrieval on held-out pairs, texts formatted as in training.

    Returns the accuracy among all held-out positives and the mean accuracy among the positives of
    consecutive groups of ``GROUP`` pairs (same task, as in a training batch; chance 1 / GROUP).
    """
    dataset = load_train_dataset("E5", data_dir, per_device_batch_size=8, world_size=1, seed=0, files=HELD_OUT_FILES)
    samples = [dataset[i] for i in range(len(dataset))]
    queries = _encode(model, [s.query for s in samples])
    documents = _encode(model, [s.positive for s in samples])
    scores = cosine_similarity_matrix(queries, documents)
    overall = (scores.argmax(dim=1) == torch.arange(len(samples))).float().mean().item()
    grouped = [
        (scores[i : i + GROUP, i : i + GROUP].argmax(dim=1) == torch.arange(GROUP)).float().mean().item()
        for i in range(0, len(samples), GROUP)
    ]
    return overall, sum(grouped) / len(grouped)


@pytest.mark.slow
def test_stage_II_loss_falls_and_held_out_retrieval_improves(
    pipeline: dict[str, Path], tmp_path: Path, record_property: Callable[[str, Any], None]
) -> None:
    stage_one, stage_two = pipeline["stage_one"], pipeline["stage_two"]
    config = _tiny_config()
    steps, every = config["stop_after_n_steps"], config["logging_steps"]
    logged = _logged(stage_two / f"checkpoint-{steps}" / "trainer_state.json")
    assert sorted(logged) == list(range(every, steps + 1, every))
    assert all(0.0 <= entry["accuracy"] <= 1.0 for entry in logged.values())
    first, last = logged[every]["loss"], logged[steps]["loss"]
    assert last < first - 0.4, (first, last)

    held_out = write_tiny_pairs_dir(tmp_path / "held_out", files=HELD_OUT_FILES, n_per_file=64, seed=20251)
    before, before_grouped = _held_out_accuracy(LLM2Vec.from_pretrained(stage_one), held_out)
    after, after_grouped = _held_out_accuracy(
        LLM2Vec.from_pretrained(stage_one, peft_model_name_or_path=stage_two), held_out
    )
    numbers = {
        "loss_first": first,
        "loss_last": last,
        "top1_all": (before, after),
        "top1_of_16": (before_grouped, after_grouped),
    }
    record_property("stage_II_tiny", numbers)
    print(f"tiny Stage II: {numbers}")
    assert after > before, numbers
    assert after_grouped > before_grouped + 0.1, numbers


@pytest.mark.slow
def test_resume_from_a_checkpoint_repeats_the_uninterrupted_losses(pipeline: dict[str, Path], tmp_path: Path) -> None:
    stage_one, straight = pipeline["stage_one"], pipeline["stage_two"]
    config = _tiny_config()
    steps, middle = config["stop_after_n_steps"], config["save_steps"]
    # The run was killed right after writing checkpoint-<middle>: that is all its output_dir holds.
    interrupted = tmp_path / "interrupted"
    interrupted.mkdir()
    shutil.copytree(straight / f"checkpoint-{middle}", interrupted / f"checkpoint-{middle}")
    _run(
        "run_stage_II.py", "stage_II_tiny.json",
        "--output_dir", str(interrupted), "--resume_from_checkpoint", "last",
        *_stage_two_overrides(stage_one, pipeline["data"]),
    )
    expected = _logged(straight / f"checkpoint-{steps}" / "trainer_state.json")
    resumed = _logged(interrupted / f"checkpoint-{steps}" / "trainer_state.json")
    later = [step for step in expected if step > middle]
    assert later and [step for step in resumed if step > middle] == later
    for step in later:
        for key in ("loss", "accuracy", "grad_norm"):
            assert resumed[step][key] == pytest.approx(expected[step][key], abs=1e-5), (step, key)
    final = load_file(straight / "adapter_model.safetensors")
    again = load_file(interrupted / "adapter_model.safetensors")
    assert max((final[k] - again[k]).abs().max().item() for k in final) < 1e-5


@pytest.mark.slow
def test_torchrun_training_repeats_the_single_process_run_on_the_same_batches(
    tiny_llama_dir: Path, tiny_data_dir: Path, tmp_path: Path
) -> None:
    """2 processes x 8 pairs train exactly like 1 process x 16 (the data chunks give the same union)."""
    common = [
        *_stage_two_overrides(tiny_llama_dir, tiny_data_dir),
        "--stop_after_n_steps", "4", "--save_steps", "4", "--logging_steps", "1",
        "--lora_dropout", "0",  # dropout masks depend on how rows are split over processes
    ]
    single, double = tmp_path / "single", tmp_path / "double"
    _run(
        "run_stage_II.py", "stage_II_tiny.json", "--output_dir", str(single), "--per_device_train_batch_size", "16",
        *common,
    )
    _run(
        "run_stage_II.py", "stage_II_tiny.json", "--output_dir", str(double), "--per_device_train_batch_size", "8",
        *common, processes=2,
    )
    expected = _logged(single / "checkpoint-4" / "trainer_state.json")
    logged = _logged(double / "checkpoint-4" / "trainer_state.json")
    assert sorted(logged) == sorted(expected) == [1, 2, 3, 4]
    for step in expected:
        for key in ("loss", "grad_norm", "accuracy"):
            assert logged[step][key] == pytest.approx(expected[step][key], abs=1e-5), (step, key)
    one, two = load_file(single / "adapter_model.safetensors"), load_file(double / "adapter_model.safetensors")
    assert max((one[k] - two[k]).abs().max().item() for k in one) < 1e-4


# ---------------------------------------------------------------------- paper configs
PAPER_GPUS = 8
PAPER_TOTAL_BATCH = 512
HUB_IDS = {
    "MetaLlama3.2_1b": "meta-llama/Llama-3.2-1B-Instruct",
    "Qwen2.5_1.5b": "Qwen/Qwen2.5-1.5B-Instruct",
    "MetaLlama3.2_3b": "meta-llama/Llama-3.2-3B-Instruct",
    "Mistral_7b": "mistralai/Mistral-7B-v0.1",
    "MetaLlama3.1_8b": "meta-llama/Llama-3.1-8B-Instruct",
}
STAGE_II_FILES = [f"stage_II/{m}_stage1_2000steps_stage2.json" for m in HUB_IDS]
BASELINE_FILES = [f"baseline/{m}_baseline_stage2.json" for m in HUB_IDS] + [
    "baseline/MetaLlama3.2_1b_baseline_stage2_3000steps.json"
]
EARLY_STAGE_FILES = [  # paper Table 9
    f"early_stage/{name}_stage2_early.json"
    for name in (
        "MetaLlama3.2_1b_baseline", "MetaLlama3.2_1b_only_q2d", "MetaLlama3.2_1b_only_d2q", "MetaLlama3.2_1b_anchor",
        "MetaLlama3.2_3b_baseline", "MetaLlama3.2_3b_anchor", "MetaLlama3.1_8b_baseline", "MetaLlama3.1_8b_anchor",
    )
]
SCALE_ABLATION = "ablation/MetaLlama3.2_1b_stage2_scale20.json"
PAPER_FILES = STAGE_II_FILES + BASELINE_FILES + EARLY_STAGE_FILES + [SCALE_ABLATION]


def _parse(relative: str) -> tuple[Any, ...]:
    # bf16 needs use_cpu on a machine without a bf16 GPU (transformers refuses it otherwise).
    return parse_config(STAGE_II_TYPES, [str(CONFIGS / relative), "--use_cpu", "true"])


def _stage_one_outputs() -> dict[str, dict[str, Any]]:
    """output_dir -> config of every Stage I config (paper models and ablations)."""
    found = {}
    for path in sorted((CONFIGS / "stage_I").glob("*.json")) + sorted((CONFIGS / "ablation").glob("*.json")):
        config = json.loads(path.read_text())
        if "alpha" in config:  # Stage I keys; Stage II ablations have loss_scale instead
            found[config["output_dir"]] = config
    return found


def test_stage_II_config_files_exist() -> None:
    missing = [name for name in PAPER_FILES + ["tiny/stage_II_tiny.json"] if not (CONFIGS / name).is_file()]
    assert not missing
    for folder in ("stage_II", "baseline", "early_stage"):
        listed = {f"{folder}/{p.name}" for p in (CONFIGS / folder).glob("*.json")}
        assert listed == {name for name in PAPER_FILES if name.startswith(f"{folder}/")}, folder


@pytest.mark.parametrize("relative", PAPER_FILES)
def test_paper_stage_II_config_values(relative: str) -> None:
    model, data, stage, lora, training = _parse(relative)
    stem = Path(relative).stem
    raw = json.loads((CONFIGS / relative).read_text())
    assert "loss_scale" in raw, "loss_scale must be explicit in every config"
    assert stage.loss_scale == (20.0 if relative == SCALE_ABLATION else 50.0)
    assert lora.lora_r == 16 and lora.alpha == 32 and lora.lora_dropout == pytest.approx(0.05)
    assert set(lora.lora_target_modules) == set(LORA_TARGET_MODULES)
    assert not stage.full_parameter
    assert training.learning_rate == pytest.approx(2e-4)
    assert training.warmup_steps == 300 and training.num_train_epochs == 3 and training.seed == 42
    expected_steps = 3000 if stem.endswith("3000steps") else 125 if relative.startswith("early_stage/") else 1000
    assert training.stop_after_n_steps == expected_steps
    assert training.save_steps == (25 if relative.startswith("early_stage/") else 200)
    total = training.per_device_train_batch_size * training.gradient_accumulation_steps * PAPER_GPUS
    assert total == PAPER_TOTAL_BATCH
    assert model.max_seq_length == 512 and model.pooling_mode == "eos_token" and not model.bidirectional
    assert training.bf16 and model.torch_dtype == "bfloat16" and model.attn_implementation == "flash_attention_2"
    assert raw["activation_checkpointing"] is True and training.activation_checkpointing
    assert data.dataset_name == "E5" and data.dataset_file_path == "cache/echo-data" and data.dataset_files is None
    assert training.output_dir == f"output/{Path(relative).parent.name}/{stem}"
    assert raw["report_to"] == "none" and not training.save_only_model
    assert model.peft_model_name_or_path is None


@pytest.mark.parametrize("relative", PAPER_FILES)
def test_stage_II_config_starts_from_the_right_model(relative: str) -> None:
    model, *_ = _parse(relative)
    stem = Path(relative).stem
    short = next(m for m in HUB_IDS if stem.startswith(m + "_"))
    stage_one = _stage_one_outputs()
    if "baseline" in stem:
        assert model.model_name_or_path == HUB_IDS[short]
        return
    assert model.model_name_or_path in stage_one, f"{model.model_name_or_path} is no Stage I config's output_dir"
    source = stage_one[model.model_name_or_path]
    assert source["model_name_or_path"] == HUB_IDS[short]
    expected_alpha = 1.0 if "only_q2d" in stem else 0.0 if "only_d2q" in stem else 0.2
    assert source["alpha"] == pytest.approx(expected_alpha)
    assert not source.get("release_compat", False)
    assert source["prompt_template"] == model.prompt_template and source["max_seq_length"] == model.max_seq_length


def test_early_stage_and_scale_ablation_differ_from_the_full_run_only_where_they_must() -> None:
    def differing(a: str, b: str) -> set[str]:
        x, y = (json.loads((CONFIGS / name).read_text()) for name in (a, b))
        return {key for key in x.keys() | y.keys() if x.get(key) != y.get(key)}

    anchor = "stage_II/MetaLlama3.2_1b_stage1_2000steps_stage2.json"
    # The early-stage runs are the first 125 steps of the full runs (same schedule), saved every 25.
    assert differing(anchor, "early_stage/MetaLlama3.2_1b_anchor_stage2_early.json") == {
        "stop_after_n_steps", "save_steps", "output_dir"
    }
    assert differing(
        "baseline/MetaLlama3.2_1b_baseline_stage2.json", "early_stage/MetaLlama3.2_1b_baseline_stage2_early.json"
    ) == {"stop_after_n_steps", "save_steps", "output_dir"}
    assert differing(anchor, SCALE_ABLATION) == {"loss_scale", "output_dir"}
    assert differing(
        "baseline/MetaLlama3.2_1b_baseline_stage2.json", "baseline/MetaLlama3.2_1b_baseline_stage2_3000steps.json"
    ) == {"stop_after_n_steps", "output_dir"}
    assert differing(anchor, "baseline/MetaLlama3.2_1b_baseline_stage2.json") == {"model_name_or_path", "output_dir"}


def test_tiny_stage_II_config_parses_for_cpu() -> None:
    model, data, stage, lora, training = parse_config(STAGE_II_TYPES, [str(CONFIGS / "tiny" / "stage_II_tiny.json")])
    assert model.model_name_or_path == "cache/tiny/models/llama3" and data.dataset_file_path == "cache/tiny/data"
    assert model.torch_dtype == "float32" and model.attn_implementation == "sdpa" and training.use_cpu
    assert lora.lora_r == 8 and not stage.full_parameter and not training.bf16
    assert {"loss_scale", "lora_r"} <= set(_tiny_config())
