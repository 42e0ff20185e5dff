"""Tests of the tiny offline models, tokenizers and data in ``llm2vec.testing``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from llm2vec.testing import tiny_data
from llm2vec.testing.tiny_data import TOPICS, write_tiny_pairs_dir, write_tiny_pairs_jsonl
from llm2vec.testing.tiny_models import (
    FAMILIES,
    FAMILY_SPECS,
    build_tiny_model,
    build_tiny_tokenizer,
    save_tiny_checkpoint,
)
from tests.helpers import load_script

REPO_ROOT = Path(__file__).resolve().parents[2]

CHAT_TEXTS = {
    "llama3": "<|start_header_id|>user<|end_header_id|>\n\nhello world<|eot_id|>",
    "qwen2": "<|im_start|>user\nhello world<|im_end|><|endoftext|>",
    "mistral": "hello world</s><s> again<unk>",
    "chatml": "<|im_start|>user\nhello world<|im_end|><|endoftext|>",
}
SPECIALS_IN_TEXT = {
    "llama3": ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    "qwen2": ["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
    "mistral": ["</s>", "<s>", "<unk>"],
    "chatml": ["<|im_start|>", "<|im_end|>", "<|endoftext|>"],
}
EXPECTED = {
    # family: (bos_token, eos_token, pad_token, unk_token, bos prepended, model class)
    "llama3": ("<|begin_of_text|>", "<|eot_id|>", None, None, True, "LlamaForCausalLM"),
    "qwen2": (None, "<|im_end|>", "<|endoftext|>", None, False, "Qwen2ForCausalLM"),
    "mistral": ("<s>", "</s>", None, "<unk>", True, "MistralForCausalLM"),
    "chatml": ("<|im_start|>", "<|im_end|>", "<|im_end|>", "<|endoftext|>", False, "LlamaForCausalLM"),
}
SAMPLE_TEXTS = [
    "Hello world, what is the ocean current near the coral reef?",
    "Représentation  d'un texte: naïve café, 日本語のテキスト and emoji 😀🚀!",
    "  leading spaces, tabs\tand\nnew lines\n\n; numbers 1234567 and 3.14159",
    "Instruction: retrieve the passage; !@#$%^&*()the text itself",
]


@pytest.fixture(scope="module", params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param


# --------------------------------------------------------------------------- tokenizers


def test_special_tokens_and_roles(family: str) -> None:
    tok = build_tiny_tokenizer(family)
    bos, eos, pad, unk, _, _ = EXPECTED[family]
    assert (tok.bos_token, tok.eos_token, tok.pad_token, tok.unk_token) == (bos, eos, pad, unk)
    assert tok.padding_side == "right"  # library code sets left padding itself
    spec = FAMILY_SPECS[family]
    specials = [*spec.leading_special, *spec.trailing_special]
    ids = tok.convert_tokens_to_ids(specials)
    assert len(set(ids)) == len(specials)
    assert all(0 <= i < len(tok) for i in ids)
    assert set(specials) <= set(tok.all_special_tokens)
    # the low-id layout of the imitated checkpoints
    if family == "mistral":
        assert ids == [0, 1, 2] and tok.convert_ids_to_tokens(3) == "<0x00>"
    if family == "chatml":
        assert ids == [0, 1, 2]
    if family in ("llama3", "qwen2"):
        assert min(ids) >= len(tok) - len(specials)  # after the regular vocabulary
    assert 400 <= len(tok) <= 600


def test_special_tokens_are_single_ids_and_bos(family: str) -> None:
    tok = build_tiny_tokenizer(family)
    text = CHAT_TEXTS[family]
    ids = tok(text)["input_ids"]
    prepends_bos = EXPECTED[family][4]
    if prepends_bos:
        assert ids[0] == tok.bos_token_id
        assert ids.count(tok.bos_token_id) == 1 + text.count(tok.bos_token)
        assert tok(text, add_special_tokens=False)["input_ids"] == ids[1:]
    else:
        assert tok(text, add_special_tokens=False)["input_ids"] == ids
        assert ids[0] == tok.convert_tokens_to_ids(SPECIALS_IN_TEXT[family][0])
    tokens = tok.convert_ids_to_tokens(ids)
    for special in SPECIALS_IN_TEXT[family]:
        assert special in tokens, special
    assert tokens.count(tok.eos_token) == text.count(tok.eos_token)
    # the special tokens' ids and the text around them survive decoding
    assert tok.decode(ids, skip_special_tokens=False).endswith(
        SPECIALS_IN_TEXT[family][-1]
    )
    assert "hello world" in tok.decode(ids, skip_special_tokens=True)
    # splitting a special token's characters must not produce it
    assert tok.convert_tokens_to_ids(SPECIALS_IN_TEXT[family][0]) not in tok(
        SPECIALS_IN_TEXT[family][0][:-1]
    )["input_ids"]


def test_no_eos_appended_and_pairs(family: str) -> None:
    tok = build_tiny_tokenizer(family)
    ids = tok("hello world")["input_ids"]
    assert ids[-1] != tok.eos_token_id
    single = tok("hello", add_special_tokens=False)["input_ids"]
    assert tok("hello")["input_ids"] == ([tok.bos_token_id] if EXPECTED[family][4] else []) + single


@pytest.mark.parametrize("text", SAMPLE_TEXTS)
def test_round_trip_any_text(family: str, text: str) -> None:
    tok = build_tiny_tokenizer(family)
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if tok.unk_token_id is not None:  # byte fallback: nothing is unknown
        assert tok.unk_token_id not in ids
    decoded = tok.decode(ids)
    if family == "mistral" and text.startswith(" "):
        # like the real SentencePiece-style tokenizer: the decoder strips one leading space
        assert decoded == text[1:]
    else:
        assert decoded == text


def test_offsets_mapping(family: str) -> None:
    tok = build_tiny_tokenizer(family)
    text = "Represent the query; the ocean current near the coral reef"
    enc = tok(text, return_offsets_mapping=True)
    offsets = enc["offset_mapping"]
    ids = enc["input_ids"]
    assert len(offsets) == len(ids)
    content = [(s, e) for (s, e), i in zip(offsets, ids) if i not in tok.all_special_ids]
    # in order, and together covering every character of the text
    assert content[0][0] == 0 and content[-1][1] == len(text)
    assert all(a[0] <= b[0] and a[1] <= b[1] for a, b in zip(content, content[1:]))
    covered = {i for s, e in content for i in range(s, e)}
    assert covered == set(range(len(text)))
    if family != "mistral":  # byte-level: tokens tile the text exactly
        assert "".join(text[s:e] for s, e in content) == text
    # the word "query" is one token spanning exactly its characters (with its leading space)
    query_token = tok.convert_tokens_to_ids(("▁" if family == "mistral" else "Ġ") + "query")
    position = ids.index(query_token)
    assert text[slice(*offsets[position])] == " query"
    if EXPECTED[family][4]:
        assert offsets[0] == (0, 0)
    # a special token inside the text spans exactly its characters
    chat = CHAT_TEXTS[family]
    enc = tok(chat, return_offsets_mapping=True, add_special_tokens=False)
    for special in SPECIALS_IN_TEXT[family]:
        position = enc["input_ids"].index(tok.convert_tokens_to_ids(special))
        start, end = enc["offset_mapping"][position]
        assert chat[start:end] == special


def test_tokenizer_is_deterministic(family: str) -> None:
    a, b = build_tiny_tokenizer(family), build_tiny_tokenizer(family)
    assert a is not b
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()
    assert a.get_vocab() == b.get_vocab()


def test_chat_templates() -> None:
    llama = build_tiny_tokenizer("llama3")
    messages = [{"role": "user", "content": "hello"}]
    rendered = llama.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert rendered == (
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhello<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n"
    )
    for family in ("qwen2", "chatml"):
        rendered = build_tiny_tokenizer(family).apply_chat_template(messages, tokenize=False)
        assert rendered.startswith("<|im_start|>system\n")
        assert rendered.endswith("<|im_start|>user\nhello<|im_end|>\n")
    assert build_tiny_tokenizer("mistral").chat_template is None


def test_unknown_family() -> None:
    with pytest.raises(ValueError, match="unknown tiny model family"):
        build_tiny_tokenizer("gpt2")
    with pytest.raises(ValueError, match="unknown tiny model family"):
        build_tiny_model("gpt2")


# --------------------------------------------------------------------------- models


def test_model_shape_and_config(family: str) -> None:
    tok = build_tiny_tokenizer(family)
    model = build_tiny_model(family, tok)
    assert type(model).__name__ == EXPECTED[family][5]
    cfg = model.config
    assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (32, 2, 4)
    assert (cfg.num_key_value_heads, cfg.intermediate_size, cfg.max_position_embeddings) == (2, 64, 1024)
    assert cfg.vocab_size == len(tok) == model.get_input_embeddings().weight.shape[0]
    assert not cfg.tie_word_embeddings
    assert model.get_output_embeddings().weight.data_ptr() != model.get_input_embeddings().weight.data_ptr()
    assert cfg._attn_implementation == "sdpa"
    assert not model.training
    assert cfg.eos_token_id == tok.eos_token_id
    assert cfg.pad_token_id == tok.pad_token_id
    if tok.bos_token is not None:
        assert cfg.bos_token_id == tok.bos_token_id
    else:  # Qwen2.5's config names <|endoftext|> as bos although none is added
        assert cfg.bos_token_id == tok.convert_tokens_to_ids("<|endoftext|>")


def test_model_weights_follow_seed() -> None:
    tok = build_tiny_tokenizer("llama3")
    state = torch.get_rng_state()
    a = build_tiny_model("llama3", tok, seed=0).state_dict()
    assert torch.equal(torch.get_rng_state(), state)  # global RNG untouched
    b = build_tiny_model("llama3", tok, seed=0).state_dict()
    c = build_tiny_model("llama3", tok, seed=1).state_dict()
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["model.embed_tokens.weight"], c["model.embed_tokens.weight"])
    assert a["model.embed_tokens.weight"].std() > 0


def test_model_overrides_and_dtype() -> None:
    tok = build_tiny_tokenizer("qwen2")
    model = build_tiny_model("qwen2", tok, dtype=torch.bfloat16, num_hidden_layers=3, attn_implementation="eager")
    assert model.config.num_hidden_layers == 3 and len(model.model.layers) == 3
    assert model.dtype == torch.bfloat16
    assert model.config._attn_implementation == "eager"
    # eager and sdpa compute the same function
    eager = build_tiny_model("mistral", attn_implementation="eager")
    sdpa = build_tiny_model("mistral")
    mistral_tok = build_tiny_tokenizer("mistral")
    mistral_tok.pad_token = mistral_tok.eos_token
    batch = mistral_tok(["hello world", "a longer text about the ocean reef"], padding="longest", return_tensors="pt")
    with torch.no_grad():
        a = eager(**batch).logits
        b = sdpa(**batch).logits
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_saved_checkpoint_reloads_identically(family: str, tiny_checkpoint_dir) -> None:
    path = tiny_checkpoint_dir(family)
    assert (path / "config.json").is_file() and (path / "tokenizer.json").is_file()
    tok = build_tiny_tokenizer(family)
    model = build_tiny_model(family, tok, seed=0)
    loaded_tok = AutoTokenizer.from_pretrained(path)
    loaded = AutoModelForCausalLM.from_pretrained(path)
    loaded.eval()
    assert type(loaded) is type(model)
    assert loaded.dtype == torch.float32
    assert loaded.config._attn_implementation == "sdpa"
    assert (loaded_tok.bos_token, loaded_tok.eos_token, loaded_tok.pad_token, loaded_tok.unk_token) == (
        tok.bos_token,
        tok.eos_token,
        tok.pad_token,
        tok.unk_token,
    )
    assert len(loaded_tok) == len(tok)
    assert loaded_tok.chat_template == tok.chat_template
    for text in [*SAMPLE_TEXTS, CHAT_TEXTS[family]]:
        a = tok(text, return_offsets_mapping=True)
        b = loaded_tok(text, return_offsets_mapping=True)
        assert a["input_ids"] == b["input_ids"], text
        assert a["offset_mapping"] == b["offset_mapping"], text
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token  # what the library does for Llama-3 / Mistral
    batch = tok(SAMPLE_TEXTS[:2], return_tensors="pt", padding=True)
    assert batch["attention_mask"].min() == 0  # the batch really is padded
    with torch.no_grad():
        expected = model(**batch).logits
        actual = loaded(**batch).logits
    assert expected.shape[-1] == len(tok)
    assert torch.equal(expected, actual)


def test_conftest_fixtures(tiny_checkpoints, tiny_llama_dir, tiny_qwen_dir, tiny_mistral_dir, tiny_chatml_dir) -> None:
    assert set(tiny_checkpoints) == set(FAMILIES)
    assert tiny_checkpoints["llama3"] == tiny_llama_dir
    assert tiny_checkpoints["qwen2"] == tiny_qwen_dir
    assert tiny_checkpoints["mistral"] == tiny_mistral_dir
    assert tiny_checkpoints["chatml"] == tiny_chatml_dir
    for family, path in tiny_checkpoints.items():
        config = json.loads((path / "config.json").read_text())
        assert config["architectures"] == [EXPECTED[family][5]]


def test_save_tiny_checkpoint_is_fast_and_seeded(tmp_path: Path) -> None:
    import time

    start = time.perf_counter()
    path = save_tiny_checkpoint("chatml", tmp_path / "chatml", seed=3, num_hidden_layers=1)
    assert time.perf_counter() - start < 2.0
    assert path == tmp_path / "chatml"
    loaded = AutoModelForCausalLM.from_pretrained(path)
    assert loaded.config.num_hidden_layers == 1
    fresh = build_tiny_model("chatml", seed=3, num_hidden_layers=1)
    for (name, a), (_, b) in zip(loaded.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), name


# --------------------------------------------------------------------------- data


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def test_topic_vocabularies_are_disjoint() -> None:
    assert len(TOPICS) >= 25
    all_words = [w for words in TOPICS.values() for w in words]
    assert len(all_words) == len(set(all_words))
    assert not set(all_words) & set(tiny_data.FILLER_WORDS)
    template_words = {w for t in tiny_data.QUESTION_TEMPLATES for w in _words(t)}
    assert not set(all_words) & template_words


def test_pairs_dir_counts_fields_and_determinism(tmp_path: Path) -> None:
    a = write_tiny_pairs_dir(tmp_path / "a", n_per_file=20, seed=5)
    b = write_tiny_pairs_dir(tmp_path / "b", n_per_file=20, seed=5)
    c = write_tiny_pairs_dir(tmp_path / "c", n_per_file=20, seed=6)
    names = sorted(p.name for p in a.iterdir())
    assert names == ["allnli.jsonl", "nq.jsonl", "quora_duplicates.jsonl", "squad.jsonl"]
    for name in names:
        rows = _read_jsonl(a / name)
        assert len(rows) == 20
        assert all(list(row) == ["query", "positive", "negative"] for row in rows)
        assert (a / name).read_bytes() == (b / name).read_bytes()
        assert (a / name).read_bytes() != (c / name).read_bytes()
    # files differ from each other even with one seed
    assert (a / "nq.jsonl").read_bytes() != (a / "squad.jsonl").read_bytes()

    d = write_tiny_pairs_dir(tmp_path / "d", files=["fever"], n_per_file=3, with_negatives=False)
    assert [p.name for p in d.iterdir()] == ["fever.jsonl"]
    assert all(set(row) == {"query", "positive"} for row in _read_jsonl(d / "fever.jsonl"))


def test_pairs_are_learnable(tiny_data_dir: Path) -> None:
    topic_of = {w: topic for topic, words in TOPICS.items() for w in words}
    rows = _read_jsonl(tiny_data_dir / "nq.jsonl")
    assert len(rows) == 64
    for row in rows:
        query, positive, negative = (_words(row[k]) for k in ("query", "positive", "negative"))
        assert 4 <= len(query) <= 10, row["query"]
        assert 15 <= len(positive) <= 40, row["positive"]
        assert 15 <= len(negative) <= 40, row["negative"]
        query_topic_words = [w for w in query if w in topic_of]
        assert 2 <= len(query_topic_words) <= 3
        assert len({topic_of[w] for w in query_topic_words}) == 1
        assert set(query_topic_words) <= set(positive)
        negative_topics = {topic_of[w] for w in negative if w in topic_of}
        assert len(negative_topics) == 1 and topic_of[query_topic_words[0]] not in negative_topics

    # a bag-of-words retriever ranks each query's positive first far above chance (1/64)
    def overlap(q: list[str], d: list[str]) -> int:
        return len(set(q) & set(d) & set(topic_of))

    hits = 0
    for i, row in enumerate(rows):
        scores = [overlap(_words(row["query"]), _words(other["positive"])) for other in rows]
        hits += scores[i] == max(scores)
    assert hits / len(rows) > 0.8


def test_pairs_jsonl(tmp_path: Path) -> None:
    plain = write_tiny_pairs_jsonl(tmp_path / "plain.jsonl", n=10, seed=1, with_instruction=False)
    rows = _read_jsonl(plain)
    assert len(rows) == 10 and all(set(r) == {"query", "positive", "negative"} for r in rows)
    inst = write_tiny_pairs_jsonl(tmp_path / "sub" / "inst.jsonl", n=10, seed=1, with_instruction=True)
    rows_inst = _read_jsonl(inst)
    assert all(r["instruction"] in tiny_data.DEFAULT_INSTRUCTIONS for r in rows_inst)
    assert [{k: r[k] for k in ("query", "positive", "negative")} for r in rows_inst] == rows
    again = write_tiny_pairs_jsonl(tmp_path / "again.jsonl", n=10, seed=1, with_instruction=True)
    assert again.read_bytes() == inst.read_bytes()


def test_tiny_texts_tokenize_compactly(tiny_data_dir: Path) -> None:
    """Data words are in the tokenizers' training corpus, so passages stay short in tokens."""
    texts = [row[key] for row in _read_jsonl(tiny_data_dir / "squad.jsonl") for key in ("query", "positive")]
    n_chars = sum(len(text) for text in texts)
    for family in FAMILIES:
        tok = build_tiny_tokenizer(family)
        n_tokens = sum(len(tok(text, add_special_tokens=False)["input_ids"]) for text in texts)
        assert n_chars / n_tokens > 2.0, family  # bytes only would give about 1
        assert max(len(tok(text)["input_ids"]) for text in texts) < 200


