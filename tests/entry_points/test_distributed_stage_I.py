"""Stage I on two CPU processes (DDP, and FSDP2 through launch/accelerate/8gpu_fsdp2.yaml) against one,
and launch/torchrun_multinode.sh training on one node.

What is exactly equal
---------------------
The data are cut into task chunks of ``per_device_train_batch_size x world_size`` samples
(``llm2vec.dataset.task_chunked``), read in order, and accelerate gives rank ``r`` batch
``k * world_size + r``. So two processes with ``per_device = 4`` read the same chunks of 8, in the
same order, as one process with ``per_device = 8``, rank 0 taking the first half of each chunk and
rank 1 the second (``test_two_ranks_read_the_halves_of_the_single_process_batches``). One process
with ``per_device = 4`` and ``gradient_accumulation_steps = 2`` would NOT see those micro-batches:
its chunks are 4 long, so the chunk plan (and the order of the tasks) is another one.

The Stage I loss of a micro-batch is a mean over its target tokens. DDP averages the two ranks'
gradients, i.e. it optimizes ``(L_rank0 + L_rank1) / 2``, and the logged loss is that mean too;
one process optimizes the token mean over all 8 pairs. The two agree exactly when both halves
hold as many target tokens, so the test data have queries of one token length and documents of
one token length per task (``equal_length_data_dir``). With ordinary data they differ by
``sum_r (n_r / n - 1/2) L_r``, up to 3e-4 on the tiny data (docs/scaling.md).

FSDP2 on CPU
------------
torch 2.13's ``fully_shard`` runs on CPU with gloo, but accelerate 1.15 turns FSDP on only for
accelerator devices: ``AcceleratorState`` keeps ``DistributedType.MULTI_CPU`` (plain DDP) when
``use_cpu`` is set, whatever the FSDP plugin says. Run as a script, this module lifts exactly that
gate (``_cpu_fsdp_main``) and then runs the unchanged ``experiments/run_stage_I.py`` under
``accelerate launch --config_file launch/accelerate/8gpu_fsdp2.yaml``, so the YAML's settings
(FSDP2, decoder-layer wrapping, FSDP activation checkpointing, full state dict on save) are the
ones exercised.
"""

from __future__ import annotations

import collections
import json
import os
import sys
from pathlib import Path

import pytest
import torch

from tests.helpers import (
    REPO,
    TINY_STAGE_I_CONFIG,
    free_port,
    logged_steps,
    run_entry_point,
    run_torchrun_script,
    subprocess_env,
    torchrun,
)

TINY_CONFIG = TINY_STAGE_I_CONFIG
FSDP2_YAML = REPO / "launch" / "accelerate" / "8gpu_fsdp2.yaml"
SHIM_MARKER = "cpu-fsdp-shim:"

PER_DEVICE = 4
WORLD = 2
STEPS = 3
TASKS = ("nq", "squad")  # one instruction each: every query of a task has the same prefix
TINY_FILES = json.loads(TINY_CONFIG.read_text())["dataset_files"]
PAIRS_PER_TASK = 16  # 2 chunks of 8 per task, 4 steps per epoch
LOSS_TOLERANCE = 1e-5
WEIGHT_TOLERANCE = 1e-5


# ---------------------------------------------------------------------------- helpers
def _environment() -> dict[str, str]:
    return subprocess_env(
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
    )


def _run(launcher: list[str], output: Path, model_dir: Path, data_dir: Path, *overrides: str) -> str:
    """Run experiments/run_stage_I.py on the tiny config through ``launcher``; returns stdout+stderr."""
    result = run_entry_point(
        "run_stage_I.py", TINY_CONFIG,
        "--output_dir", str(output),
        "--model_name_or_path", str(model_dir),
        "--dataset_file_path", str(data_dir),
        "--dataset_files", json.dumps(list(TASKS)),
        "--stop_after_n_steps", str(STEPS),
        "--save_steps", str(STEPS),
        "--logging_steps", "1",
        "--disable_tqdm", "true",
        *overrides,
        launcher=launcher, env=_environment(), stderr_tail=6000,
    )
    return result.stdout + result.stderr


def _logged(checkpoint: Path) -> dict[int, dict[str, float]]:
    return logged_steps(checkpoint / "trainer_state.json")


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    from llm2vec.weights import read_safetensors_folder

    return read_safetensors_folder(folder)


