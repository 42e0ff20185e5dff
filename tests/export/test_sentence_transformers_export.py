"""sentence-transformers export: SentenceTransformer(folder).encode == LLM2Vec.encode."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("sentence_transformers")

from sentence_transformers import SentenceTransformer  # noqa: E402

from llm2vec.export import ExportError, export_sentence_transformers  # noqa: E402
from llm2vec.llm2vec import LLM2Vec  # noqa: E402
from llm2vec.model_config import LLM2VecConfig  # noqa: E402

STS = "Retrieve semantically similar text:"
NQ = "Given a question, retrieve Wikipedia passages that answer the question:"
PROMPTS = {"STS12": STS, "NQ": NQ}
#: small caps so that truncation (text cut to doc_max_length, EOS kept) is exercised cheaply
LENGTHS = {"max_length": 160, "doc_max_length": 80}
#: ~390 tokens: cut to doc_max_length. Instructed, it is past the documented limit (instruction and
#: text are truncated together), so it is only compared without instruction.
LONG_TEXT = " ".join(f"word{i}" for i in range(80))
CLEAN_TEXTS = [
    "hello world",
    "What is the capital of the country where the river flows?",
    "123 numbers first, then words.",
    "a line\nbreak inside",
    "x",
]
SPACED_TEXTS = ["  leading and trailing spaces  ", "\nnewline first", "trailing newline\n"]


def _st_encode(model: SentenceTransformer, texts: list[str], **kwargs) -> np.ndarray:
    return model.encode(texts, batch_size=4, convert_to_numpy=True, **kwargs).astype(np.float64)


def _l2v_encode(encoder: LLM2Vec, texts: list, batch_size: int = 3) -> np.ndarray:
    return encoder.encode(texts, batch_size=batch_size, show_progress_bar=False).double().numpy()


def test_llama3_export_matches_llm2vec(tiny_llama_dir: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    encoder = LLM2Vec.from_pretrained(tiny_llama_dir, dtype=torch.float32, **LENGTHS)
    texts = CLEAN_TEXTS + SPACED_TEXTS
    plain = _l2v_encode(encoder, texts + [LONG_TEXT])
    sts = _l2v_encode(encoder, [[STS, t] for t in texts])
    nq = _l2v_encode(encoder, [[NQ, t] for t in texts[:4]])

    report = export_sentence_transformers(encoder, tmp_path / "st", prompts=PROMPTS)
    assert report.layout == "tokenizer" and report.pooling_mode == "lasttoken" and report.exact
    assert report.max_abs_diff is not None and report.max_abs_diff < 1e-5  # the export's own check
    assert report.max_seq_length == 1 + 6 + LENGTHS["doc_max_length"] + 1  # BOS + header + text + <|eot_id|>

    config = json.loads((tmp_path / "st" / "config_sentence_transformers.json").read_text())
    assert config["prompts"]["STS12"] == f"{STS} " and config["prompts"]["NQ-document"] == ""
    assert config["default_prompt_name"] is None
    pooling = json.loads((tmp_path / "st" / "1_Pooling" / "config.json").read_text())
    assert pooling["pooling_mode_lasttoken"] and not pooling["pooling_mode_mean_tokens"]
    assert not (tmp_path / "st" / "llm2vec_config.json").exists()

    model = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    assert model.tokenizer.padding_side == "right"
    np.testing.assert_allclose(_st_encode(model, texts + [LONG_TEXT]), plain, atol=1e-5, rtol=0)
    np.testing.assert_allclose(_st_encode(model, texts, prompt_name="STS12"), sts, atol=1e-5, rtol=0)
    np.testing.assert_allclose(_st_encode(model, texts[:4], prompt=f"{NQ} "), nq, atol=1e-5, rtol=0)
    # mteb's corpus side: "{task}-document" has no instruction
    np.testing.assert_allclose(_st_encode(model, texts[:4], prompt_name="NQ-document"), plain[:4], atol=1e-5, rtol=0)
    # the instruction changes the embedding (the comparison above is not vacuous)
    assert np.abs(sts - plain[: len(texts)]).max() > 1e-3


def test_lora_adapter_is_merged(tiny_qwen_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModel

    adapter_dir = tmp_path / "adapter"
    base = AutoModel.from_pretrained(tiny_qwen_dir, dtype=torch.float32)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False)
    get_peft_model(base, lora).save_pretrained(adapter_dir)
    LLM2VecConfig().save(adapter_dir)  # this project's adapter (without settings it would be taken for llm2vec's)

    encoder = LLM2Vec.from_pretrained(tiny_qwen_dir, peft_model_name_or_path=adapter_dir, dtype=torch.float32, **LENGTHS)
    plain = _l2v_encode(encoder, CLEAN_TEXTS + [LONG_TEXT])  # computed through the unmerged adapter
    sts = _l2v_encode(encoder, [[STS, t] for t in CLEAN_TEXTS])
    without_adapter = _l2v_encode(
        LLM2Vec.from_pretrained(tiny_qwen_dir, dtype=torch.float32, **LENGTHS), CLEAN_TEXTS + [LONG_TEXT]
    )
    assert np.abs(plain - without_adapter).max() > 1e-3  # the adapter matters

    report = export_sentence_transformers(encoder, tmp_path / "st", prompts={"STS12": STS}, verify=False)
    assert report.merged and report.max_abs_diff is None
    assert not (tmp_path / "st" / "adapter_config.json").exists()
    model = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    np.testing.assert_allclose(_st_encode(model, CLEAN_TEXTS + [LONG_TEXT]), plain, atol=1e-5, rtol=0)
    np.testing.assert_allclose(_st_encode(model, CLEAN_TEXTS, prompt_name="STS12"), sts, atol=1e-5, rtol=0)


def test_prefix_in_prompts_layout(tiny_mistral_dir: Path, tmp_path: Path) -> None:
    """Mistral's "[INST] " prefix merges with the following word: it goes into the prompts."""
    encoder = LLM2Vec.from_pretrained(tiny_mistral_dir, prompt_template="mistral", dtype=torch.float32, **LENGTHS)
    plain = _l2v_encode(encoder, CLEAN_TEXTS + [LONG_TEXT])
    sts = _l2v_encode(encoder, [[STS, t] for t in CLEAN_TEXTS])
    report = export_sentence_transformers(encoder, tmp_path / "st", prompts={"STS12": STS}, verify=False)
    assert report.layout == "prompt" and report.default_prompt_name == "llm2vec_template"
    assert report.prompts["STS12"] == f"[INST] {STS} " and report.prompts["STS12-document"] == "[INST] "
    model = SentenceTransformer(str(tmp_path / "st"), device="cpu")
    np.testing.assert_allclose(_st_encode(model, CLEAN_TEXTS + [LONG_TEXT]), plain, atol=1e-5, rtol=0)
    np.testing.assert_allclose(_st_encode(model, CLEAN_TEXTS, prompt_name="STS12"), sts, atol=1e-5, rtol=0)


