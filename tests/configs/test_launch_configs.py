"""The launch configs under launch/: they parse, accelerate 1.15 and transformers accept them, the
paper's total batch of 512 holds with them, and the shell scripts are well-formed and point at
existing files. The FSDP2 YAML and launch/torchrun_multinode.sh are also trained with, on CPU, in
tests/entry_points/test_distributed_stage_I.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
import yaml

from tests.helpers import REPO, TORCHRUN_SCRIPT, load_script, run_torchrun_script

LAUNCH = REPO / "launch"
ACCELERATE_DIR = LAUNCH / "accelerate"
DEEPSPEED_JSON = LAUNCH / "deepspeed" / "zero3.json"
SBATCH = LAUNCH / "slurm" / "stage_I_multinode.sbatch"
STAGE_I_CONFIGS = sorted((REPO / "train_configs" / "stage_I").glob("*.json"))
# Stage I configs have `alpha`; the Stage II ones (here and in ablation/) have `loss_scale`.
ABLATION_CONFIGS = sorted(
    p for p in (REPO / "train_configs" / "ablation").glob("*.json") if "alpha" in json.loads(p.read_text())
)
PAPER_TOTAL_BATCH = 512

ACCELERATE_YAMLS = sorted(ACCELERATE_DIR.glob("*.yaml"))
# distributed type, processes, machines and (for FSDP) the wrapped decoder layer of every YAML
EXPECTED = {
    "8gpu_ddp.yaml": ("MULTI_GPU", 8, 1, None),
    "8gpu_deepspeed_zero3.yaml": ("DEEPSPEED", 8, 1, None),
    "8gpu_fsdp2.yaml": ("FSDP", 8, 1, "LlamaDecoderLayer"),
    "8gpu_fsdp2_mistral.yaml": ("FSDP", 8, 1, "MistralDecoderLayer"),
    "multinode_2x8gpu.yaml": ("FSDP", 16, 2, "LlamaDecoderLayer"),
}
# decoder layer class of each model family of the paper configs
LAYER_OF_MODEL = {"llama": "LlamaDecoderLayer", "mistral": "MistralDecoderLayer", "qwen2": "Qwen2DecoderLayer"}


def _model_family(config: dict) -> str:
    name = config["model_name_or_path"].lower()
    return "qwen2" if "qwen" in name else "mistral" if "mistral" in name else "llama"


def _config(path: Path) -> dict:
    return json.loads(path.read_text())


# ---------------------------------------------------------------------------- every file parses
def test_every_yaml_and_json_under_launch_parses() -> None:
    files = sorted(p for p in LAUNCH.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
    assert {p.name for p in files} >= set(EXPECTED) | {"zero3.json"}
    for path in files:
        loaded = yaml.safe_load(path.read_text()) if path.suffix != ".json" else json.loads(path.read_text())
        assert isinstance(loaded, dict) and loaded, path


# ---------------------------------------------------------------------------- accelerate YAMLs
@pytest.mark.parametrize("path", ACCELERATE_YAMLS, ids=lambda p: p.name)
def test_accelerate_yaml_loads_with_accelerates_own_config_class(path: Path) -> None:
    from accelerate.commands.config.config_args import ClusterConfig
    from accelerate.commands.launch import launch_command_parser

    assert path.name in EXPECTED, f"add {path.name} to EXPECTED"
    distributed_type, processes, machines, layer = EXPECTED[path.name]
    # Unknown top-level keys are an error in from_yaml_file.
    config = ClusterConfig.from_yaml_file(str(path))
    assert config.distributed_type.value == distributed_type
    assert (config.num_processes, config.num_machines, config.use_cpu) == (processes, machines, False)
    # Nested keys become `accelerate launch` arguments (fsdp_config.x -> --fsdp_x); accelerate copies
    # them without checking, so an unknown one would be ignored silently.
    arguments = {action.dest for action in launch_command_parser()._actions}
    for key in config.fsdp_config:
        assert (key if key.startswith("fsdp") else f"fsdp_{key}") in arguments, key
    for key in config.deepspeed_config:
        assert key in arguments, key
    if distributed_type == "FSDP":
        fsdp = config.fsdp_config
        assert fsdp["fsdp_version"] == 2
        assert fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP"
        assert fsdp["fsdp_transformer_layer_cls_to_wrap"] == layer
        assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"
        assert fsdp["fsdp_activation_checkpointing"] is True
        assert fsdp["fsdp_reshard_after_forward"] is True
        assert config.mixed_precision == "bf16"
    if distributed_type == "DEEPSPEED":
        assert (REPO / config.deepspeed_config["deepspeed_config_file"]).resolve() == DEEPSPEED_JSON
        assert config.deepspeed_config["zero3_init_flag"] is True


@pytest.mark.parametrize("path", ACCELERATE_YAMLS, ids=lambda p: p.name)
def test_accelerate_launch_turns_the_yaml_into_the_intended_environment(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What `accelerate launch --config_file PATH script` would do, short of starting processes."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.launch import prepare_multi_gpu_env

    distributed_type, processes, _, layer = EXPECTED[path.name]
    args = launch_command_parser().parse_args(["--config_file", str(path), "experiments/run_stage_I.py"])
    args, _, mixed_precision_from_config = _validate_launch_command(args)
    assert args.num_processes == processes
    if distributed_type == "DEEPSPEED":
        assert args.use_deepspeed and not args.use_fsdp
        # With deepspeed_config_file, DeepSpeedPlugin raises if the YAML set mixed_precision (or any
        # of the other fields the JSON owns): they must come from the JSON / the training config.
        assert not mixed_precision_from_config
        owned_by_json = {"gradient_accumulation_steps", "gradient_clipping", "zero_stage", "offload_optimizer_device",
                         "offload_param_device", "offload_param_nvme_path", "offload_optimizer_nvme_path",
                         "zero3_save_16bit_model", "mixed_precision"}
        assert not owned_by_json & set(yaml.safe_load(path.read_text())["deepspeed_config"])
        return
    environment = prepare_multi_gpu_env(args)
    assert environment["ACCELERATE_MIXED_PRECISION"] == "bf16"
    if distributed_type == "MULTI_GPU":
        assert args.multi_gpu and "ACCELERATE_USE_FSDP" not in environment
        return
    assert environment["ACCELERATE_USE_FSDP"] == "true"
    # The plugin each training process builds from that environment.
    for name, value in environment.items():
        if name.startswith(("FSDP_", "ACCELERATE_")):
            monkeypatch.setenv(name, value)
    plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.reshard_after_forward is True
    assert plugin.activation_checkpointing is True
    assert plugin.transformer_cls_names_to_wrap == [layer]
    assert "FULL_STATE_DICT" in str(plugin.state_dict_type)
    assert plugin.cpu_offload in (False, None) or type(plugin.cpu_offload).__name__ == "OffloadPolicy"


def test_wrapped_layer_classes_exist_in_transformers() -> None:
    import transformers

    for layer in LAYER_OF_MODEL.values():
        assert hasattr(transformers.models, layer.removesuffix("DecoderLayer").lower()), layer
    from transformers.models.llama.modeling_llama import LlamaDecoderLayer
    from transformers.models.mistral.modeling_mistral import MistralDecoderLayer
    from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer

    assert [c.__name__ for c in (LlamaDecoderLayer, MistralDecoderLayer, Qwen2DecoderLayer)] == list(
        LAYER_OF_MODEL.values()
    )


# ---------------------------------------------------------------------------- FSDP JSONs (torchrun)
@pytest.mark.parametrize("family", sorted(LAYER_OF_MODEL))
def test_fsdp_json_for_training_arguments(family: str) -> None:
    """launch/fsdp/fsdp2_<family>.json, for `--fsdp true --fsdp_config FILE` under torchrun."""
    from transformers import TrainingArguments

    path = LAUNCH / "fsdp" / f"fsdp2_{family}.json"
    arguments = TrainingArguments(output_dir=str(REPO / "output" / "unused"), fsdp=True, fsdp_config=str(path),
                                  use_cpu=True, report_to="none")
    plugin = arguments.fsdp_plugin_args
    assert plugin["fsdp_version"] == 2
    assert plugin["transformer_cls_names_to_wrap"] == LAYER_OF_MODEL[family]
    assert plugin["state_dict_type"] == "FULL_STATE_DICT"
    assert plugin["activation_checkpointing"] is True and plugin["reshard_after_forward"] is True


# ---------------------------------------------------------------------------- total batch 512
@pytest.mark.parametrize("path", STAGE_I_CONFIGS + ABLATION_CONFIGS, ids=lambda p: p.name)
def test_paper_configs_keep_the_total_batch_on_the_launch_configs(path: Path) -> None:
    config = _config(path)
    per_device, accumulation = config["per_device_train_batch_size"], config["gradient_accumulation_steps"]
    for name, (_, processes, machines, _) in EXPECTED.items():
        if machines == 1:  # the 8-GPU YAMLs run the configs as they are
            assert processes * per_device * accumulation == PAPER_TOTAL_BATCH, (name, path.name)
        else:  # more processes: the accumulation shrinks (torchrun_multinode.sh computes it)
            assert PAPER_TOTAL_BATCH % (processes * per_device) == 0, (name, path.name)


def test_stage_II_configs_keep_the_total_batch_on_8_gpus() -> None:
    configs = [
        path
        for folder in ("stage_II", "baseline", "early_stage", "ablation")
        for path in sorted((REPO / "train_configs" / folder).glob("*.json"))
        if "alpha" not in _config(path)
    ]
    assert configs
    for path in configs:
        config = _config(path)
        total = 8 * config.get("per_device_train_batch_size", 8) * config.get("gradient_accumulation_steps", 1)
        assert total == PAPER_TOTAL_BATCH, path.name


def test_multinode_yaml_comment_gives_the_total_batch() -> None:
    """The command in multinode_2x8gpu.yaml's header: 16 processes x 8 x --gradient_accumulation_steps."""
    text = (ACCELERATE_DIR / "multinode_2x8gpu.yaml").read_text()
    accumulation = int(re.search(r"--gradient_accumulation_steps (\d+)", text).group(1))
    config = _config(REPO / "train_configs" / "stage_I" / "MetaLlama3.1_8b_q2d_d2q.json")
    assert 16 * config["per_device_train_batch_size"] * accumulation == PAPER_TOTAL_BATCH


