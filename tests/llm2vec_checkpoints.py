"""Tiny local repositories laid out like McGill-NLP's published LLM2Vec checkpoints, and the model llm2vec builds from them.

McGill-NLP publishes an LLM2Vec model as two hub repositories:

* ``...-mntp`` (e.g. McGill-NLP/LLM2Vec-Meta-Llama-3-8B-Instruct-mntp): a PEFT LoRA adapter
  trained with MNTP on the bidirectional decoder body, its tokenizer, and the base model's
  ``config.json`` whose ``_name_or_path`` is the base hub id (llm2vec's ``LLM2Vec.from_pretrained``
  reads that name to choose the prompt template, and finds the adapter next to the config);
* ``...-mntp-supervised`` / ``...-mntp-unsup-simcse``: the next LoRA adapter, trained on top of
  the merged MNTP model, its tokenizer and ``llm2vec_config.json``.

The functions below write tiny, seeded, offline versions of both from a tiny base checkpoint
(``llm2vec.testing.tiny_models.save_tiny_checkpoint``), with random non-zero LoRA matrices so
that each adapter changes the embeddings, and rebuild with plain ``peft`` calls the model that
``LLM2Vec.from_pretrained(mntp_dir, peft_model_name_or_path=supervised_dir)`` ends up with.
Nothing is imported from the ``llm2vec`` package except (in the self-tests) the tiny builders.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoModel, AutoTokenizer

__all__ = [
    "LORA_TARGET_MODULES",
    "LLM2VEC_CONFIG_KEYS",
    "DEFAULT_LLM2VEC_CONFIG",
    "write_mntp_repo",
    "write_supervised_repo",
    "llm2vec_chain_reference",
]

#: the modules llm2vec's ``initialize_peft`` (experiments/run_mntp.py, run_supervised.py) adapts
LORA_TARGET_MODULES = ("q_proj", "v_proj", "k_proj", "o_proj", "gate_proj", "up_proj", "down_proj")

#: the keys of ``llm2vec_config.json`` as ``LLM2Vec.save`` (llm2vec/llm2vec.py) writes them
LLM2VEC_CONFIG_KEYS = ("pooling_mode", "max_length", "doc_max_length", "skip_instruction")

DEFAULT_LLM2VEC_CONFIG = {"pooling_mode": "mean", "max_length": 512, "doc_max_length": 400, "skip_instruction": True}

_LORA_R = 4
_LORA_INIT_STD = 0.1  # std of the random A and B matrices: deltas of the order of the tiny weights


def _write_lora_adapter(base_dir: Path, out_dir: Path, seed: int) -> None:
    """A LoRA adapter over the decoder body (``AutoModel``) of ``base_dir``, with random A and B.

    Built like llm2vec's ``initialize_peft`` (experiments/run_mntp.py): ``task_type=None`` on the
    bare decoder, so the saved keys read ``base_model.model.layers.<i>.<module>.lora_A.weight``
    exactly as McGill-NLP's adapters do; r=4, alpha=2r as run_supervised.py, no bias.
    """
    model = AutoModel.from_pretrained(base_dir, dtype=torch.float32)
    config = LoraConfig(
        r=_LORA_R,
        lora_alpha=2 * _LORA_R,
        target_modules=list(LORA_TARGET_MODULES),
        lora_dropout=0.05,
        bias="none",
        task_type=None,
    )
    peft_model = get_peft_model(model, config)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, parameter in sorted(peft_model.named_parameters()):
            if ".lora_A." in name or ".lora_B." in name:
                values = torch.randn(parameter.shape, generator=generator, dtype=torch.float32) * _LORA_INIT_STD
                parameter.copy_(values)
    peft_model.save_pretrained(out_dir, safe_serialization=True)
    adapter_config_path = out_dir / "adapter_config.json"
    adapter_config = json.loads(adapter_config_path.read_text())
    adapter_config["base_model_name_or_path"] = str(base_dir)
    adapter_config_path.write_text(json.dumps(adapter_config, indent=2))
    readme = out_dir / "README.md"  # peft writes a model card; the published repos have their own
    if readme.exists():
        readme.unlink()


def write_mntp_repo(
    base_dir: str | Path,
    out_dir: str | Path,
    *,
    name_or_path: str | None = None,
    with_config_json: bool = True,
    seed: int = 0,
) -> Path:
    """An MNTP repository for the tiny base checkpoint ``base_dir``, written to ``out_dir``.

    Holds ``adapter_config.json`` (``base_model_name_or_path`` = ``str(base_dir)``) and
    ``adapter_model.safetensors`` (LoRA over the q/k/v/o/gate/up/down projections of the decoder,
    r=4, A and B random from ``seed``), the tokenizer files, and, if ``with_config_json``, the
    base's ``config.json`` with ``_name_or_path`` set to ``name_or_path`` (e.g.
    ``"meta-llama/Meta-Llama-3-8B-Instruct"``) when given. With ``name_or_path=None`` the
    config is copied as transformers 5 saved it, i.e. without ``_name_or_path``: llm2vec would
    then see an empty name and use no prompt wrapper. Returns ``out_dir`` as a Path.
    """
    base_dir, out_dir = Path(base_dir), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_lora_adapter(base_dir, out_dir, seed)
    AutoTokenizer.from_pretrained(base_dir).save_pretrained(out_dir)
    if with_config_json:
        config = json.loads((base_dir / "config.json").read_text())
        if name_or_path is not None:
            config["_name_or_path"] = name_or_path
        (out_dir / "config.json").write_text(json.dumps(config, indent=2))
        if (base_dir / "generation_config.json").exists():
            shutil.copyfile(base_dir / "generation_config.json", out_dir / "generation_config.json")
    return out_dir


def _base_of(mntp_dir_or_base: Path) -> Path:
    """The base checkpoint folder: the MNTP adapter's base, or the folder itself when it is a base."""
    adapter_config = mntp_dir_or_base / "adapter_config.json"
    if adapter_config.exists():
        return Path(json.loads(adapter_config.read_text())["base_model_name_or_path"])
    return mntp_dir_or_base


