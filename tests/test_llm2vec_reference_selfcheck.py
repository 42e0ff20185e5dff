"""Self-checks of the test helpers ``tests/llm2vec_reference.py`` and ``tests/llm2vec_checkpoints.py``.

They check the helpers themselves (adapter layout, bidirectional forward, embed mask, word cut),
not the library, on the tiny llama3, mistral and qwen2 checkpoints.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import AutoModel, AutoTokenizer

from tests.llm2vec_checkpoints import (
    DEFAULT_LLM2VEC_CONFIG,
    LLM2VEC_CONFIG_KEYS,
    LORA_TARGET_MODULES,
    llm2vec_chain_reference,
    write_mntp_repo,
    write_supervised_repo,
)
from tests.llm2vec_reference import (
    SEPARATOR,
    convert_to_str,
    forward_hidden,
    llm2vec_reference_embeddings,
    normalize_sentences,
    prepare_for_tokenization,
    tokenize_one,
)

FAMILIES = ("llama3", "mistral", "qwen2")
HUB_NAMES = {
    "llama3": "meta-llama/Meta-Llama-3-8B-Instruct",
    "mistral": "mistralai/Mistral-7B-Instruct-v0.2",
    "qwen2": "Qwen/Qwen2-7B-Instruct",
}


@pytest.fixture(scope="module", params=FAMILIES)
def chain(request, tiny_checkpoint_dir, tmp_path_factory):
    """``(family, base_dir, mntp_dir, supervised_dir)`` for each family, written once per module."""
    family = request.param
    base_dir = tiny_checkpoint_dir(family)
    root = tmp_path_factory.mktemp(f"llm2vec_repos_{family}")
    mntp_dir = write_mntp_repo(base_dir, root / "mntp", name_or_path=HUB_NAMES[family], seed=0)
    supervised_dir = write_supervised_repo(mntp_dir, root / "supervised", seed=1)
    return family, base_dir, mntp_dir, supervised_dir


def _base_model(base_dir: Path, **kwargs) -> torch.nn.Module:
    return AutoModel.from_pretrained(base_dir, dtype=torch.float32, **kwargs).eval()


def _ids(tokenizer, text: str) -> torch.Tensor:
    return tokenizer(text, return_tensors="pt")["input_ids"]


# --------------------------------------------------------------------------- repositories


def test_repository_files(chain):
    family, base_dir, mntp_dir, supervised_dir = chain
    for folder in (mntp_dir, supervised_dir):
        adapter_config = json.loads((folder / "adapter_config.json").read_text())
        assert adapter_config["base_model_name_or_path"] == str(base_dir)
        assert adapter_config["r"] == 4
        assert set(adapter_config["target_modules"]) == set(LORA_TARGET_MODULES)
        assert (folder / "adapter_model.safetensors").exists()
        assert (folder / "tokenizer.json").exists() and (folder / "tokenizer_config.json").exists()
    assert json.loads((mntp_dir / "config.json").read_text())["_name_or_path"] == HUB_NAMES[family]
    assert not (mntp_dir / "llm2vec_config.json").exists()
    assert not (supervised_dir / "config.json").exists()
    llm2vec_config = json.loads((supervised_dir / "llm2vec_config.json").read_text())
    assert list(llm2vec_config) == list(LLM2VEC_CONFIG_KEYS)
    assert llm2vec_config == DEFAULT_LLM2VEC_CONFIG
    tokenizer = AutoTokenizer.from_pretrained(supervised_dir)
    assert tokenizer.pad_token == tokenizer.eos_token  # (the padding side set after loading is not saved)


def test_repository_options(tiny_qwen_dir, tmp_path):
    mntp = write_mntp_repo(tiny_qwen_dir, tmp_path / "mntp", with_config_json=False)
    assert not (mntp / "config.json").exists()
    plain = write_mntp_repo(tiny_qwen_dir, tmp_path / "plain", name_or_path=None)
    assert "_name_or_path" not in json.loads((plain / "config.json").read_text())
    supervised = write_supervised_repo(tiny_qwen_dir, tmp_path / "sup", llm2vec_config=None)
    assert not (supervised / "llm2vec_config.json").exists()
    assert json.loads((supervised / "adapter_config.json").read_text())["base_model_name_or_path"] == str(tiny_qwen_dir)
    with pytest.raises(ValueError):
        write_supervised_repo(tiny_qwen_dir, tmp_path / "bad", llm2vec_config={"pooling_mode": "mean"})


def test_adapter_keys_load_onto_the_base_model(chain):
    """Every saved LoRA tensor lands on the base AutoModel (no missing, no unexpected LoRA key)."""
    _, base_dir, mntp_dir, supervised_dir = chain
    for folder, adapter in ((mntp_dir, "mntp"), (supervised_dir, "supervised")):
        saved = load_file(str(folder / "adapter_model.safetensors"))
        assert saved and all(key.startswith("base_model.model.layers.") for key in saved)
        model = PeftModel.from_pretrained(_base_model(base_dir), folder, adapter_name=adapter)
        loaded = {
            name.replace(f".{adapter}.", "."): parameter
            for name, parameter in model.named_parameters()
            if ".lora_A." in name or ".lora_B." in name
        }
        assert set(loaded) == set(saved)  # nothing missing, nothing unexpected
        n_layers = model.config.num_hidden_layers
        assert len(saved) == n_layers * len(LORA_TARGET_MODULES) * 2
        for key, tensor in saved.items():
            assert torch.equal(loaded[key].detach(), tensor), key
            if ".lora_B." in key:
                assert tensor.abs().min() > 0  # random non-zero B: the adapter is not a no-op


def test_adapters_change_the_hidden_states(chain):
    _, base_dir, mntp_dir, supervised_dir = chain
    model, tokenizer = llm2vec_chain_reference(base_dir, mntp_dir, supervised_dir)
    input_ids = _ids(tokenizer, "Retrieve the passage hello world")
    base_hidden = forward_hidden(_base_model(base_dir), input_ids)
    mntp_only = PeftModel.from_pretrained(_base_model(base_dir), mntp_dir, adapter_name="mntp").merge_and_unload()
    mntp_hidden = forward_hidden(mntp_only, input_ids)
    chain_hidden = forward_hidden(model, input_ids)
    assert (mntp_hidden - base_hidden).abs().max() > 1e-2
    assert (chain_hidden - mntp_hidden).abs().max() > 1e-2
    assert tokenizer.pad_token == tokenizer.eos_token and tokenizer.padding_side == "left"
    # merging the last adapter keeps the outputs of the unmerged PeftModel
    unmerged = PeftModel.from_pretrained(mntp_only, supervised_dir, adapter_name="supervised").eval()
    unmerged_hidden = forward_hidden(unmerged.base_model.model, input_ids)
    torch.testing.assert_close(unmerged_hidden, chain_hidden, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- forward


def test_bidirectional_differs_from_causal(chain):
    _, base_dir, _, _ = chain
    model = _base_model(base_dir)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    input_ids = _ids(tokenizer, "Retrieve the passage hello world")
    causal = forward_hidden(model, input_ids, bidirectional=False)
    bidirectional = forward_hidden(model, input_ids, bidirectional=True)
    assert (causal - bidirectional).abs().max() > 1e-3
    # causal: a prefix does not see what follows it; bidirectional: it does
    prefix = input_ids[:, :3]
    torch.testing.assert_close(forward_hidden(model, prefix, bidirectional=False), causal[:, :3])
    assert (forward_hidden(model, prefix, bidirectional=True) - bidirectional[:, :3]).abs().max() > 1e-3
    # the plain forward of the model is the causal one
    with torch.no_grad():
        torch.testing.assert_close(model(input_ids=input_ids).last_hidden_state, causal)
    # the 4D masks mean the same to eager and SDPA attention
    eager = _base_model(base_dir, attn_implementation="eager")
    torch.testing.assert_close(forward_hidden(eager, input_ids, bidirectional=True), bidirectional, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(forward_hidden(eager, input_ids, bidirectional=False), causal, rtol=1e-4, atol=1e-5)
    # a second way to the same bidirectional states: is_causal=False on the config and every module
    model.config.is_causal = False
    for module in model.modules():
        if hasattr(module, "is_causal"):
            module.is_causal = False
    with torch.no_grad():
        flagged = model(input_ids=input_ids, attention_mask=torch.ones_like(input_ids)).last_hidden_state
    torch.testing.assert_close(flagged, bidirectional, rtol=1e-4, atol=1e-5)
    # ... and the explicit causal mask stays causal on such a model
    torch.testing.assert_close(forward_hidden(model, input_ids, bidirectional=False), causal, rtol=1e-4, atol=1e-5)


# --------------------------------------------------------------------------- tokenization

#: ("Retrieve the passage", "hello world"): tokens of the span "hello world" tokenized alone, and
#: the length of the whole input "Retrieve the passage hello world" with special tokens
#:   llama3:  <|begin_of_text|> R et rieve Ġthe Ġpassage | h ell o Ġw or ld  (span alone: 6)
#:   qwen2:   R et rieve Ġthe Ġpassage | h ell o Ġw or ld                    (no BOS)
#:   mistral: <s> ▁ R et rieve ▁the ▁passage | ▁h el l o ▁w or ld
HAND_COUNTED = {"llama3": (6, 12), "qwen2": (6, 11), "mistral": (7, 14)}


@pytest.mark.parametrize("family", FAMILIES)
def test_embed_mask_span_is_hand_counted(family, tiny_checkpoint_dir):
    base_dir = tiny_checkpoint_dir(family)
    tokenizer = AutoTokenizer.from_pretrained(base_dir)
    config = AutoModel.from_pretrained(base_dir).config
    joined = convert_to_str(tokenizer, "  Retrieve the passage ", "hello world")
    assert joined == f"Retrieve the passage {SEPARATOR}hello world"
    prepared = prepare_for_tokenization(joined, "some/other-model", config, "mean")
    assert prepared == joined
    features = tokenize_one(tokenizer, prepared)
    n_span, n_total = HAND_COUNTED[family]
    assert features["input_ids"].shape == (1, n_total)
    assert features["attention_mask"].sum() == n_total
    assert features["embed_mask"][0].tolist() == [0] * (n_total - n_span) + [1] * n_span

    # eos_token pooling appends a suffix by config class: " </s>" for Llama (plain text for the
    # Llama-3 tokenizer: Ġ < / s >) and Mistral (▁ </s>), "<|endoftext|>" for Qwen2 (one token)
    eos = prepare_for_tokenization(joined, "some/other-model", config, "eos_token")
    extra = {"llama3": 5, "mistral": 2, "qwen2": 1}[family]
    assert tokenize_one(tokenizer, eos)["embed_mask"].sum() == n_span + extra


def test_name_dependent_wrappers(tiny_llama_dir, tiny_mistral_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    config = AutoModel.from_pretrained(tiny_llama_dir).config
    joined = convert_to_str(tokenizer, "Retrieve the passage", "hello world ")
    # Llama-3-Instruct: wrapped, stripped, and returned before any EOS suffix
    for pooling in ("mean", "eos_token"):
        wrapped = prepare_for_tokenization(joined, "meta-llama/Meta-Llama-3-8B-Instruct", config, pooling)
        assert wrapped == (
            f"<|start_header_id|>user<|end_header_id|>\n\nRetrieve the passage {SEPARATOR}hello world<|eot_id|>"
        )
        assert tokenize_one(tokenizer, wrapped)["embed_mask"].sum() == 6 + 1  # + <|eot_id|>
    # Meta-Llama-3-8B (base) by name: <|end_of_text|> instead of " </s>"
    assert prepare_for_tokenization(joined, "meta-llama/Meta-Llama-3-8B", config, "eos_token").endswith(
        "hello world<|end_of_text|>"
    )
    # no wrapper and mean pooling: the text is left untouched (no strip)
    assert prepare_for_tokenization(joined, "", config, "mean") == joined
    mistral_config = AutoModel.from_pretrained(tiny_mistral_dir).config
    wrapped = prepare_for_tokenization(joined, "mistralai/Mistral-7B-Instruct-v0.2", mistral_config, "eos_token")
    assert wrapped == f"[INST] Retrieve the passage {SEPARATOR}hello world [/INST] </s>"
    qwen = prepare_for_tokenization(joined, "Qwen/Qwen2-1.5B-Instruct", config, "mean")
    assert qwen == f"<|im_start|>user\nRetrieve the passage {SEPARATOR}hello world<|im_end|>"


def test_span_tokenized_alone_can_miss_a_token_of_the_text(tiny_llama_dir):
    """llm2vec counts the span tokenized alone: a leading space token of the text in context is not counted."""
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    features = tokenize_one(tokenizer, f"Retrieve the passage {SEPARATOR}Représentation naïve")
    tokens = tokenizer.convert_ids_to_tokens(features["input_ids"][0])
    n_span = int(features["embed_mask"].sum())
    assert tokens[:6] == ["<|begin_of_text|>", "R", "et", "rieve", "Ġthe", "Ġpassage"]
    assert len(tokens) - 6 == n_span + 1  # the text has one more token in context ...
    assert tokens[-n_span - 1] == "Ġ"  # ... a lone space token, which the embed mask leaves out


@pytest.mark.parametrize("family", FAMILIES)
def test_word_cut_shortens_to_doc_max_length(family, tiny_checkpoint_dir):
    tokenizer = AutoTokenizer.from_pretrained(tiny_checkpoint_dir(family))
    words = ("the ocean current near the coral reef carries small fish " * 30).split()
    text = "  ".join(words)  # double spaces: a cut text is re-joined with single spaces
    joined = convert_to_str(tokenizer, "Represent the text", text, max_length=128, doc_max_length=40)
    instruction, cut = joined.split(SEPARATOR)
    assert instruction == "Represent the text "
    assert len(tokenizer(cut, add_special_tokens=False)["input_ids"]) <= 40
    assert 0 < len(cut.split()) < len(words)
    assert cut == " ".join(words[: len(cut.split())])
    short = "hello  world "  # short texts are kept as they are
    assert convert_to_str(tokenizer, "", short, max_length=128, doc_max_length=40) == SEPARATOR + short


# --------------------------------------------------------------------------- embeddings


def test_sentence_forms():
    assert normalize_sentences(["a", "b"]) == [("", "a"), ("", "b")]
    assert normalize_sentences(["inst", "text", 7]) == [("inst", "text")]
    assert normalize_sentences([["inst", "text", 7], ["i2", "t2"]]) == [("inst", "text"), ("i2", "t2")]
    with pytest.raises(TypeError):
        normalize_sentences("a bare string")
    with pytest.raises(TypeError):  # llm2vec would read "b" as ("b"[0], "b"[1]) -> IndexError or chars
        normalize_sentences([["i", "a"], "bc"])


def test_reference_embeddings(chain):
    family, base_dir, mntp_dir, supervised_dir = chain
    model, tokenizer = llm2vec_chain_reference(base_dir, mntp_dir, supervised_dir)
    name = HUB_NAMES[family]
    sentences = [["Retrieve the passage", "hello world"], ["", "hello world", 3]]
    embeddings = llm2vec_reference_embeddings(model, tokenizer, name, sentences)
    assert embeddings.shape == (2, model.config.hidden_size) and embeddings.dtype == torch.float32
    assert torch.isfinite(embeddings).all()
    torch.testing.assert_close(embeddings[1], llm2vec_reference_embeddings(model, tokenizer, name, ["hello world"])[0])
    # bidirectional: the instruction changes the text's token states although it is not pooled
    assert (embeddings[0] - embeddings[1]).abs().max() > 1e-4

    # mean over the embed-mask positions of one bidirectional forward, written out by hand
    prepared = prepare_for_tokenization(convert_to_str(tokenizer, sentences[0][0], sentences[0][1]), name, model.config)
    features = tokenize_one(tokenizer, prepared)
    hidden = forward_hidden(model, features["input_ids"])[0]
    mask = features["embed_mask"][0].bool()
    torch.testing.assert_close(embeddings[0], hidden[mask].mean(dim=0))
    last = llm2vec_reference_embeddings(model, tokenizer, name, sentences[:1], pooling_mode="last_token")[0]
    torch.testing.assert_close(last, hidden[-1])
    # eos_token: the last position of the text with its EOS suffix (none after the Llama-3-Instruct wrapper)
    eos_prepared = prepare_for_tokenization(convert_to_str(tokenizer, *sentences[0]), name, model.config, "eos_token")
    eos_ids = tokenize_one(tokenizer, eos_prepared)["input_ids"]
    eos = llm2vec_reference_embeddings(model, tokenizer, name, sentences[:1], pooling_mode="eos_token")[0]
    torch.testing.assert_close(eos, forward_hidden(model, eos_ids)[0, -1])
    last_token_id = tokenizer.convert_ids_to_tokens(int(eos_ids[0, -1]))
    assert last_token_id == {"llama3": "<|eot_id|>", "mistral": "</s>", "qwen2": "<|endoftext|>"}[family]
    weighted = llm2vec_reference_embeddings(model, tokenizer, name, sentences[:1], pooling_mode="weighted_mean")[0]
    weights = torch.arange(1, int(mask.sum()) + 1, dtype=torch.float32)
    torch.testing.assert_close(weighted, (hidden[mask] * (weights / weights.sum())[:, None]).sum(dim=0))
    no_skip = llm2vec_reference_embeddings(model, tokenizer, name, sentences[:1], skip_instruction=False)[0]
    torch.testing.assert_close(no_skip, hidden.mean(dim=0))
    causal = llm2vec_reference_embeddings(model, tokenizer, name, sentences[:1], bidirectional=False)[0]
    assert (causal - embeddings[0]).abs().max() > 1e-4


def test_empty_span_means_all_positions(tiny_qwen_dir):
    """llm2vec slices ``[-0:]`` for an empty text: the mean runs over the whole input, instruction included."""
    model = _base_model(tiny_qwen_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen_dir)
    got = llm2vec_reference_embeddings(model, tokenizer, "", [["Retrieve the passage", ""]])[0]
    hidden = forward_hidden(model, _ids(tokenizer, "Retrieve the passage "))[0]
    torch.testing.assert_close(got, hidden.mean(dim=0))
    weighted = llm2vec_reference_embeddings(model, tokenizer, "", [["Retrieve the passage", ""]], pooling_mode="weighted_mean")
    assert torch.count_nonzero(weighted) == 0


def test_bos_pooling(tiny_mistral_dir, tiny_qwen_dir):
    model = _base_model(tiny_mistral_dir)
    tokenizer = AutoTokenizer.from_pretrained(tiny_mistral_dir)
    got = llm2vec_reference_embeddings(model, tokenizer, "", ["hello world"], pooling_mode="bos_token")[0]
    torch.testing.assert_close(got, forward_hidden(model, _ids(tokenizer, "hello world"))[0, 0])
    qwen = _base_model(tiny_qwen_dir)
    with pytest.raises(ValueError):  # Qwen2 adds no BOS token
        llm2vec_reference_embeddings(qwen, AutoTokenizer.from_pretrained(tiny_qwen_dir), "", ["hi"], pooling_mode="bos_token")