def _compare(run: Path, reference: Path) -> tuple[float, float]:
    """Largest |difference| of the logged losses (every step) and of the saved weights."""
    logged, expected = _logged(run / f"checkpoint-{STEPS}"), _logged(reference / f"checkpoint-{STEPS}")
    assert set(logged) == set(expected) == set(range(1, STEPS + 1))
    loss_difference = 0.0
    for step in expected:
        loss_difference = max(loss_difference, abs(logged[step]["loss"] - expected[step]["loss"]))
        # the direction losses are logged rounded to 4 decimals
        for key in ("q2d_loss", "d2q_loss"):
            assert logged[step][key] == pytest.approx(expected[step][key], abs=1.01e-4), (step, key)
        assert logged[step]["grad_norm"] == pytest.approx(expected[step]["grad_norm"], rel=1e-4), step
    weights, reference_weights = _weights(run / f"checkpoint-{STEPS}"), _weights(reference / f"checkpoint-{STEPS}")
    assert weights.keys() == reference_weights.keys()
    weight_difference = max((weights[k].float() - reference_weights[k].float()).abs().max().item() for k in weights)
    # the final folder holds the same weights as the last checkpoint
    final = _weights(run)
    assert all(torch.equal(final[k], weights[k]) for k in weights)
    print(f"max |loss difference| {loss_difference:.3g}, max |weight difference| {weight_difference:.3g}")
    return loss_difference, weight_difference