# ---------------------------------------------------------------------------- DeepSpeed JSON
def _trainer_deepspeed_config(source: Path | dict):
    """transformers' HfTrainerDeepSpeedConfig logic (the "auto" filling) without the deepspeed
    package, which cannot be installed here: accelerate's pure-Python config holder plus the
    transformers methods that fill it from TrainingArguments."""
    from accelerate.utils.deepspeed import HfDeepSpeedConfig
    from transformers.integrations.deepspeed import HfTrainerDeepSpeedConfig

    class Filled(HfDeepSpeedConfig):
        def __init__(self, config: Path | dict) -> None:
            super().__init__(str(config) if isinstance(config, Path) else config)
            self._dtype = None
            self.mismatches: list[str] = []

    for name in ("dtype", "is_auto", "fill_match", "fill_only", "trainer_config_process", "trainer_config_finalize"):
        setattr(Filled, name, HfTrainerDeepSpeedConfig.__dict__[name])
    return Filled(source)


def _training_args(config: dict, world_size: int) -> types.SimpleNamespace:
    """The TrainingArguments fields transformers reads into the DeepSpeed config."""
    return types.SimpleNamespace(
        per_device_train_batch_size=config["per_device_train_batch_size"],
        gradient_accumulation_steps=config["gradient_accumulation_steps"],
        max_grad_norm=1.0, learning_rate=config["learning_rate"], adam_beta1=0.9, adam_beta2=0.999,
        adam_epsilon=1e-8, weight_decay=0.0, save_on_each_node=False, fp16=False, fp16_full_eval=False,
        bf16=config["bf16"], bf16_full_eval=False, world_size=world_size,
        get_warmup_steps=lambda steps: config["warmup_steps"],
    )


