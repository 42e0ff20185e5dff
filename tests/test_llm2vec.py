"""LLM2Vec end to end on tiny float32 checkpoints: encoding, loading, saving, PEFT, attention."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from llm2vec import LLM2Vec
from llm2vec.tokenization import SEPARATOR

HIDDEN = 32  # hidden size of every tiny model

# peft asks transformers for the deprecated ``is_gradient_checkpointing``; not this project's concern
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

TARGET = "Represent the question; " + SEPARATOR + "where do whales live in the ocean"
OTHERS = [
    "hi",
    "Retrieve a passage; " + SEPARATOR + " ".join(["the quick brown fox jumps over the lazy dog"] * 4),
    "short text",
    "Given a claim; " + SEPARATOR + "water is wet and the sky is blue on a sunny day in the city",
    SEPARATOR + "no instruction at all",
]
LONG_TEXT = " ".join(["the quick brown fox jumps over the lazy dog near the river bank"] * 12)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def encode(model: LLM2Vec, texts, **kwargs):
    return model.encode(texts, show_progress_bar=False, **kwargs)


def assert_close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-5) -> None:
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol)


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


# --------------------------------------------------------------------------- batch invariance
@pytest.mark.parametrize("family", ["llama3", "qwen2", "chatml", "mistral"])
@pytest.mark.parametrize("pooling_mode", ["eos_token", "mean"])
def test_embedding_does_not_depend_on_batch_mates(family: str, pooling_mode: str, tiny_checkpoints: dict) -> None:
    model = LLM2Vec.from_pretrained(tiny_checkpoints[family], pooling_mode=pooling_mode)
    assert next(model.parameters()).dtype == torch.float32
    alone = encode(model, [TARGET])[0]
    texts = OTHERS[:2] + [TARGET] + OTHERS[2:]
    # the target is padded on the left next to the longer texts, so the test exercises padding
    features = model.tokenize(texts)
    assert features["attention_mask"][2].sum() < features["attention_mask"].shape[1]
    for batch_size in (1, 2, 3, 6):
        batch = encode(model, texts, batch_size=batch_size)
        assert_close(batch[2], alone)
    # every text, not only the target, is invariant
    together = encode(model, texts, batch_size=6)
    one_by_one = torch.stack([encode(model, [text])[0] for text in texts])
    assert_close(together, one_by_one)
    # and the embeddings are not trivially equal to each other
    assert torch.cdist(one_by_one, one_by_one).fill_diagonal_(1.0).min() > 1e-3


def test_bidirectional_embedding_does_not_depend_on_batch_mates(tiny_llama_dir: Path) -> None:
    model = LLM2Vec.from_pretrained(tiny_llama_dir, enable_bidirectional=True, pooling_mode="mean")
    texts = OTHERS[:2] + [TARGET] + OTHERS[2:]
    together = encode(model, texts, batch_size=6)
    one_by_one = torch.stack([encode(model, [text])[0] for text in texts])
    assert_close(together, one_by_one)


def _captured_position_ids(model: LLM2Vec, features: dict[str, torch.Tensor]):
    captured = {}

    def hook(module, args, kwargs):
        captured.update(kwargs)

    handle = model.model.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model.hidden_states(features)
    finally:
        handle.remove()
    assert torch.equal(captured["attention_mask"], features["attention_mask"])
    return captured["position_ids"]


def test_position_ids_come_from_the_attention_mask(tiny_llama_dir: Path) -> None:
    model = LLM2Vec.from_pretrained(tiny_llama_dir)
    features = model.tokenize(["hi", TARGET])
    width = features["input_ids"].shape[1]
    n_short = int(features["attention_mask"][0].sum())
    positions = _captured_position_ids(model, features)
    assert positions[1].tolist() == list(range(width))
    # the padded row counts from 0 at its first real token
    assert positions[0, width - n_short :].tolist() == list(range(n_short))
    # the release let transformers number positions through the padding
    release = LLM2Vec.from_pretrained(tiny_llama_dir, release_compat=True)
    assert _captured_position_ids(release, release.tokenize(["hi", TARGET])) is None


# --------------------------------------------------------------------------- encode
@pytest.fixture(scope="module")
def llama(tiny_checkpoint_dir) -> LLM2Vec:
    """A shared float32 llama3 encoder; tests must not modify it."""
    return LLM2Vec.from_pretrained(tiny_checkpoint_dir("llama3"))


def test_encode_returns_float32_in_input_order(llama: LLM2Vec) -> None:
    texts = ["short text", OTHERS[1], "hi", TARGET, OTHERS[3]]  # deliberately not sorted by length
    out = encode(llama, texts, batch_size=2)
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float32
    assert out.shape == (len(texts), HIDDEN)
    single = torch.stack([encode(llama, [text])[0] for text in texts])
    assert_close(out, single)
    # the eos_token embedding is the last hidden state of each row, computed here by hand
    for index, text in enumerate(texts):
        with torch.no_grad():
            hidden = llama.hidden_states(llama.tokenize([text]))
        assert_close(out[index], hidden[0, -1])


def test_instruction_text_pairs_equal_string_form(llama: LLM2Vec) -> None:
    pairs = [["Represent the question;", "where do whales live"], [" Retrieve passages; ", "hello world"]]
    strings = [
        "Represent the question; " + SEPARATOR + "where do whales live",
        "Retrieve passages; " + SEPARATOR + "hello world",
    ]
    assert torch.equal(encode(llama, pairs), encode(llama, strings))
    # an empty instruction is no instruction
    assert_close(encode(llama, [["", "hello world"]]), encode(llama, ["hello world"]))
    # the instruction matters
    assert max_diff(encode(llama, pairs)[1], encode(llama, ["hello world"])[0]) > 1e-3
    with pytest.raises(ValueError, match="instruction, text"):
        encode(llama, [["a", "b", "c"]])


def test_encode_output_forms(llama: LLM2Vec) -> None:
    texts = ["hello world", TARGET]
    as_tensor = encode(llama, texts)
    as_numpy = encode(llama, texts, convert_to_numpy=True)
    assert isinstance(as_numpy, np.ndarray)
    assert as_numpy.dtype == np.float32
    assert as_numpy.shape == (2, HIDDEN)
    np.testing.assert_allclose(as_numpy, as_tensor.numpy(), rtol=0, atol=1e-6)
    vector = encode(llama, "hello world")
    assert isinstance(vector, torch.Tensor)
    assert vector.shape == (HIDDEN,)
    assert_close(vector, as_tensor[0])
    vector_np = encode(llama, "hello world", convert_to_numpy=True)
    assert isinstance(vector_np, np.ndarray) and vector_np.shape == (HIDDEN,)
    assert encode(llama, []).shape == (0, HIDDEN)


def test_encode_restores_training_mode(tiny_llama_dir: Path) -> None:
    model = LLM2Vec.from_pretrained(tiny_llama_dir)
    model.train()
    encode(model, ["hello"])
    assert model.training and model.model.training
    model.eval()
    encode(model, ["hello"])
    assert not model.training and not model.model.training


def test_doc_max_length_caps_the_text_in_encode(tiny_llama_dir: Path) -> None:
    model = LLM2Vec.from_pretrained(tiny_llama_dir, doc_max_length=5)
    text = "Instr; " + SEPARATOR + LONG_TEXT
    features = model.tokenize([text], text_max_length=5)
    with torch.no_grad():
        expected = model.hidden_states(features)[0, -1]
    assert_close(encode(model, [text])[0], expected)
    # a different ending beyond the first 5 text tokens does not matter any more
    assert_close(encode(model, [text + " and more words"])[0], expected)


# --------------------------------------------------------------------------- instruction and pooling
def test_instruction_changes_eos_embedding(llama: LLM2Vec) -> None:
    a = encode(llama, ["Represent the question; " + SEPARATOR + "hello world"])[0]
    b = encode(llama, ["Find a passage; " + SEPARATOR + "hello world"])[0]
    assert max_diff(a, b) > 1e-3


def test_mean_pooling_skips_instruction_tokens(tiny_llama_dir: Path) -> None:
    model = LLM2Vec.from_pretrained(tiny_llama_dir, pooling_mode="mean")
    assert model.skip_instruction is True
    texts = ["Represent the question; " + SEPARATOR + "hello world", "hi there"]
    features = model.tokenize(texts)
    with torch.no_grad():
        hidden = model.hidden_states(features)
    out = encode(model, texts)
    for row in range(2):
        embed = features["embed_mask"][row].bool()
        real = features["attention_mask"][row].bool()
        assert embed.sum() < real.sum()  # the template header (and instruction) is outside
        assert_close(out[row], hidden[row, embed].mean(dim=0))
        assert max_diff(out[row], hidden[row, real].mean(dim=0)) > 1e-3
    # the instruction row: only " hello world<|eot_id|>" is averaged
    assert model.tokenizer.decode(features["input_ids"][0, features["embed_mask"][0].bool()]) == (
        " hello world<|eot_id|>"
    )
    # skip_instruction=False averages every real token
    full = LLM2Vec.from_pretrained(tiny_llama_dir, pooling_mode="mean", skip_instruction=False)
    assert_close(encode(full, texts[:1])[0], hidden[0, features["attention_mask"][0].bool()].mean(dim=0))


def test_unknown_pooling_mode_is_rejected(tiny_llama_dir: Path) -> None:
    with pytest.raises(ValueError, match="pooling_mode must be one of .*got 'cls'"):
        LLM2Vec.from_pretrained(tiny_llama_dir, pooling_mode="cls")


def test_prompt_template_argument(tiny_qwen_dir: Path) -> None:
    default = LLM2Vec.from_pretrained(tiny_qwen_dir)
    chatml = LLM2Vec.from_pretrained(tiny_qwen_dir, prompt_template="chatml")
    assert default.template.name == "qwen2"
    assert chatml.template.name == "chatml"
    tokenizer = chatml.tokenizer
    assert chatml.tokenize(["hello"])["input_ids"][0, -1] == tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert default.tokenize(["hello"])["input_ids"][0, -1] == tokenizer.convert_tokens_to_ids("<|endoftext|>")
    with pytest.raises(ValueError, match="prompt_template must be 'auto' or one of .*got 'nope'"):
        LLM2Vec.from_pretrained(tiny_qwen_dir, prompt_template="nope")


# --------------------------------------------------------------------------- llm2vec_config.json
@pytest.fixture
def llama_copy(tiny_llama_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny llama3 checkpoint that a test may write into."""
    return Path(shutil.copytree(tiny_llama_dir, tmp_path / "llama3"))


