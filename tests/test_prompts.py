"""Prompt templates: detection per model family, explicit choice and the special-token check."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from transformers import AutoConfig, AutoTokenizer

from llm2vec.prompts import TEMPLATES, detect_template_name, get_template

# model_type of each tiny family's config.json (the chatml family is a Llama model)
MODEL_TYPES = {"llama3": "llama", "qwen2": "qwen2", "mistral": "mistral", "chatml": "llama"}
# The tiny mistral family is a base model without a chat template: it gets "generic" (text + EOS);
# only a Mistral tokenizer whose chat template uses [INST] gets the "mistral" format.
DETECTED = {"llama3": "llama3", "qwen2": "qwen2", "mistral": "generic", "chatml": "chatml"}
INST_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}"
    "{{ '[INST] ' + message['content'] + ' [/INST]' }}{% else %}{{ message['content'] + eos_token }}"
    "{% endif %}{% endfor %}"
)


@pytest.fixture(scope="module")
def tokenizers(tiny_checkpoints: dict[str, Path]) -> dict[str, object]:
    return {family: AutoTokenizer.from_pretrained(path) for family, path in tiny_checkpoints.items()}


@pytest.mark.parametrize("family", sorted(DETECTED))
def test_detects_template_of_each_family(family: str, tokenizers: dict, tiny_checkpoints: dict) -> None:
    model_type = AutoConfig.from_pretrained(tiny_checkpoints[family]).model_type
    assert model_type == MODEL_TYPES[family]
    tokenizer = tokenizers[family]
    assert detect_template_name(model_type, tokenizer) == DETECTED[family]
    for name in (None, "auto"):
        template = get_template(name, model_type, tokenizer)
        assert template.name == DETECTED[family]
        assert template is TEMPLATES[DETECTED[family]]


def test_vocabulary_decides_before_model_type(tokenizers: dict) -> None:
    # Llama-3 tokens win whatever the architecture says.
    assert detect_template_name("qwen2", tokenizers["llama3"]) == "llama3"
    assert detect_template_name(None, tokenizers["llama3"]) == "llama3"
    # ChatML tokens: qwen2 only for a qwen2 model (with <|endoftext|>), chatml otherwise.
    assert detect_template_name("llama", tokenizers["qwen2"]) == "chatml"
    assert detect_template_name(None, tokenizers["qwen2"]) == "chatml"
    assert detect_template_name("qwen2", tokenizers["chatml"]) == "qwen2"  # it has <|endoftext|>
    # Without chat tokens: generic, also for a base Mistral (no chat template)
    assert tokenizers["mistral"].chat_template is None
    assert detect_template_name("mistral", tokenizers["mistral"]) == "generic"
    assert detect_template_name("llama", tokenizers["mistral"]) == "generic"


def test_mistral_instruct_chat_template_selects_mistral(tiny_mistral_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_mistral_dir)  # a private copy to modify
    tokenizer.chat_template = INST_CHAT_TEMPLATE
    assert detect_template_name("mistral", tokenizer) == "mistral"
    template = get_template(None, "mistral", tokenizer)
    assert template.name == "mistral"
    assert template.prefix + "hi" + template.resolve_suffix(tokenizer) == "[INST] hi [/INST]</s>"
    # the [INST] format is only taken for a Mistral model
    assert detect_template_name("llama", tokenizer) == "generic"
    assert detect_template_name(None, tokenizer) == "generic"
    # a chat template without [INST] does not select it either
    tokenizer.chat_template = "{% for message in messages %}{{ message['content'] }}{% endfor %}"
    assert detect_template_name("mistral", tokenizer) == "generic"


def test_generic_without_chat_tokens_and_model_type(tokenizers: dict) -> None:
    tokenizer = tokenizers["mistral"]  # only <unk>, <s>, </s>
    assert get_template(None, None, tokenizer).name == "generic"
    generic = get_template("auto", None, tokenizer)
    assert generic.prefix == ""
    assert generic.resolve_suffix(tokenizer) == "</s>"


def test_explicit_template_overrides_detection(tokenizers: dict) -> None:
    qwen = tokenizers["qwen2"]
    assert get_template(None, "qwen2", qwen).name == "qwen2"
    chatml = get_template("chatml", "qwen2", qwen)
    assert chatml.name == "chatml"
    assert chatml.suffix == "<|im_end|>"
    assert get_template("generic", "qwen2", qwen).resolve_suffix(qwen) == "<|im_end|>"
    # mistral's format has no special tokens: allowed with any tokenizer
    mistral_on_llama = get_template("mistral", "llama", tokenizers["llama3"])
    assert mistral_on_llama.resolve_suffix(tokenizers["llama3"]) == " [/INST]<|eot_id|>"


@pytest.mark.parametrize("name", ["llama2", "LLAMA3", "", "chat-ml"])
def test_unknown_template_name_raises(name: str, tokenizers: dict) -> None:
    with pytest.raises(ValueError, match="unknown prompt_template") as info:
        get_template(name, "llama", tokenizers["llama3"])
    assert repr(name)[1:-1] in str(info.value)


@pytest.mark.parametrize(
    ("name", "family", "missing"),
    [
        ("llama3", "qwen2", "<|start_header_id|>"),
        ("llama3", "mistral", "<|eot_id|>"),
        ("chatml", "llama3", "<|im_start|>"),
        ("qwen2", "llama3", "<|im_end|>"),
        ("qwen2", "mistral", "<|endoftext|>"),
    ],
)
def test_missing_special_tokens_raise_unless_allowed(name: str, family: str, missing: str, tokenizers: dict) -> None:
    tokenizer = tokenizers[family]
    with pytest.raises(ValueError, match="special tokens") as info:
        get_template(name, MODEL_TYPES[family], tokenizer)
    assert missing in str(info.value)
    template = get_template(name, MODEL_TYPES[family], tokenizer, allow_missing_special_tokens=True)
    assert template is TEMPLATES[name]


def test_qwen2_template_works_on_chatml_tokenizer(tokenizers: dict) -> None:
    # The chatml tiny tokenizer has <|im_start|>, <|im_end|> and <|endoftext|>: nothing is missing.
    assert get_template("qwen2", "llama", tokenizers["chatml"]).name == "qwen2"


def test_eos_suffix_needs_an_eos_token() -> None:
    no_eos = SimpleNamespace(eos_token=None)
    with pytest.raises(ValueError, match="no eos_token"):
        TEMPLATES["generic"].resolve_suffix(no_eos)
    with pytest.raises(ValueError, match="no eos_token"):
        TEMPLATES["mistral"].resolve_suffix(no_eos)
    # a suffix without {eos} does not look at the tokenizer's EOS
    assert TEMPLATES["llama3"].resolve_suffix(no_eos) == "<|eot_id|>"
    assert TEMPLATES["mistral"].resolve_suffix(SimpleNamespace(eos_token="</s>")) == " [/INST]</s>"


def test_template_strings() -> None:
    assert TEMPLATES["llama3"].prefix == "<|start_header_id|>user<|end_header_id|>\n\n"
    assert TEMPLATES["llama3"].suffix == "<|eot_id|>"
    assert TEMPLATES["qwen2"].prefix == "<|im_start|>user\n"
    assert TEMPLATES["qwen2"].suffix == "<|im_end|><|endoftext|>"
    assert TEMPLATES["chatml"].prefix == "<|im_start|>user\n"
    assert TEMPLATES["mistral"].prefix == "[INST] "
    assert TEMPLATES["gemma"].prefix == "<start_of_turn>user\n" and TEMPLATES["gemma"].suffix == "<end_of_turn>"
    assert TEMPLATES["phi3"].prefix == "<|user|>\n" and TEMPLATES["phi3"].suffix == "<|end|>"
    assert set(TEMPLATES) == {"llama3", "qwen2", "chatml", "mistral", "gemma", "phi3", "generic"}


@pytest.mark.parametrize(
    ("tokens", "model_type", "expected"),
    [
        (["<start_of_turn>", "<end_of_turn>"], "gemma2", "gemma"),
        (["<start_of_turn>", "<end_of_turn>"], "gemma3_text", "gemma"),
        (["<|user|>", "<|assistant|>", "<|end|>", "<|endoftext|>"], "phi3", "phi3"),
        (["<|im_start|>", "<|im_end|>", "<|endoftext|>"], "qwen3", "qwen2"),
    ],
)
def test_gemma_phi3_and_qwen3_chat_formats_are_detected(tokens, model_type, expected, tiny_mistral_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_mistral_dir)  # no chat tokens of its own
    assert detect_template_name(model_type, tokenizer) == "generic"
    tokenizer.add_special_tokens({"additional_special_tokens": tokens})
    assert detect_template_name(model_type, tokenizer) == expected
    template = get_template(None, model_type, tokenizer)
    # the pooled token ends the suffix and is one token of the vocabulary
    suffix_ids = tokenizer(template.resolve_suffix(tokenizer), add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(suffix_ids[-1:]) == [{"gemma": "<end_of_turn>", "phi3": "<|end|>",
                                                                "qwen2": "<|endoftext|>"}[expected]]


def test_gemma_and_phi3_formats_need_their_tokens(tokenizers: dict) -> None:
    for name in ("gemma", "phi3"):
        with pytest.raises(ValueError, match="special tokens"):
            get_template(name, "llama", tokenizers["mistral"])