def test_default_prompts_are_the_packaged_instructions(tiny_llama_dir: Path, tmp_path: Path) -> None:
    from llm2vec.evaluation.instructions import load_task_instructions

    encoder = LLM2Vec.from_pretrained(tiny_llama_dir, dtype=torch.float32, **LENGTHS)
    report = export_sentence_transformers(encoder, tmp_path / "st", verify=False)
    instructions = load_task_instructions()
    assert set(report.prompts) == {"query", "document", *instructions, *(f"{t}-document" for t in instructions)}
    assert report.prompts["NQ"] == f"{NQ} "
    missing = tmp_path / "missing.json"
    with pytest.raises(FileNotFoundError, match="missing.json"):
        export_sentence_transformers(encoder, tmp_path / "st2", instructions_file=missing, verify=False)


def test_unsupported_settings_raise(tiny_llama_dir: Path, tmp_path: Path) -> None:
    encoder = LLM2Vec.from_pretrained(tiny_llama_dir, pooling_mode="mean", skip_instruction=True, **LENGTHS)
    with pytest.raises(ExportError, match="allow_approximate"):
        export_sentence_transformers(encoder, tmp_path / "mean", prompts={})
    assert not (tmp_path / "mean").exists()
    release = LLM2Vec.from_pretrained(tiny_llama_dir, release_compat=True, **LENGTHS)
    with pytest.raises(ExportError, match="release_compat"):
        export_sentence_transformers(release, tmp_path / "release", prompts={})