def test_from_pretrained_reads_llm2vec_config(llama_copy: Path) -> None:
    (llama_copy / "llm2vec_config.json").write_text(json.dumps({"pooling_mode": "mean", "max_length": 64}))
    model = LLM2Vec.from_pretrained(llama_copy)
    assert model.pooling_mode == "mean"
    assert model.max_length == 64
    assert model.doc_max_length == 400  # not in the file: default
    text = "Instr; " + SEPARATOR + LONG_TEXT
    features = model.tokenize([text])
    assert features["input_ids"].shape == (1, 64)
    with torch.no_grad():
        hidden = model.hidden_states(features)
    assert_close(encode(model, [text])[0], hidden[0, features["embed_mask"][0].bool()].mean(dim=0))


def test_explicit_arguments_win_over_llm2vec_config(llama_copy: Path) -> None:
    (llama_copy / "llm2vec_config.json").write_text(
        json.dumps({"pooling_mode": "mean", "max_length": 64, "skip_instruction": False, "enable_bidirectional": True})
    )
    model = LLM2Vec.from_pretrained(
        llama_copy, pooling_mode="eos_token", max_length=40, skip_instruction=True, enable_bidirectional=False
    )
    assert model.pooling_mode == "eos_token"
    assert model.max_length == 40
    assert model.skip_instruction is True
    assert model.llm2vec_config.enable_bidirectional is False
    text = "Instr; " + SEPARATOR + LONG_TEXT
    features = model.tokenize([text])
    assert features["input_ids"].shape == (1, 40)
    with torch.no_grad():
        hidden = model.hidden_states(features)
    assert_close(encode(model, [text])[0], hidden[0, -1])
    # the file's enable_bidirectional=True was overridden: attention is still causal
    assert all(m.is_causal for m in model.model.modules() if isinstance(getattr(m, "is_causal", None), bool))