def test_deepspeed_json_is_zero3_and_saves_complete_16bit_weights() -> None:
    config = json.loads(DEEPSPEED_JSON.read_text())
    zero = config["zero_optimization"]
    assert zero["stage"] == 3
    # Without it, checkpoint-N/model.safetensors would be an empty placeholder under ZeRO-3.
    assert zero["stage3_gather_16bit_weights_on_model_save"] is True
    assert config["bf16"]["enabled"] == "auto"
    for key in ("train_batch_size", "train_micro_batch_size_per_gpu", "gradient_accumulation_steps",
                "gradient_clipping"):
        assert config[key] == "auto", key
    # No optimizer / scheduler sections: the Trainer's AdamW and linear warm-up schedule (the DDP
    # runs' own) are used, instead of DeepSpeed's WarmupDecayLR with its logarithmic warm-up.
    assert "optimizer" not in config and "scheduler" not in config
    assert "zero_optimization.offload_param" not in config


def test_transformers_fills_the_deepspeed_json_for_the_stage_I_wrapper(tiny_llama_dir: Path) -> None:
    """The "auto" entries fill from the 8B config on 8 GPUs without a mismatch, for the Stage I
    wrapper, which has no `config.hidden_size`: hidden-size "auto" entries would be an error, so
    the JSON gives them as numbers (those transformers would derive for hidden size 4096)."""
    from llm2vec import LLM2Vec_q2d_d2q

    wrapper = LLM2Vec_q2d_d2q.from_pretrained(tiny_llama_dir, dtype=torch.float32)
    config = _config(REPO / "train_configs" / "stage_I" / "MetaLlama3.1_8b_q2d_d2q.json")
    arguments = _training_args(config, world_size=8)
    filled = _trainer_deepspeed_config(DEEPSPEED_JSON)
    filled.trainer_config_process(arguments)
    filled.trainer_config_finalize(arguments, wrapper, num_training_steps=10_000)
    assert filled.mismatches == []
    assert filled.is_zero3() and filled.is_true("bf16.enabled")
    assert filled.config["train_batch_size"] == PAPER_TOTAL_BATCH
    assert filled.config["gradient_accumulation_steps"] == config["gradient_accumulation_steps"]
    zero = filled.config["zero_optimization"]
    assert zero["reduce_bucket_size"] == 4096 * 4096
    assert zero["stage3_prefetch_bucket_size"] == int(0.9 * 4096 * 4096)
    assert zero["stage3_param_persistence_threshold"] == 10 * 4096

    with_auto = json.loads(DEEPSPEED_JSON.read_text())
    with_auto["zero_optimization"]["reduce_bucket_size"] = "auto"
    filled = _trainer_deepspeed_config(with_auto)
    filled.trainer_config_process(arguments)
    with pytest.raises(ValueError, match="hidden_size"):
        filled.trainer_config_finalize(arguments, wrapper, num_training_steps=10_000)


