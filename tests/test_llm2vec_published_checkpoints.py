"""Checkpoints laid out as McGill-NLP publishes them give llm2vec's embeddings with llm2vec's call.

The reference is llm2vec's computation written out independently (``tests/llm2vec_reference.py``,
one text per pass) on the model llm2vec builds from the same folders
(``tests/llm2vec_checkpoints.py``). This package batches (positions from the attention mask
make a text's embedding independent of its batch), so equality also shows batch invariance.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from llm2vec import LLM2Vec
from llm2vec.model_config import CONFIG_NAME
from llm2vec.model_sources import ModelSourceError
from tests.llm2vec_checkpoints import llm2vec_chain_reference, write_mntp_repo, write_supervised_repo
from tests.llm2vec_reference import llm2vec_reference_embeddings

#: the published model whose name each tiny family imitates (llm2vec picks its prompt by this name)
PUBLISHED_NAMES = {
    "llama3": "meta-llama/Meta-Llama-3-8B-Instruct",
    "mistral": "mistralai/Mistral-7B-Instruct-v0.2",
    "qwen2": "Qwen/Qwen2-7B-Instruct",
}
LONG = " ".join(["the quick brown fox jumps over the lazy dog near the river bank"] * 8)
SENTENCES = [
    ["Given a web search query, retrieve relevant passages that answer the query:", "how do whales sleep", 0],
    ["", "Whales sleep with one half of the brain at a time.", 1],
    ["Retrieve a passage:", LONG, 2],
    ["   ", "a whitespace instruction", 3],
    ["Classify the sentiment:", "  spaced text  ", 4],
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def published(tiny_checkpoint_dir, tmp_path_factory):
    """family -> (base, MNTP repository, supervised repository), built once."""
    made = {}

    def get(family: str, with_config_json: bool = True):
        key = (family, with_config_json)
        if key not in made:
            root = tmp_path_factory.mktemp(f"published-{family}-{with_config_json}")
            base = tiny_checkpoint_dir(family)
            mntp = write_mntp_repo(base, root / "mntp", name_or_path=PUBLISHED_NAMES[family],
                                   with_config_json=with_config_json, seed=3)
            supervised = write_supervised_repo(mntp, root / "supervised", seed=4)
            made[key] = (base, mntp, supervised)
        return made[key]

    return get


def _reference(base, mntp, supervised, name, pooling_mode="mean", **settings):
    model, tokenizer = llm2vec_chain_reference(base, mntp, supervised)
    with torch.no_grad():
        return llm2vec_reference_embeddings(model, tokenizer, name, SENTENCES, pooling_mode=pooling_mode,
                                            max_length=64, doc_max_length=24, **settings)


@pytest.mark.parametrize("family", sorted(PUBLISHED_NAMES))
def test_mntp_plus_supervised_gives_llm2vecs_embeddings(family: str, published, caplog) -> None:
    base, mntp, supervised = published(family)
    with caplog.at_level(logging.WARNING, logger="llm2vec.llm2vec"):
        encoder = LLM2Vec.from_pretrained(mntp, peft_model_name_or_path=supervised, max_length=64, doc_max_length=24)
    settings = encoder.llm2vec_config
    assert (settings.enable_bidirectional, settings.pooling_mode, settings.tokenization) == (True, "mean", "llm2vec")
    assert encoder.loaded_from == [str(base), str(mntp), str(supervised)]
    # the llm2vec defaults that came from the checkpoint's origin are said once
    said = [r.getMessage() for r in caplog.records if "McGill-NLP's llm2vec" in r.getMessage()]
    assert len(said) == 1 and "enable_bidirectional=True" in said[0] and "tokenization='llm2vec'" in said[0]
    ours = encoder.encode(SENTENCES, batch_size=8, show_progress_bar=False)
    expected = _reference(base, mntp, supervised, PUBLISHED_NAMES[family])
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("pooling_mode", ["eos_token", "weighted_mean"])
def test_other_pooling_modes_match_too(pooling_mode: str, published) -> None:
    base, mntp, supervised = published("mistral")
    encoder = LLM2Vec.from_pretrained(mntp, peft_model_name_or_path=supervised, pooling_mode=pooling_mode,
                                      max_length=64, doc_max_length=24)
    ours = encoder.encode(SENTENCES, batch_size=3, show_progress_bar=False)
    expected = _reference(base, mntp, supervised, PUBLISHED_NAMES["mistral"], pooling_mode=pooling_mode)
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)


def test_a_hub_style_mntp_folder_without_config_json_loads_its_base(published) -> None:
    base, mntp, supervised = published("llama3", with_config_json=False)
    encoder = LLM2Vec.from_pretrained(mntp, peft_model_name_or_path=supervised, max_length=64, doc_max_length=24)
    ours = encoder.encode(SENTENCES, batch_size=8, show_progress_bar=False)
    # llm2vec then sees the base's name: no chat format is applied
    expected = _reference(base, mntp, supervised, str(base))
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)


def test_every_adapter_of_the_chain_counts(published) -> None:
    base, mntp, supervised = published("qwen2")
    full = LLM2Vec.from_pretrained(mntp, peft_model_name_or_path=supervised).encode(SENTENCES[:2], show_progress_bar=False)
    without_mntp = LLM2Vec.from_pretrained(base, peft_model_name_or_path=supervised, enable_bidirectional=True,
                                           pooling_mode="mean", tokenization="llm2vec")
    mntp_only = LLM2Vec.from_pretrained(mntp)
    assert mntp_only.llm2vec_config.enable_bidirectional  # an adapter chain without settings is llm2vec's
    for other in (without_mntp, mntp_only):
        assert (other.encode(SENTENCES[:2], show_progress_bar=False) - full).abs().max() > 1e-3


def test_settings_chosen_for_the_origin_are_saved_and_reload_without_a_word(published, tmp_path: Path, caplog) -> None:
    base, mntp, supervised = published("llama3")
    encoder = LLM2Vec.from_pretrained(mntp, peft_model_name_or_path=supervised, merge_peft=True)
    before = encoder.encode(SENTENCES[:3], show_progress_bar=False)
    encoder.save(tmp_path / "merged")
    stored = json.loads((tmp_path / "merged" / CONFIG_NAME).read_text())
    assert (stored["enable_bidirectional"], stored["pooling_mode"], stored["tokenization"]) == (True, "mean", "llm2vec")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="llm2vec.llm2vec"):
        again = LLM2Vec.from_pretrained(tmp_path / "merged")
    assert not [r for r in caplog.records if "McGill-NLP's llm2vec" in r.getMessage()]
    torch.testing.assert_close(again.encode(SENTENCES[:3], show_progress_bar=False), before, rtol=0, atol=1e-5)


def test_this_projects_checkpoints_and_plain_models_keep_this_projects_defaults(published, tmp_path: Path) -> None:
    base, _, _ = published("llama3")
    plain = LLM2Vec.from_pretrained(base)
    assert (plain.llm2vec_config.enable_bidirectional, plain.pooling_mode, plain.llm2vec_config.tokenization) == (
        False, "eos_token", "anchor")
    plain.save(tmp_path / "ours")
    assert LLM2Vec.from_pretrained(tmp_path / "ours").llm2vec_config.tokenization == "anchor"


def test_an_adapter_loaded_into_the_base_by_transformers_is_refused(published, tmp_path: Path, monkeypatch) -> None:
    base, mntp, supervised = published("llama3")
    original = LLM2Vec._load_model.__func__

    def injected(cls, path, config, kwargs):
        model = original(cls, path, config, kwargs)
        model._hf_peft_config_loaded = True  # what transformers sets when it injects an adapter itself
        return model

    monkeypatch.setattr(LLM2Vec, "_load_model", classmethod(injected))
    with pytest.raises(ModelSourceError, match="no adapter replaces another"):
        LLM2Vec.from_pretrained(mntp, peft_model_name_or_path=supervised)