def test_unknown_llm2vec_config_key_names_the_file(llama_copy: Path) -> None:
    path = llama_copy / "llm2vec_config.json"
    path.write_text(json.dumps({"pooling_mode": "mean", "poolingmode": "eos_token"}))
    with pytest.raises(ValueError, match=re.escape(str(path))) as info:
        LLM2Vec.from_pretrained(llama_copy)
    assert "poolingmode" in str(info.value)


def test_invalid_llm2vec_config_json_names_the_file(llama_copy: Path) -> None:
    path = llama_copy / "llm2vec_config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        LLM2Vec.from_pretrained(llama_copy)


# --------------------------------------------------------------------------- save / reload
def test_save_and_reload_gives_identical_embeddings(tiny_llama_dir: Path, tmp_path: Path) -> None:
    model = LLM2Vec.from_pretrained(tiny_llama_dir, pooling_mode="weighted_mean", max_length=48)
    texts = [TARGET, *OTHERS]
    before = encode(model, texts)
    out = model.save(tmp_path / "saved")
    assert out == tmp_path / "saved"
    files = {p.name for p in out.iterdir()}
    assert {"llm2vec_config.json", "tokenizer.json", "tokenizer_config.json", "config.json"} <= files
    assert any(name.endswith(".safetensors") for name in files)
    stored = json.loads((out / "llm2vec_config.json").read_text())
    assert stored["pooling_mode"] == "weighted_mean"
    assert stored["max_length"] == 48
    reloaded = LLM2Vec.from_pretrained(out)
    assert reloaded.pooling_mode == "weighted_mean"
    assert reloaded.max_length == 48
    assert torch.equal(encode(reloaded, texts), before)


