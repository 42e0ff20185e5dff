"""Tiny random causal LMs and tokenizers that mimic real model families, built fully offline.

Four families (:data:`FAMILIES`) imitate the special tokens and BOS/EOS/PAD behaviour of a real
checkpoint: ``llama3`` (Llama-3.x-Instruct), ``qwen2`` (Qwen2.5-Instruct), ``mistral``
(Mistral-7B-v0.1 base, SentencePiece-style with byte fallback) and ``chatml`` (SmolLM2-Instruct:
a Llama model with ChatML tokens); :data:`FAMILY_SPECS` spells out each one's tokens, ids and
model class. The tokenizers are trained in-process, deterministically, on a small English corpus
generated in code; special tokens always tokenize as single ids.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
)

from llm2vec.testing.tiny_data import DEFAULT_INSTRUCTIONS, FILLER_WORDS, QUESTION_TEMPLATES, TOPICS

__all__ = [
    "FAMILIES",
    "FamilySpec",
    "FAMILY_SPECS",
    "build_tiny_tokenizer",
    "build_tiny_model",
    "save_tiny_checkpoint",
    "tiny_corpus",
]

FAMILIES: tuple[str, ...] = ("llama3", "qwen2", "mistral", "chatml")

# Pre-tokenization regexes in the style of the tiktoken-like tokenizers of Llama-3 / Qwen2
# (contractions, letter runs with one leading non-letter, digit groups, punctuation, whitespace).
_LLAMA3_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
_QWEN2_SPLIT = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_LLAMA3_CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)


def _chatml_template(default_system: str) -> str:
    return (
        "{% if messages[0]['role'] != 'system' %}"
        "{{ '<|im_start|>system\n" + default_system + "<|im_end|>\n' }}"
        "{% endif %}"
        "{% for message in messages %}"
        "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
        "{% endfor %}"
        "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
    )


@dataclass(frozen=True)
class FamilySpec:
    """What a tiny family imitates: special tokens, their roles and the model class."""

    name: str
    model_type: str  # "llama", "qwen2" or "mistral"
    #: special tokens with the lowest ids, in order (ids 0, 1, ...), before the trained vocabulary
    leading_special: tuple[str, ...]
    #: special tokens appended after the trained vocabulary, in order
    trailing_special: tuple[str, ...]
    bos_token: str | None
    eos_token: str
    pad_token: str | None
    unk_token: str | None
    add_bos: bool  # whether the post-processor prepends ``bos_token``
    rope_theta: float
    chat_template: str | None
    #: ``bos_token_id``/``eos_token_id``/``pad_token_id`` of the model config as token strings
    config_bos: str | None
    config_eos: str
    config_pad: str | None
    extra_config: dict[str, Any] = field(default_factory=dict)


FAMILY_SPECS: dict[str, FamilySpec] = {
    "llama3": FamilySpec(
        name="llama3",
        model_type="llama",
        leading_special=(),
        trailing_special=(
            "<|begin_of_text|>",
            "<|end_of_text|>",
            "<|start_header_id|>",
            "<|end_header_id|>",
            "<|eot_id|>",
        ),
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token=None,
        unk_token=None,
        add_bos=True,
        rope_theta=500000.0,
        chat_template=_LLAMA3_CHAT_TEMPLATE,
        config_bos="<|begin_of_text|>",
        config_eos="<|eot_id|>",
        config_pad=None,
    ),
    "qwen2": FamilySpec(
        name="qwen2",
        model_type="qwen2",
        leading_special=(),
        trailing_special=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        add_bos=False,
        rope_theta=1000000.0,
        chat_template=_chatml_template("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."),
        # like Qwen2.5-Instruct's config.json: bos_token_id is <|endoftext|> although no BOS is added
        config_bos="<|endoftext|>",
        config_eos="<|im_end|>",
        config_pad="<|endoftext|>",
        extra_config={"use_sliding_window": False},
    ),
    "mistral": FamilySpec(
        name="mistral",
        model_type="mistral",
        leading_special=("<unk>", "<s>", "</s>"),
        trailing_special=(),
        bos_token="<s>",
        eos_token="</s>",
        pad_token=None,
        unk_token="<unk>",
        add_bos=True,
        rope_theta=10000.0,
        chat_template=None,  # a base model: no chat template
        config_bos="<s>",
        config_eos="</s>",
        config_pad=None,
        extra_config={"sliding_window": 4096},
    ),
    "chatml": FamilySpec(
        name="chatml",
        model_type="llama",
        leading_special=("<|endoftext|>", "<|im_start|>", "<|im_end|>"),
        trailing_special=(),
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
        add_bos=False,
        rope_theta=100000.0,
        chat_template=_chatml_template("You are a helpful AI assistant named SmolLM, trained by Hugging Face"),
        config_bos="<|im_start|>",
        config_eos="<|im_end|>",
        config_pad="<|im_end|>",
    ),
}

_MODEL_CLASSES = {
    "llama": (LlamaConfig, LlamaForCausalLM),
    "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    "mistral": (MistralConfig, MistralForCausalLM),
}

_BYTE_LEVEL_VOCAB = 580  # trained size for byte-level families (256 byte symbols + merges)
_SPM_TRAINED_VOCAB = 330  # trained size for the mistral family (+3 specials +256 byte-fallback)

_EXTRA_WORDS: tuple[str, ...] = (
    "hello", "world", "user", "assistant", "system", "question", "answer", "query", "passage",
    "document", "text", "sentence", "retrieve", "given", "instruction", "represent", "search",
    "relevant", "similar", "semantic", "embedding", "model", "language", "topic", "example",
    "first", "second", "third", "one", "two", "three", "yes", "no", "not", "all", "any", "be",
    "was", "were", "has", "have", "had", "do", "does", "did", "will", "would", "should", "could",
    "I", "you", "he", "she", "we", "them", "his", "her", "our", "your", "its", "an", "to", "at",
    "as", "or", "but", "if", "so", "then", "there", "here", "what", "how", "why", "where", "when",
    "which", "who", "whom", "day", "night", "water", "house", "city", "country", "life", "work",
    "family", "friend", "story", "name", "number", "part", "place", "thing", "way", "man", "woman",
    "child", "small", "large", "big", "old", "young", "long", "short", "high", "low", "great",
    "little", "own", "same", "different", "important", "public", "able", "bad", "best", "better",
)


def tiny_corpus(n_sentences: int = 1500, seed: int = 1234) -> list[str]:
    """The deterministic English-like corpus the tiny tokenizers are trained on."""
    rng = random.Random(seed)
    topic_words = [w for words in TOPICS.values() for w in words]
    template_words = [w.strip("?{}") for t in QUESTION_TEMPLATES for w in t.split() if w.strip("?{}")]
    instruction_words = [w for s in DEFAULT_INSTRUCTIONS for w in s.split()]
    vocabulary = topic_words + list(FILLER_WORDS) * 3 + list(_EXTRA_WORDS) + template_words + instruction_words
    punctuation = [".", ",", "?", "!", ";", ":"]
    sentences = []
    for i in range(n_sentences):
        words = [rng.choice(vocabulary) for _ in range(rng.randint(4, 14))]
        if rng.random() < 0.3:
            words[0] = words[0].capitalize()
        if rng.random() < 0.15:
            words.insert(rng.randrange(len(words)), str(rng.randint(0, 2025)))
        sentence = " ".join(words) + rng.choice(punctuation)
        if i % 7 == 0:
            sentence += "\n"
        sentences.append(sentence)
    return sentences


def _check_family(family: str) -> FamilySpec:
    if family not in FAMILY_SPECS:
        raise ValueError(f"unknown tiny model family {family!r}; expected one of {FAMILIES}")
    return FAMILY_SPECS[family]


def _special(content: str) -> AddedToken:
    return AddedToken(content, special=True, normalized=False, lstrip=False, rstrip=False, single_word=False)


def _build_byte_level(spec: FamilySpec) -> Tokenizer:
    tokenizer = Tokenizer(models.BPE())
    if spec.name == "chatml":
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Digits(individual_digits=True),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
            ]
        )
    else:
        pattern = _QWEN2_SPLIT if spec.name == "qwen2" else _LLAMA3_SPLIT
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [
                pre_tokenizers.Split(Regex(pattern), behavior="isolated", invert=False),
                pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
            ]
        )
    if spec.name == "qwen2":
        tokenizer.normalizer = normalizers.NFC()
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=_BYTE_LEVEL_VOCAB + len(spec.leading_special),
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[_special(t) for t in spec.leading_special],
    )
    tokenizer.train_from_iterator(tiny_corpus(), trainer=trainer)
    tokenizer.add_special_tokens([_special(t) for t in spec.trailing_special])
    byte_level = processors.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)
    if spec.add_bos:
        bos_id = tokenizer.token_to_id(spec.bos_token)
        template = processors.TemplateProcessing(
            single=f"{spec.bos_token}:0 $A:0",
            pair=f"{spec.bos_token}:0 $A:0 {spec.bos_token}:1 $B:1",
            special_tokens=[(spec.bos_token, bos_id)],
        )
        tokenizer.post_processor = processors.Sequence([byte_level, template])
    else:
        tokenizer.post_processor = byte_level
    return tokenizer


def _build_sentencepiece_like(spec: FamilySpec) -> Tokenizer:
    """A Llama-2/Mistral style BPE: ``▁`` marks spaces, unknown characters fall back to bytes."""
    metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=True)
    trainer_tokenizer = Tokenizer(models.BPE())
    trainer_tokenizer.pre_tokenizer = metaspace
    trainer = trainers.BpeTrainer(vocab_size=_SPM_TRAINED_VOCAB, min_frequency=2, show_progress=False)
    trainer_tokenizer.train_from_iterator(tiny_corpus(), trainer=trainer)
    trained = json.loads(trainer_tokenizer.to_str())["model"]

    vocab: dict[str, int] = {}
    for token in spec.leading_special:
        vocab[token] = len(vocab)
    for byte in range(256):
        vocab[f"<0x{byte:02X}>"] = len(vocab)
    for token, _ in sorted(trained["vocab"].items(), key=lambda item: item[1]):
        if token not in vocab:
            vocab[token] = len(vocab)
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in trained["merges"]]

    tokenizer = Tokenizer(
        models.BPE(vocab=vocab, merges=merges, unk_token=spec.unk_token, fuse_unk=True, byte_fallback=True)
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first", split=False)
    tokenizer.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), decoders.Strip(" ", 1, 0)]
    )
    tokenizer.add_special_tokens([_special(t) for t in spec.leading_special])
    bos_id = tokenizer.token_to_id(spec.bos_token)
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{spec.bos_token}:0 $A:0",
        pair=f"{spec.bos_token}:0 $A:0 {spec.bos_token}:1 $B:1",
        special_tokens=[(spec.bos_token, bos_id)],
    )
    return tokenizer


@lru_cache(maxsize=None)
def _backend_json(family: str) -> str:
    spec = FAMILY_SPECS[family]
    backend = _build_sentencepiece_like(spec) if family == "mistral" else _build_byte_level(spec)
    return backend.to_str()


def build_tiny_tokenizer(family: str) -> PreTrainedTokenizerFast:
    """A fresh fast tokenizer imitating ``family`` (see the module docstring)."""
    spec = _check_family(family)
    backend = Tokenizer.from_str(_backend_json(family))
    kwargs: dict[str, Any] = {
        "bos_token": spec.bos_token,
        "eos_token": spec.eos_token,
        "unk_token": spec.unk_token,
        "pad_token": spec.pad_token,
        "model_max_length": 1024,
        "clean_up_tokenization_spaces": False,
    }
    extra = [t for t in (*spec.leading_special, *spec.trailing_special) if t not in kwargs.values()]
    if extra:
        kwargs["extra_special_tokens"] = extra
    if spec.chat_template is not None:
        kwargs["chat_template"] = spec.chat_template
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)
    return tokenizer


def _token_id(tokenizer: PreTrainedTokenizerFast, token: str | None) -> int | None:
    if token is None:
        return None
    token_id = tokenizer.convert_tokens_to_ids(token)
    if token_id is None or token_id == tokenizer.unk_token_id and token != tokenizer.unk_token:
        raise ValueError(f"token {token!r} is not in the tokenizer")
    return token_id


def build_tiny_model(
    family: str,
    tokenizer: PreTrainedTokenizerFast | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float32,
    **config_overrides: Any,
) -> PreTrainedModel:
    """A randomly initialised tiny causal LM of ``family`` whose vocabulary matches ``tokenizer``.

    hidden 32, 2 layers, 4 heads, 2 KV heads, intermediate 64, 1024 positions, untied embeddings.
    Weights depend only on ``seed`` (the global torch RNG is left untouched). ``config_overrides``
    update the config (``attn_implementation`` selects the attention backend, "sdpa" by default).
    The model is returned in eval mode.
    """
    spec = _check_family(family)
    if tokenizer is None:
        tokenizer = build_tiny_tokenizer(family)
    attn_implementation = config_overrides.pop("attn_implementation", "sdpa")
    config_cls, model_cls = _MODEL_CLASSES[spec.model_type]
    config_kwargs: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "max_position_embeddings": 1024,
        "rms_norm_eps": 1e-6,
        "tie_word_embeddings": False,
        "rope_parameters": {"rope_type": "default", "rope_theta": spec.rope_theta},
        "bos_token_id": _token_id(tokenizer, spec.config_bos),
        "eos_token_id": _token_id(tokenizer, spec.config_eos),
        "pad_token_id": _token_id(tokenizer, spec.config_pad),
        **spec.extra_config,
    }
    config_kwargs.update(config_overrides)
    config = config_cls(**config_kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls._from_config(config, attn_implementation=attn_implementation, dtype=dtype)
    model.eval()
    return model


def save_tiny_checkpoint(family: str, output_dir: str | Path, seed: int = 0, **overrides: Any) -> Path:
    """Build a tiny tokenizer and model of ``family`` and ``save_pretrained`` both to ``output_dir``.

    The folder loads offline with ``AutoTokenizer.from_pretrained`` and
    ``AutoModelForCausalLM.from_pretrained``. ``overrides`` go to :func:`build_tiny_model`.
    Returns ``output_dir`` as a :class:`~pathlib.Path`.
    """
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tiny_tokenizer(family)
    model = build_tiny_model(family, tokenizer, seed=seed, **overrides)
    tokenizer.save_pretrained(output_dir)
    model.save_pretrained(output_dir)
    return output_dir