# --------------------------------------------------------------------------- script


def _load_script():
    return load_script(REPO_ROOT / "scripts" / "make_tiny_assets.py")


def test_make_tiny_assets_main(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    script = _load_script()
    out = tmp_path / "tiny"
    assert script.main(["--output-dir", str(out), "--family", "qwen2", "--n-per-file", "5"]) == 0
    printed = capsys.readouterr().out
    assert "wrote model qwen2" in printed and "wrote data" in printed and "wrote word-task data" in printed
    assert sorted(p.name for p in (out / "models").iterdir()) == ["qwen2"]
    assert sorted(p.name for p in (out / "word_task").iterdir()) == ["test.txt", "train.txt", "validation.txt"]
    assert len(_read_jsonl(out / "data" / "allnli.jsonl")) == 5
    assert AutoTokenizer.from_pretrained(out / "models" / "qwen2").eos_token == "<|im_end|>"

    weights = out / "models" / "qwen2" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    assert script.main(["--output-dir", str(out), "--family", "qwen2", "--n-per-file", "7"]) == 0
    printed = capsys.readouterr().out
    assert printed.count("exists, skipped") == 3  # model, E5 data, word-task data
    assert weights.stat().st_mtime_ns == before
    assert len(_read_jsonl(out / "data" / "allnli.jsonl")) == 5

    assert script.main(["--output-dir", str(out), "--no-models", "--n-per-file", "7", "--force"]) == 0
    assert len(_read_jsonl(out / "data" / "allnli.jsonl")) == 7


@pytest.mark.slow
def test_make_tiny_assets_cli(tmp_path: Path) -> None:
    out = tmp_path / "tiny"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "make_tiny_assets.py"), "--output-dir", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    for family in FAMILIES:
        assert (out / "models" / family / "config.json").is_file()
        assert f"wrote model {family}" in result.stdout
    assert sorted(p.name for p in (out / "data").iterdir()) == [
        "allnli.jsonl",
        "nq.jsonl",
        "quora_duplicates.jsonl",
        "squad.jsonl",
    ]