# ---------------------------------------------------------------------------- shell scripts
def _referenced_paths(text: str) -> set[str]:
    return set(re.findall(r"\b((?:experiments|train_configs|launch)/[\w./-]+\.(?:py|json|yaml|sh|sbatch))", text))


@pytest.mark.parametrize("path", [SBATCH, TORCHRUN_SCRIPT], ids=lambda p: p.name)
def test_shell_scripts_are_valid_bash_and_reference_existing_files(path: Path) -> None:
    subprocess.run(["bash", "-n", str(path)], check=True)
    assert os.access(path, os.X_OK), f"{path} should be executable"
    text = path.read_text()
    referenced = _referenced_paths(text)
    assert "experiments/run_stage_I.py" in referenced
    missing = sorted(p for p in referenced if not (REPO / p).exists())
    assert not missing, missing


def test_sbatch_runs_stage_I_through_srun_with_a_c10d_rendezvous() -> None:
    text = SBATCH.read_text().replace("\\\n", " ")  # join continued lines
    directives = dict(re.findall(r"^#SBATCH --([\w-]+)=(\S+)", text, re.MULTILINE))
    assert directives["nodes"] == "2" and directives["ntasks-per-node"] == "1" and directives["gpus-per-node"] == "8"
    assert re.search(r"^srun .*launch/torchrun_multinode\.sh", text, re.MULTILINE)
    assert "SCRIPT=experiments/run_stage_I.py" in text and "TOTAL_BATCH=512" in text
    default_config = re.search(r"CONFIG=\$\{CONFIG:-(\S+)\}", text).group(1)
    assert (REPO / default_config).is_file()
    per_device = _config(REPO / default_config)["per_device_train_batch_size"]
    assert PAPER_TOTAL_BATCH % (2 * 8 * per_device) == 0
    script = TORCHRUN_SCRIPT.read_text()
    assert "--rdzv_backend c10d" in script and '--rdzv_endpoint "$HEAD:$PORT"' in script