# --------------------------------------------------------------------------- PEFT
TEXTS_FOR_PEFT = [TARGET, "hello world", OTHERS[1]]


def test_peft_adapter_save_and_reload(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, PeftModel, get_peft_model

    model = LLM2Vec.from_pretrained(tiny_llama_dir, pooling_mode="mean")
    base = encode(model, TEXTS_FOR_PEFT)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
        model.model = get_peft_model(model.model, lora)
    with_adapter = encode(model, TEXTS_FOR_PEFT)
    assert max_diff(with_adapter, base) > 1e-2  # the random LoRA changes the embeddings

    adapter_dir = model.save(tmp_path / "adapter")
    files = {p.name for p in adapter_dir.iterdir()}
    assert {"adapter_config.json", "adapter_model.safetensors", "llm2vec_config.json", "tokenizer.json"} <= files
    assert "model.safetensors" not in files  # only the adapter is written

    # the adapter folder's llm2vec_config.json (pooling "mean") is read: the base has none
    reloaded = LLM2Vec.from_pretrained(tiny_llama_dir, peft_model_name_or_path=adapter_dir)
    assert isinstance(reloaded.model, PeftModel)
    assert reloaded.pooling_mode == "mean"
    assert_close(encode(reloaded, TEXTS_FOR_PEFT), with_adapter)

    merged = LLM2Vec.from_pretrained(tiny_llama_dir, peft_model_name_or_path=adapter_dir, merge_peft=True)
    assert not isinstance(merged.model, PeftModel)
    assert not any("lora" in name for name, _ in merged.model.named_parameters())
    assert_close(encode(merged, TEXTS_FOR_PEFT), with_adapter)

    # merge before saving: a full model that loads without any adapter
    full_dir = model.save(tmp_path / "merged", merge_before_save=True)
    files = {p.name for p in full_dir.iterdir()}
    assert "adapter_config.json" not in files
    assert "config.json" in files and "llm2vec_config.json" in files
    assert not isinstance(model.model, PeftModel)  # merged in place
    full = LLM2Vec.from_pretrained(full_dir)
    assert not isinstance(full.model, PeftModel)
    assert full.pooling_mode == "mean"
    assert_close(encode(full, TEXTS_FOR_PEFT), with_adapter)
    assert_close(encode(model, TEXTS_FOR_PEFT), with_adapter)


def _random_lora(model: LLM2Vec, seed: int, targets: list[str]) -> None:
    from peft import LoraConfig, get_peft_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model.model = get_peft_model(model.model, LoraConfig(r=4, target_modules=targets, init_lora_weights=False))


def test_chained_adapters_are_merged_in_order(tiny_llama_dir: Path, tmp_path: Path) -> None:
    first = LLM2Vec.from_pretrained(tiny_llama_dir, pooling_mode="mean")
    _random_lora(first, 1, ["q_proj", "v_proj"])
    first_dir = first.save(tmp_path / "first")
    after_first = encode(first, TEXTS_FOR_PEFT)
    second = LLM2Vec.from_pretrained(
        tiny_llama_dir, peft_model_name_or_path=first_dir, merge_peft=True, pooling_mode="weighted_mean"
    )
    _random_lora(second, 2, ["k_proj", "o_proj"])
    second_dir = second.save(tmp_path / "second")
    after_second = encode(second, TEXTS_FOR_PEFT)
    assert max_diff(after_second, after_first) > 1e-2

    chained = LLM2Vec.from_pretrained(tiny_llama_dir, peft_model_name_or_path=[first_dir, second_dir])
    assert chained.pooling_mode == "weighted_mean"  # the last adapter's llm2vec_config.json wins
    assert_close(encode(chained, TEXTS_FOR_PEFT), after_second)


# --------------------------------------------------------------------------- attention
def _first_token_change(model: LLM2Vec) -> tuple[float, float, float]:
    """How much changing the last token, or a pad token, moves row 0's first real hidden state."""
    texts = ["hello world", "Represent the question; " + SEPARATOR + "a longer text that forces padding"]
    features = model.tokenize(texts)
    first = int(features["attention_mask"][0].argmax())
    assert first > 0  # row 0 is left-padded
    other_id = model.tokenizer.convert_tokens_to_ids("<|begin_of_text|>")
    changed_last = {k: v.clone() for k, v in features.items()}
    changed_last["input_ids"][0, -1] = other_id
    changed_pad = {k: v.clone() for k, v in features.items()}
    changed_pad["input_ids"][0, 0] = other_id
    with torch.no_grad():
        reference = model.hidden_states(features)
        after_last = model.hidden_states(changed_last)
        after_pad = model.hidden_states(changed_pad)
    return (
        max_diff(after_last[0, first], reference[0, first]),
        max_diff(after_pad[0, first:], reference[0, first:]),
        max_diff(after_last[1], reference[1]),
    )


def test_bidirectional_attention_lets_first_token_see_the_last(tiny_llama_dir: Path) -> None:
    causal_last, causal_pad, causal_other = _first_token_change(LLM2Vec.from_pretrained(tiny_llama_dir))
    assert causal_last < 1e-6
    bidirectional = LLM2Vec.from_pretrained(tiny_llama_dir, enable_bidirectional=True)
    assert bidirectional.llm2vec_config.enable_bidirectional is True
    bi_last, bi_pad, bi_other = _first_token_change(bidirectional)
    assert bi_last > 1e-3
    # padding stays invisible and rows stay independent in both modes
    assert causal_pad < 1e-6 and bi_pad < 1e-6
    assert causal_other < 1e-6 and bi_other < 1e-6


def test_saved_bidirectional_model_reloads_bidirectional(tiny_llama_dir: Path, tmp_path: Path) -> None:
    out = LLM2Vec.from_pretrained(tiny_llama_dir, enable_bidirectional=True).save(tmp_path / "bidirectional")
    assert json.loads((out / "llm2vec_config.json").read_text())["enable_bidirectional"] is True
    reloaded = LLM2Vec.from_pretrained(out)
    assert reloaded.llm2vec_config.enable_bidirectional is True
    assert _first_token_change(reloaded)[0] > 1e-3


def test_saved_bidirectional_model_reloads_causal_when_asked(tiny_llama_dir: Path, tmp_path: Path) -> None:
    out = LLM2Vec.from_pretrained(tiny_llama_dir, enable_bidirectional=True).save(tmp_path / "bidirectional")
    causal = LLM2Vec.from_pretrained(out, enable_bidirectional=False)
    assert causal.llm2vec_config.enable_bidirectional is False
    # the same weights as the causal original, so the same causal embeddings are expected
    assert _first_token_change(causal)[0] < 1e-6
    original = LLM2Vec.from_pretrained(tiny_llama_dir)
    assert_close(encode(causal, [TARGET, *OTHERS]), encode(original, [TARGET, *OTHERS]))


# --------------------------------------------------------------------------- dtypes
@pytest.mark.parametrize("pooling_mode", ["eos_token", "mean"])
def test_bfloat16_model_returns_float32_close_to_float32(
    pooling_mode: str, tiny_llama_dir: Path, llama: LLM2Vec
) -> None:
    model = LLM2Vec.from_pretrained(tiny_llama_dir, dtype=torch.bfloat16, pooling_mode=pooling_mode)
    assert next(model.parameters()).dtype == torch.bfloat16
    texts = [TARGET, *OTHERS]
    out = encode(model, texts)
    assert out.dtype == torch.float32
    assert out.shape == (len(texts), HIDDEN)
    reference = encode(LLM2Vec.from_pretrained(tiny_llama_dir, pooling_mode=pooling_mode), texts)
    cosine = F.cosine_similarity(out, reference, dim=1)
    assert bool((cosine > 0.99).all()), cosine
    assert not torch.equal(out, reference)  # really computed in bfloat16


def test_torch_dtype_alias(tiny_llama_dir: Path, llama: LLM2Vec) -> None:
    model = LLM2Vec.from_pretrained(tiny_llama_dir, torch_dtype="float32")
    assert next(model.parameters()).dtype == torch.float32
    assert_close(encode(model, [TARGET]), encode(llama, [TARGET]))
    assert next(LLM2Vec.from_pretrained(tiny_llama_dir, torch_dtype="bfloat16").parameters()).dtype == torch.bfloat16
    assert next(LLM2Vec.from_pretrained(tiny_llama_dir, torch_dtype=torch.bfloat16).parameters()).dtype == (
        torch.bfloat16
    )
    assert next(LLM2Vec.from_pretrained(tiny_llama_dir, dtype="bfloat16").parameters()).dtype == torch.bfloat16
    with pytest.raises(ValueError, match="either dtype or torch_dtype"):
        LLM2Vec.from_pretrained(tiny_llama_dir, dtype=torch.float32, torch_dtype=torch.float32)
