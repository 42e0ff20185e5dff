"""Prompt templates: how a text is wrapped before tokenization, per model family.

A template is data: a prefix written before the text and a suffix written after it. The suffix
always ends with the token whose final hidden state is the embedding (the "EOS" of the paper), so
truncation can cut the text while keeping the suffix intact. ``{eos}`` in a suffix stands for the
tokenizer's own EOS token. :data:`TEMPLATES` holds the formats, each with the models it is for;
:func:`detect_template_name` picks one from the tokenizer's special tokens and the model type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

@dataclass(frozen=True)
class PromptTemplate:
    """A prefix and a suffix around the (instruction and) text; the suffix ends with the pooled token."""

    name: str
    prefix: str
    suffix: str
    #: strip the text's surrounding whitespace before wrapping it (llm2vec keeps it when it adds
    #: neither a chat format nor an EOS)
    strip_text: bool = True

    def resolve_suffix(self, tokenizer: Any) -> str:
        """The suffix with ``{eos}`` replaced by the tokenizer's EOS token."""
        if "{eos}" not in self.suffix:
            return self.suffix
        if tokenizer.eos_token is None:
            raise ValueError(
                f"prompt template '{self.name}' appends the tokenizer's EOS token, but the tokenizer "
                "has no eos_token; set one or choose another template with the 'prompt_template' key"
            )
        return self.suffix.replace("{eos}", tokenizer.eos_token)


TEMPLATES: dict[str, PromptTemplate] = {
    # The release's format (the tokenizer adds <|begin_of_text|>); pooled token <|eot_id|>.
    "llama3": PromptTemplate("llama3", "<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
    # The release's (unused) Qwen helper; pooled token <|endoftext|>.
    "qwen2": PromptTemplate("qwen2", "<|im_start|>user\n", "<|im_end|><|endoftext|>"),
    # ChatML models that are not Qwen2 (SmolLM2-Instruct); pooled token <|im_end|>.
    "chatml": PromptTemplate("chatml", "<|im_start|>user\n", "<|im_end|>"),
    # llm2vec's Mistral-Instruct format, for Mistral models whose chat template uses [INST].
    "mistral": PromptTemplate("mistral", "[INST] ", " [/INST]{eos}"),
    # Gemma-2/3 instruct models; pooled token <end_of_turn>, which closes a turn as <|eot_id|> does.
    "gemma": PromptTemplate("gemma", "<start_of_turn>user\n", "<end_of_turn>"),
    # Phi-3/3.5 instruct models; pooled token <|end|>, the end of a turn.
    "phi3": PromptTemplate("phi3", "<|user|>\n", "<|end|>"),
    # Base models (Mistral-7B-v0.1 among them): the text and the tokenizer's EOS, as llm2vec does.
    "generic": PromptTemplate("generic", "", "{eos}"),
}
#: the special tokens of each chat format, which a tokenizer must know for the format to apply
_FORMAT_TOKENS = ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|im_start|>", "<|im_end|>",
                  "<|endoftext|>", "<start_of_turn>", "<end_of_turn>", "<|user|>", "<|end|>")


def _has_tokens(tokenizer: Any, tokens: list[str]) -> bool:
    vocab = tokenizer.get_vocab()
    return all(token in vocab for token in tokens)


def detect_template_name(model_type: str | None, tokenizer: Any) -> str:
    """Choose a template from the model type and the tokenizer's special tokens.

    The vocabulary decides first because one architecture serves several chat formats
    (Llama-3 and SmolLM2 are both ``llama``); the model type breaks the remaining ties.
    """
    if _has_tokens(tokenizer, ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]):
        return "llama3"
    if _has_tokens(tokenizer, ["<|im_start|>", "<|im_end|>"]):
        qwen = model_type in ("qwen2", "qwen3") and _has_tokens(tokenizer, ["<|endoftext|>"])
        return "qwen2" if qwen else "chatml"
    if _has_tokens(tokenizer, ["<start_of_turn>", "<end_of_turn>"]):
        return "gemma"
    if _has_tokens(tokenizer, ["<|user|>", "<|end|>"]):
        return "phi3"
    if model_type == "mistral" and "[INST]" in (getattr(tokenizer, "chat_template", None) or ""):
        return "mistral"
    # Base models (Mistral-7B-v0.1 among them) have no chat format: text + EOS, as llm2vec does.
    return "generic"