def write_supervised_repo(
    mntp_dir_or_base: str | Path,
    out_dir: str | Path,
    *,
    llm2vec_config: dict | None = DEFAULT_LLM2VEC_CONFIG,
    seed: int = 1,
) -> Path:
    """A supervised (or unsupervised SimCSE) repository on top of an MNTP repo or a bare base.

    Holds a LoRA adapter like :func:`write_mntp_repo`'s (random A and B from ``seed``) whose
    ``base_model_name_or_path`` is the base checkpoint folder (llm2vec's published ones record
    the base hub id), the tokenizer as ``LLM2Vec.save`` writes it (pad = eos, padding side left,
    llm2vec/llm2vec.py ``from_pretrained`` + ``save``; transformers does not save a padding side
    set after loading, so only pad = eos shows in the files), and ``llm2vec_config.json`` with exactly
    llm2vec's four keys (none written when ``llm2vec_config`` is None). No ``config.json``.
    """
    mntp_dir_or_base, out_dir = Path(mntp_dir_or_base), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_lora_adapter(_base_of(mntp_dir_or_base), out_dir, seed)
    tokenizer = AutoTokenizer.from_pretrained(mntp_dir_or_base)
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(out_dir)
    if llm2vec_config is not None:
        if set(llm2vec_config) != set(LLM2VEC_CONFIG_KEYS):
            raise ValueError(f"llm2vec_config must have exactly the keys {LLM2VEC_CONFIG_KEYS}, got {sorted(llm2vec_config)}")
        ordered = {key: llm2vec_config[key] for key in LLM2VEC_CONFIG_KEYS}
        (out_dir / "llm2vec_config.json").write_text(json.dumps(ordered, indent=4))
    return out_dir


# follows llm2vec/llm2vec.py, LLM2Vec.from_pretrained (base + MNTP adapter merged, then the
# peft_model_name_or_path adapter) with plain peft calls
def llm2vec_chain_reference(base_dir: str | Path, mntp_dir: str | Path, supervised_dir: str | Path):
    """``(model, tokenizer)`` as ``LLM2Vec.from_pretrained(mntp_dir, peft_model_name_or_path=supervised_dir)`` holds them.

    The base ``AutoModel`` in float32, the MNTP adapter applied and merged, the supervised adapter
    applied and merged too (llm2vec keeps it unmerged by default; merging does not change the
    outputs), eval mode. The tokenizer comes from ``mntp_dir`` with pad = eos and left padding.
    Attention stays as configured: run the model bidirectionally with
    ``tests.llm2vec_reference.forward_hidden``.
    """
    model = AutoModel.from_pretrained(Path(base_dir), dtype=torch.float32)
    model = PeftModel.from_pretrained(model, Path(mntp_dir), adapter_name="mntp").merge_and_unload()
    model = PeftModel.from_pretrained(model, Path(supervised_dir), adapter_name="supervised").merge_and_unload()
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(Path(mntp_dir))
    tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return model, tokenizer
