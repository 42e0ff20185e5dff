"""EmbeddingTokenizer: templated rows, embed masks, truncation and left padding for every model family."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from llm2vec import LLM2Vec
from llm2vec.prompts import get_template
from llm2vec.tokenization import SEPARATOR
from llm2vec.tokenization import EmbeddingTokenizer

# Cases: a tiny checkpoint family and the template it is used with ("mistral" is the explicit
# [INST] format on the tiny Mistral; "generic" is what "auto" picks for that base model).
CASES = ("llama3", "qwen2", "chatml", "mistral", "generic")
FAMILY = {"llama3": "llama3", "qwen2": "qwen2", "chatml": "chatml", "mistral": "mistral", "generic": "mistral"}
TEMPLATE = {"mistral": "mistral"}  # the others: detected ("auto")
MODEL_TYPES = {"llama3": "llama", "qwen2": "qwen2", "mistral": "mistral", "chatml": "llama", "generic": "mistral"}

INSTRUCTED = "Instr; " + SEPARATOR + "hello world"

# The formatted row of INSTRUCTED, as the tokenizer decodes it.
FORMATTED = {
    "llama3": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nInstr; hello world<|eot_id|>",
    "qwen2": "<|im_start|>user\nInstr; hello world<|im_end|><|endoftext|>",
    "chatml": "<|im_start|>user\nInstr; hello world<|im_end|>",
    "mistral": "<s> [INST] Instr; hello world [/INST]</s>",
    "generic": "<s> Instr; hello world</s>",
}
# The same string as it is fed to the tokenizer in one call (BOS left to the tokenizer).
RAW = {
    "llama3": "<|start_header_id|>user<|end_header_id|>\n\nInstr; hello world<|eot_id|>",
    "qwen2": "<|im_start|>user\nInstr; hello world<|im_end|><|endoftext|>",
    "chatml": "<|im_start|>user\nInstr; hello world<|im_end|>",
    "mistral": "[INST] Instr; hello world [/INST]</s>",
    "generic": "Instr; hello world</s>",
}
# Decoded non-embedded (instruction) and embedded (text + suffix) parts of that row. The token
# " hello" straddles the instruction/text boundary and therefore belongs to the text.
HEAD = {
    "llama3": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nInstr;",
    "qwen2": "<|im_start|>user\nInstr;",
    "chatml": "<|im_start|>user\nInstr;",
    "mistral": "<s> [INST] Instr;",
    "generic": "<s> Instr;",
}
SUFFIX = {
    "llama3": "<|eot_id|>",
    "qwen2": "<|im_end|><|endoftext|>",
    "chatml": "<|im_end|>",
    "mistral": " [/INST]</s>",
    "generic": "</s>",
}
SPAN = {
    "llama3": " hello world<|eot_id|>",
    "qwen2": " hello world<|im_end|><|endoftext|>",
    "chatml": " hello world<|im_end|>",
    "mistral": "hello world [/INST]</s>",  # the decoder drops the leading "▁" of the first token
    "generic": "hello world</s>",
}
POOLED = {"llama3": "<|eot_id|>", "qwen2": "<|endoftext|>", "chatml": "<|im_end|>", "mistral": "</s>", "generic": "</s>"}
BOS_ADDED = {"llama3": "<|begin_of_text|>", "mistral": "<s>", "generic": "<s>", "qwen2": None, "chatml": None}
SENTENCEPIECE = {"mistral", "generic"}  # "▁"-style tokenizer: a word's token carries its space

LONG_TEXT = " ".join(["the quick brown fox jumps over the lazy dog near the river bank"] * 12)


@pytest.fixture(scope="module")
def hf_tokenizers(tiny_checkpoints: dict[str, Path]) -> dict[str, object]:
    """Fresh HF tokenizers per case with pad = eos where they have no pad (as LLM2Vec sets)."""
    loaded = {}
    for case in CASES:
        tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoints[FAMILY[case]])
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        loaded[case] = tokenizer
    return loaded


def embedding_tokenizer(hf_tokenizers: dict, case: str, max_length: int = 1024) -> EmbeddingTokenizer:
    tokenizer = hf_tokenizers[case]
    template = get_template(TEMPLATE.get(case), MODEL_TYPES[case], tokenizer)
    assert template.name == case
    return EmbeddingTokenizer(tokenizer, template, max_length)


def n_suffix_tokens(tokenizer, case: str) -> int:
    return len(tokenizer(SUFFIX[case], add_special_tokens=False)["input_ids"])


def parts(tokenizer, features: dict[str, torch.Tensor], row: int = 0) -> tuple[str, str]:
    """Decoded (real tokens outside embed_mask, tokens inside embed_mask) of one row."""
    ids = features["input_ids"][row]
    attention = features["attention_mask"][row].bool()
    embed = features["embed_mask"][row].bool()
    return tokenizer.decode(ids[attention & ~embed]), tokenizer.decode(ids[embed])


# --------------------------------------------------------------------------- the formatted row
@pytest.mark.parametrize("case", CASES)
def test_row_is_the_formatted_string(case: str, hf_tokenizers: dict) -> None:
    tokenizer = hf_tokenizers[case]
    features = embedding_tokenizer(hf_tokenizers, case)([INSTRUCTED])
    ids = features["input_ids"][0].tolist()
    assert features["attention_mask"][0].tolist() == [1] * len(ids)
    assert tokenizer.decode(ids) == FORMATTED[case]
    # the same ids as tokenizing the whole formatted string in one call
    assert ids == tokenizer(RAW[case])["input_ids"]
    # ends with the template's pooled token
    assert ids[-1] == tokenizer.convert_tokens_to_ids(POOLED[case])
    assert tokenizer.convert_ids_to_tokens(ids[-1]) == POOLED[case]


@pytest.mark.parametrize("case", CASES)
def test_bos_only_where_the_tokenizer_adds_one(case: str, hf_tokenizers: dict) -> None:
    tokenizer = hf_tokenizers[case]
    ids = embedding_tokenizer(hf_tokenizers, case)([INSTRUCTED])["input_ids"][0].tolist()
    bos = BOS_ADDED[case]
    if bos is not None:
        assert ids[0] == tokenizer.convert_tokens_to_ids(bos)
        assert ids.count(ids[0]) == 1
    else:
        # qwen2/chatml add nothing: the row starts with the template's <|im_start|>, once
        start = tokenizer.convert_tokens_to_ids("<|im_start|>")
        assert ids[0] == start
        assert ids.count(start) == 1


@pytest.mark.parametrize("case", CASES)
def test_embed_mask_is_text_plus_suffix(case: str, hf_tokenizers: dict) -> None:
    tokenizer = hf_tokenizers[case]
    features = embedding_tokenizer(hf_tokenizers, case)([INSTRUCTED])
    head, span = parts(tokenizer, features)
    assert head == HEAD[case]
    assert span == SPAN[case]
    # the mask is one contiguous run that ends at the last token
    embed = features["embed_mask"][0].tolist()
    count = sum(embed)
    assert embed == [0] * (len(embed) - count) + [1] * count
    text_tokens = tokenizer("hello world" if case in SENTENCEPIECE else " hello world", add_special_tokens=False)
    assert count == len(text_tokens["input_ids"]) + n_suffix_tokens(tokenizer, case)


@pytest.mark.parametrize("case", CASES)
def test_text_without_separator_is_all_embedded(case: str, hf_tokenizers: dict) -> None:
    tokenizer = hf_tokenizers[case]
    features = embedding_tokenizer(hf_tokenizers, case)(["no separator here"])
    head, span = parts(tokenizer, features)
    assert head == HEAD[case].removesuffix("Instr;").rstrip(" ")
    assert span == "no separator here" + SUFFIX[case]


@pytest.mark.parametrize("case", ["llama3", "qwen2"])
def test_empty_instruction_and_empty_text(case: str, hf_tokenizers: dict) -> None:
    tokenizer = hf_tokenizers[case]
    et = embedding_tokenizer(hf_tokenizers, case)
    # separator first: nothing is instruction
    assert parts(tokenizer, et([SEPARATOR + "only text"])) == parts(tokenizer, et(["only text"]))
    # nothing after the separator: only the suffix is embedded
    head, span = parts(tokenizer, et(["Instr; " + SEPARATOR]))
    assert head == HEAD[case]
    assert span == SUFFIX[case]


# --------------------------------------------------------------------------- truncation
@pytest.mark.parametrize("case", CASES)
def test_truncation_keeps_instruction_and_pooled_token(case: str, hf_tokenizers: dict) -> None:
    tokenizer = hf_tokenizers[case]
    text = "Instr; " + SEPARATOR + LONG_TEXT
    full = embedding_tokenizer(hf_tokenizers, case, 1024)([text])
    cut = embedding_tokenizer(hf_tokenizers, case, 32)([text])
    full_ids = full["input_ids"][0].tolist()
    ids = cut["input_ids"][0].tolist()
    assert len(full_ids) > 60
    assert len(ids) == 32
    assert cut["attention_mask"][0].tolist() == [1] * 32
    assert ids[-1] == tokenizer.convert_tokens_to_ids(POOLED[case])
    n_tail = n_suffix_tokens(tokenizer, case)
    # only the text shrank: head + first text tokens + the untouched suffix
    assert ids == full_ids[: 32 - n_tail] + full_ids[-n_tail:]
    head, span = parts(tokenizer, cut)
    assert head == HEAD[case]
    assert span.endswith(SUFFIX[case])
    n_head = len(full_ids) - int(full["embed_mask"].sum())
    assert int(cut["embed_mask"].sum()) == 32 - n_head


@pytest.mark.parametrize("case", CASES)
def test_text_max_length_caps_only_the_text(case: str, hf_tokenizers: dict) -> None:
    tokenizer = hf_tokenizers[case]
    text = "Instr; " + SEPARATOR + LONG_TEXT
    et = embedding_tokenizer(hf_tokenizers, case, 1024)
    full = et([text])
    capped = et([text], text_max_length=5)
    full_ids = full["input_ids"][0].tolist()
    n_tail = n_suffix_tokens(tokenizer, case)
    n_head = len(full_ids) - int(full["embed_mask"].sum())
    ids = capped["input_ids"][0].tolist()
    assert ids == full_ids[: n_head + 5] + full_ids[-n_tail:]
    assert int(capped["embed_mask"].sum()) == 5 + n_tail
    assert parts(tokenizer, capped)[0] == HEAD[case]
    # a cap above the text's length changes nothing; max_length still bounds the row
    assert torch.equal(et([text], text_max_length=10_000)["input_ids"], full["input_ids"])
    short = embedding_tokenizer(hf_tokenizers, case, 32)([text], text_max_length=100)
    assert short["input_ids"].shape == (1, 32)


@pytest.mark.parametrize("case", CASES)
def test_instruction_longer_than_max_length_raises(case: str, hf_tokenizers: dict) -> None:
    et = embedding_tokenizer(hf_tokenizers, case, 32)
    instruction = " ".join(["represent this long instruction"] * 10)
    with pytest.raises(ValueError, match="leaves no room for the text"):
        et([instruction + "; " + SEPARATOR + "hello"])


@pytest.mark.parametrize("case", ["llama3", "mistral", "generic"])
def test_max_length_boundary_for_the_instruction(case: str, hf_tokenizers: dict) -> None:
    tokenizer = hf_tokenizers[case]
    text = "Instr; " + SEPARATOR + "hello world"
    full = embedding_tokenizer(hf_tokenizers, case, 1024)([text])
    n_head = int(full["attention_mask"].sum() - full["embed_mask"].sum())
    n_tail = n_suffix_tokens(tokenizer, case)
    exact = embedding_tokenizer(hf_tokenizers, case, n_head + n_tail)([text])
    assert exact["input_ids"].shape == (1, n_head + n_tail)
    assert parts(tokenizer, exact) == (HEAD[case], tokenizer.decode(full["input_ids"][0, -n_tail:]))
    with pytest.raises(ValueError, match="leaves no room"):
        embedding_tokenizer(hf_tokenizers, case, n_head + n_tail - 1)([text])
    with pytest.raises(ValueError, match="max_length must be positive"):
        embedding_tokenizer(hf_tokenizers, case, 0)


# --------------------------------------------------------------------------- batching
@pytest.mark.parametrize("case", CASES)
def test_left_padding(case: str, hf_tokenizers: dict) -> None:
    tokenizer = hf_tokenizers[case]
    et = embedding_tokenizer(hf_tokenizers, case)
    texts = ["hi", INSTRUCTED, "Instr; " + SEPARATOR + "a somewhat longer text than the others"]
    batch = et(texts)
    width = batch["input_ids"].shape[1]
    assert all(t.shape == (3, width) for t in batch.values())
    for row, text in enumerate(texts):
        alone = et([text])
        n = alone["input_ids"].shape[1]
        assert batch["input_ids"][row, width - n :].tolist() == alone["input_ids"][0].tolist()
        assert batch["embed_mask"][row, width - n :].tolist() == alone["embed_mask"][0].tolist()
        assert batch["attention_mask"][row].tolist() == [0] * (width - n) + [1] * n
        assert batch["input_ids"][row, : width - n].tolist() == [tokenizer.pad_token_id] * (width - n)
        assert batch["embed_mask"][row, : width - n].sum() == 0
    assert batch["attention_mask"][2].all()  # the longest row is not padded
    assert not batch["attention_mask"][0, 0]
    # every row ends with the pooled token
    pooled = tokenizer.convert_tokens_to_ids(POOLED[case])
    assert batch["input_ids"][:, -1].tolist() == [pooled] * 3


def test_empty_batch_raises(hf_tokenizers: dict) -> None:
    with pytest.raises(ValueError, match="empty batch"):
        embedding_tokenizer(hf_tokenizers, "llama3")([])


def test_tokenizer_without_pad_token_is_rejected(tiny_llama_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    assert tokenizer.pad_token is None
    with pytest.raises(ValueError, match="no pad token"):
        EmbeddingTokenizer(tokenizer, get_template(None, "llama", tokenizer), 64)


# --------------------------------------------------------------------------- release_compat
def release_model(path: Path, max_length: int) -> LLM2Vec:
    return LLM2Vec.from_pretrained(path, release_compat=True, max_length=max_length)


def test_release_compat_truncates_from_the_right(tiny_llama_dir: Path) -> None:
    model = release_model(tiny_llama_dir, 32)
    tokenizer = model.tokenizer
    eot = tokenizer.convert_tokens_to_ids("<|eot_id|>")
    features = model.tokenize(["Instr; " + SEPARATOR + LONG_TEXT])
    ids = features["input_ids"][0].tolist()
    assert len(ids) == 32
    assert ids[-1] != eot  # the long text lost its EOS, as in the release
    assert eot not in ids
    plain = "<|start_header_id|>user<|end_header_id|>\n\nInstr; " + LONG_TEXT + "<|eot_id|>"
    assert ids == tokenizer(plain, truncation=True, max_length=32)["input_ids"]
    # the part after the separator is longer than the row: the whole row is "embedded"
    assert features["embed_mask"][0].tolist() == [1] * 32
    # while the default tokenization keeps the EOS
    assert LLM2Vec.from_pretrained(tiny_llama_dir, max_length=32).tokenize([LONG_TEXT])["input_ids"][0, -1] == eot


@pytest.mark.parametrize("case", ["llama3", "qwen2"])
def test_release_compat_embed_mask_is_last_m_positions(case: str, tiny_checkpoints: dict) -> None:
    model = release_model(tiny_checkpoints[case], 256)
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoints[case])  # an independent copy
    texts = [
        "Instr; " + SEPARATOR + "hello world",
        "Represent the question; " + SEPARATOR + "where do whales live in the ocean",
        "text without a separator",
    ]
    features = model.tokenize(texts)
    width = features["input_ids"].shape[1]
    for row, text in enumerate(texts):
        before, separator, after = text.partition(SEPARATOR)
        m = len(tokenizer(after + "<|eot_id|>", add_special_tokens=False)["input_ids"]) if separator else 0
        assert features["embed_mask"][row].tolist() == [0] * (width - m) + [1] * m, text
        n = int(features["attention_mask"][row].sum())
        plain = "<|start_header_id|>user<|end_header_id|>\n\n" + before + after + "<|eot_id|>"
        assert features["input_ids"][row, width - n :].tolist() == tokenizer(plain)["input_ids"]


def test_release_compat_uses_llama3_format_for_qwen2(tiny_qwen_dir: Path) -> None:
    model = release_model(tiny_qwen_dir, 256)
    assert model.template.name == "llama3"
    # without release_compat the qwen2 checkpoint gets its own template
    assert LLM2Vec.from_pretrained(tiny_qwen_dir).template.name == "qwen2"
    tokenizer = model.tokenizer
    assert "<|eot_id|>" not in tokenizer.get_vocab()
    assert tokenizer.pad_token == tokenizer.eos_token == "<|im_end|>"  # the release pads with EOS
    ids = model.tokenize([INSTRUCTED])["input_ids"][0].tolist()
    assert tokenizer.decode(ids) == RAW["llama3"]  # no BOS: the qwen2 tokenizer adds none
    # the llama3 markers are plain text: many byte-level tokens, no special id among them
    specials = set(tokenizer.all_special_ids)
    assert not specials.intersection(ids)
    assert len(ids) > len(tokenizer("Instr; hello world")["input_ids"]) + 3 * 3