def get_template(
    name: str | None, model_type: str | None, tokenizer: Any, allow_missing_special_tokens: bool = False
) -> PromptTemplate:
    """The template called ``name``, or the detected one when ``name`` is None or ``"auto"``.

    ``allow_missing_special_tokens`` lets a template's special tokens be spelled out as plain text
    (the release applied the Llama-3 format to every model; ``release_compat`` needs that).

    Raises:
        ValueError: ``name`` is not a known template, or its special tokens are not in the vocabulary.
    """
    if name is None or name == "auto":
        name = detect_template_name(model_type, tokenizer)
    if name not in TEMPLATES:
        raise ValueError(
            f"unknown prompt_template '{name}'; choose one of {sorted(TEMPLATES)} or 'auto'"
        )
    template = TEMPLATES[name]
    special = [t for t in _FORMAT_TOKENS if t in template.prefix + template.suffix]
    if special and not allow_missing_special_tokens and not _has_tokens(tokenizer, special):
        raise ValueError(
            f"prompt_template '{name}' needs the special tokens {special}, which this tokenizer lacks; "
            "use prompt_template 'auto' or 'generic'"
        )
    return template


#: llm2vec's chat formats, chosen by the exact model name (its ``prepare_for_tokenization``)
_LLM2VEC_CHAT_FORMATS: dict[str, tuple[str, str]] = {
    "mistralai/Mistral-7B-Instruct-v0.2": ("[INST] ", " [/INST]"),
    "meta-llama/Llama-2-7b-chat-hf": ("[INST] ", " [/INST]"),
    "google/gemma-2-9b-it": ("<bos><start_of_turn>user\n", "<end_of_turn>"),
    "Qwen/Qwen2-1.5B-Instruct": ("<|im_start|>user\n", "<|im_end|>"),
    "Qwen/Qwen2-7B-Instruct": ("<|im_start|>user\n", "<|im_end|>"),
}
#: the EOS text llm2vec appends for ``eos_token`` pooling, by config class (model type)
_LLM2VEC_EOS = {"llama": " </s>", "mistral": " </s>", "gemma": "<eos>", "qwen2": "<|endoftext|>"}


def llm2vec_template(name_or_path: str | None, pooling_mode: str, model_type: str | None) -> PromptTemplate:
    """The wrapping McGill-NLP llm2vec applies to a text (its ``prepare_for_tokenization``).

    llm2vec decides by the model's ``_name_or_path``: a few published models get their chat format,
    Meta-Llama-3-8B-Instruct its own and nothing more; with ``eos_token`` pooling an EOS text chosen
    by the config class follows. Any other model gets its text unchanged, surrounding whitespace
    included. The strings are llm2vec's, literal: " </s>" is appended to a Llama-3 base model too.
    """
    name = name_or_path or ""
    if name == "meta-llama/Meta-Llama-3-8B-Instruct":
        return PromptTemplate("llm2vec", "<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>")
    prefix, suffix = _LLM2VEC_CHAT_FORMATS.get(name, ("", ""))
    wrapped = bool(prefix or suffix)
    if pooling_mode == "eos_token":
        eos = "<|end_of_text|>" if name == "meta-llama/Meta-Llama-3-8B" else _LLM2VEC_EOS.get(model_type or "")
        if eos is not None:
            return PromptTemplate("llm2vec", prefix, suffix + eos)
    return PromptTemplate("llm2vec", prefix, suffix, strip_text=wrapped)