def test_torchrun_script_sets_the_accumulation_for_the_total_batch() -> None:
    config = "train_configs/stage_I/MetaLlama3.1_8b_q2d_d2q.json"
    # DRY_RUN=1 prints the torchrun command instead of running it.
    result = run_torchrun_script(config, HEAD="node001", NNODES="2", DRY_RUN="1")
    assert result.returncode == 0, result.stderr
    command = result.stdout.split()
    assert command[:3] == [sys.executable, "-m", "torch.distributed.run"]
    for flag, value in (("--nnodes", "2"), ("--nproc_per_node", "8"), ("--rdzv_backend", "c10d"),
                        ("--rdzv_endpoint", "node001:29500"), ("--gradient_accumulation_steps", "4")):
        assert command[command.index(flag) + 1] == value, flag
    assert command.index("experiments/run_stage_I.py") + 1 == command.index(config)

    # per-device override (also in --key=value form) changes the accumulation; a given one is kept
    result = run_torchrun_script(config, "--per_device_train_batch_size=16", NNODES="2", DRY_RUN="1")
    assert "--gradient_accumulation_steps 2 " in result.stdout + " ", result.stderr
    result = run_torchrun_script(config, "--gradient_accumulation_steps", "3", NNODES="2", DRY_RUN="1")
    assert result.stdout.count("--gradient_accumulation_steps") == 1 and "not TOTAL_BATCH=512" in result.stderr
    result = run_torchrun_script(config, NNODES="3", DRY_RUN="1")
    assert result.returncode == 2 and "not a multiple" in result.stderr


# ---------------------------------------------------------------------------- docs/memory.md
def test_memory_doc_tables_are_the_output_of_estimate_memory() -> None:
    """docs/memory.md quotes scripts/estimate_memory.py verbatim (which also checks that the
    parameter counts computed from the architectures are the published ones)."""
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "estimate_memory.py")], capture_output=True,
                            text=True, cwd=REPO, timeout=60, check=True)
    assert result.stdout.strip() in (REPO / "docs" / "memory.md").read_text()


def test_release_memory_model_holds_five_bf16_logit_tensors_and_fits_fewer_pairs() -> None:
    module = load_script(REPO / "scripts" / "estimate_memory.py")
    llama_1b = module.MODELS[0]
    # five bf16 tensors of 32 x 513 x 128,256 at the peak of the release's loss
    assert module.release_logits_bytes(llama_1b, 32) == 5 * 32 * 513 * 128_256 * 2
    release = module.release_stage_one(llama_1b, 32, 8)
    ours = module.stage_one(llama_1b, "ddp", 32, 8)
    assert release["weights"] == ours["weights"] and release["total"] > ours["total"]
    (row,) = [r for r in module.micro_batch_rows() if r["model"] == "Llama-3.2-1B"]
    assert row["fits"][80] == {"release": 64, "ddp": 128, "fsdp2": 256}
    assert module.largest_micro_batch(lambda b: {"total": b * module.GIB}, 24) == 16  # 21.6 GiB usable