# ---------------------------------------------------------------------------- data
@pytest.fixture(scope="module")
def equal_length_data_dir(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path) -> Path:
    """E5-format ``nq`` and ``squad`` files whose queries (instruction and template included) all
    have one token length and whose documents all have another, per task."""
    from llm2vec import LLM2Vec
    from llm2vec.dataset import E5_INSTRUCTIONS
    from llm2vec.tokenization import SEPARATOR
    from llm2vec.testing.tiny_data import make_pairs

    encoder = LLM2Vec.from_pretrained(tiny_llama_dir)

    def token_counts(texts: list[str]) -> list[int]:
        return encoder.tokenize(texts)["attention_mask"].sum(dim=1).tolist()

    folder = tmp_path_factory.mktemp("equal_length") / "e5"
    folder.mkdir()
    for task in TASKS:
        candidates = make_pairs(1500, seed=7, name=task)
        instruction = E5_INSTRUCTIONS[task][0]
        query_lengths = token_counts([f"{instruction}; {SEPARATOR}{c['query']}" for c in candidates])
        document_lengths = token_counts([SEPARATOR + c["positive"] for c in candidates])
        query_length = collections.Counter(query_lengths).most_common(1)[0][0]
        document_length = collections.Counter(document_lengths).most_common(1)[0][0]
        queries = [c["query"] for c, n in zip(candidates, query_lengths) if n == query_length]
        documents = [c["positive"] for c, n in zip(candidates, document_lengths) if n == document_length]
        assert len(queries) >= PAIRS_PER_TASK and len(documents) >= PAIRS_PER_TASK, (task, len(queries), len(documents))
        rows = [{"query": q, "positive": d} for q, d in zip(queries[:PAIRS_PER_TASK], documents[:PAIRS_PER_TASK])]
        (folder / f"{task}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))

    # As the training run will read them: one query length and one document length per task.
    from llm2vec.dataset import load_train_dataset

    dataset = load_train_dataset(
        "E5", folder, per_device_batch_size=PER_DEVICE * WORLD, world_size=1, seed=42, files=list(TASKS)
    )
    by_task: dict[str, set[tuple[int, int]]] = collections.defaultdict(set)
    samples = [dataset[i] for i in range(len(dataset))]
    lengths = zip(token_counts([s.query for s in samples]), token_counts([s.positive for s in samples]))
    for sample, pair in zip(samples, lengths):
        by_task[sample.task].add(pair)
    assert all(len(pairs) == 1 for pairs in by_task.values()), dict(by_task)
    return folder


# ---------------------------------------------------------------------------- which micro-batches
def test_two_ranks_read_the_halves_of_the_single_process_batches(tiny_data_dir: Path) -> None:
    """The sample order of (per_device 4, 2 processes) is that of (per_device 8, 1 process), and
    accelerate's sharding gives rank r the r-th half of every batch of 8; (per_device 4, 1 process,
    accumulation 2) reads other micro-batches."""
    from accelerate.data_loader import BatchSamplerShard
    from torch.utils.data import BatchSampler, SequentialSampler

    from llm2vec.dataset import load_train_dataset

    def order(per_device: int, world: int) -> list[tuple[str, str]]:
        dataset = load_train_dataset(
            "E5", tiny_data_dir, per_device_batch_size=per_device, world_size=world, seed=42, files=TINY_FILES
        )
        return [(dataset[i].query, dataset[i].positive) for i in range(len(dataset))]

    two_processes = order(PER_DEVICE, WORLD)
    one_process = order(PER_DEVICE * WORLD, 1)
    assert two_processes == one_process
    size = len(two_processes)
    rank_batches = [
        list(BatchSamplerShard(BatchSampler(SequentialSampler(range(size)), PER_DEVICE, False), WORLD, rank))
        for rank in range(WORLD)
    ]
    single_batches = list(BatchSampler(SequentialSampler(range(size)), PER_DEVICE * WORLD, False))
    assert len(rank_batches[0]) == len(rank_batches[1]) == len(single_batches)
    for step, batch in enumerate(single_batches):
        assert rank_batches[0][step] + rank_batches[1][step] == batch

    # Accumulating two micro-batches of 4 in one process: chunks of 4, another plan.
    assert order(PER_DEVICE, 1) != one_process


# ---------------------------------------------------------------------------- runs
@pytest.fixture(scope="module")
def single_process_run(tmp_path_factory, tiny_llama_dir: Path, equal_length_data_dir: Path) -> Path:
    output = tmp_path_factory.mktemp("stage_I_one_process") / "run"
    _run([sys.executable], output, tiny_llama_dir, equal_length_data_dir,
         "--per_device_train_batch_size", str(PER_DEVICE * WORLD))
    return output


@pytest.mark.slow
def test_ddp_on_two_processes_matches_one_process(
    tmp_path: Path, tiny_llama_dir: Path, equal_length_data_dir: Path, single_process_run: Path
) -> None:
    output = tmp_path / "ddp"
    _run(torchrun(WORLD), output, tiny_llama_dir, equal_length_data_dir,
         "--per_device_train_batch_size", str(PER_DEVICE))
    assert (output / f"checkpoint-{STEPS}" / "rng_state_1.pth").is_file(), "two processes ran"
    loss_difference, weight_difference = _compare(output, single_process_run)
    assert loss_difference < LOSS_TOLERANCE
    assert weight_difference < WEIGHT_TOLERANCE


def _accelerate_fsdp2(config_file: Path) -> list[str]:
    """`accelerate launch` with an FSDP2 YAML, made to run on 2 CPU processes through the shim."""
    return [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(config_file),
        "--num_processes", str(WORLD),
        # the YAML's bf16 would otherwise reach TrainingArguments.mixed_precision (the tiny config is float32)
        "--mixed_precision", "no",
        "--main_process_ip", "127.0.0.1",
        "--main_process_port", str(free_port()),
        str(Path(__file__).resolve()),  # this module as a script: _cpu_fsdp_main
    ]


@pytest.fixture(scope="module")
def fsdp2_run(tmp_path_factory, tiny_llama_dir: Path, equal_length_data_dir: Path) -> tuple[Path, str]:
    """Two processes through launch/accelerate/8gpu_fsdp2.yaml; a checkpoint after every step."""
    output = tmp_path_factory.mktemp("stage_I_fsdp2") / "run"
    log = _run(_accelerate_fsdp2(FSDP2_YAML), output, tiny_llama_dir, equal_length_data_dir,
               "--per_device_train_batch_size", str(PER_DEVICE), "--save_steps", "1")
    return output, log


@pytest.mark.slow
def test_fsdp2_yaml_on_two_processes_matches_one_process(fsdp2_run: tuple[Path, str], single_process_run: Path) -> None:
    output, log = fsdp2_run
    # It really was FSDP2 with the YAML's wrapping and activation checkpointing ...
    prepared = [line for line in log.splitlines() if line.startswith(SHIM_MARKER)]
    assert len(prepared) == WORLD, log[-3000:]
    for line in prepared:
        assert "FSDP" in line and "CheckpointWrapper" in line and "LlamaDecoderLayer" in line, prepared
    # ... and the Trainer saved through the FSDP path: the gathered full state dict went to
    # LLM2Vec_q2d_d2q.save (a complete model.safetensors), plus the FSDP model and optimizer files.
    checkpoint = output / f"checkpoint-{STEPS}"
    assert (checkpoint / "pytorch_model_fsdp.bin").is_file() and (checkpoint / "optimizer.bin").is_file()
    loss_difference, weight_difference = _compare(output, single_process_run)
    assert loss_difference < LOSS_TOLERANCE
    assert weight_difference < WEIGHT_TOLERANCE


@pytest.mark.slow
def test_fsdp2_resume_repeats_the_uninterrupted_run(
    tmp_path: Path, tiny_llama_dir: Path, equal_length_data_dir: Path, fsdp2_run: tuple[Path, str]
) -> None:
    straight, _ = fsdp2_run
    resumed = tmp_path / "resumed"
    _run(_accelerate_fsdp2(FSDP2_YAML), resumed, tiny_llama_dir, equal_length_data_dir,
         "--per_device_train_batch_size", str(PER_DEVICE), "--save_steps", "1",
         "--resume_from_checkpoint", str(straight / "checkpoint-1"))
    expected, logged = _logged(straight / f"checkpoint-{STEPS}"), _logged(resumed / f"checkpoint-{STEPS}")
    for step in range(2, STEPS + 1):
        assert logged[step]["loss"] == pytest.approx(expected[step]["loss"], abs=LOSS_TOLERANCE)
    weights, expected_weights = _weights(resumed), _weights(straight)
    assert max((weights[k] - expected_weights[k]).abs().max().item() for k in weights) < WEIGHT_TOLERANCE


@pytest.mark.slow
def test_torchrun_script_trains_on_one_node_with_two_cpu_processes(
    tmp_path: Path, tiny_llama_dir: Path, tiny_data_dir: Path
) -> None:
    """launch/torchrun_multinode.sh with NNODES=1: a real c10d rendezvous on 127.0.0.1, gloo."""
    output = tmp_path / "run"
    result = run_torchrun_script(
        "train_configs/tiny/stage_I_tiny.json",
        "--output_dir", str(output), "--model_name_or_path", str(tiny_llama_dir),
        "--dataset_file_path", str(tiny_data_dir), "--per_device_train_batch_size", "4",
        "--stop_after_n_steps", "2", "--save_steps", "2", "--logging_steps", "1", "--disable_tqdm", "true",
        NNODES="1", NPROC_PER_NODE="2", PORT=str(free_port()), RDZV_ID="test", TOTAL_BATCH="16",
        OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false",
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "--gradient_accumulation_steps 2" in result.stderr  # 16 / (4 x 2 processes)
    state = json.loads((output / "checkpoint-2" / "trainer_state.json").read_text())
    assert [entry["step"] for entry in state["log_history"] if "loss" in entry] == [1, 2]
    assert (output / "checkpoint-2" / "rng_state_1.pth").is_file()
    assert (output / "model.safetensors").is_file()


# ---------------------------------------------------------------------------- CPU FSDP entry point
def _cpu_fsdp_main(argv: list[str]) -> None:
    """``python tests/entry_points/test_distributed_stage_I.py SCRIPT [args...]`` on every launched process:
    run SCRIPT with FSDP allowed on CPU processes.

    accelerate 1.15's ``AcceleratorState.__init__`` switches to ``DistributedType.FSDP`` only for
    accelerator devices; on CPU (``use_cpu``) it stays ``MULTI_CPU`` and prepares a DDP model
    although an FSDP plugin was configured. After the original ``__init__``, this sets the FSDP
    type and plugin the way that ``__init__`` does on GPUs (also in ``PartialState``'s shared
    state, which ``AcceleratorState`` re-reads). Nothing else is changed. The prepared model is
    printed (one line per process) so that the test can tell FSDP actually ran.
    """
    import runpy

    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    original_init = AcceleratorState.__init__

    def init(self, *args, fsdp_plugin=None, **kwargs):  # type: ignore[no-untyped-def]
        original_init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == DistributedType.MULTI_CPU:
            self.distributed_type = DistributedType.FSDP
            self.fsdp_plugin = fsdp_plugin
            PartialState._shared_state["distributed_type"] = DistributedType.FSDP

    AcceleratorState.__init__ = init

    original_prepare = Accelerator.prepare

    def prepare(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        prepared = original_prepare(self, *args, **kwargs)
        for item in prepared if isinstance(prepared, (tuple, list)) else (prepared,):
            if isinstance(item, torch.nn.Module) and hasattr(item, "model"):
                layer = item.model.layers[0]
                inner = getattr(layer, "_checkpoint_wrapped_module", layer)
                print(
                    f"{SHIM_MARKER} rank {self.process_index} {self.distributed_type} {type(item).__name__} "
                    f"layer {type(layer).__name__}({type(inner).__name__})",
                    flush=True,
                )
        return prepared

    Accelerator.prepare = prepare

    script, *rest = argv
    sys.argv = [script, *rest]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    _cpu_fsdp_main(sys.argv[1:])
