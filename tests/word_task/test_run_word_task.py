"""experiments/run_word_task.py end to end on a tiny model: llm2vec's config keys, the probe
learns, its files reload to the same scores; states do not depend on the batch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from llm2vec import LLM2Vec
from llm2vec.testing.tiny_data import WORD_TASK_LEXICON, write_tiny_word_task
from llm2vec.dataset.conll import label_ids, label_inventory, read_tagged_sentences
from llm2vec.word_task.features import word_features
from llm2vec.word_task.probe import WordProbe
from tests.forked_runs import run_forked
from tests.helpers import REPO, subprocess_env

CONFIG = REPO / "train_configs" / "word_task" / "tiny_pos.json"
SCRIPT = REPO / "experiments" / "run_word_task.py"
TAGS = tuple(dict.fromkeys(WORD_TASK_LEXICON.values()))


@pytest.fixture(scope="module")
def splits(tmp_path_factory) -> dict[str, Path]:
    return write_tiny_word_task(tmp_path_factory.mktemp("word_task_data"), seed=0)


def _run(tiny_llama_dir: Path, splits: dict[str, Path], output: Path, *extra: str):
    return run_forked(SCRIPT, [CONFIG, "--model_name_or_path", tiny_llama_dir, "--output_dir", output,
                               "--train_file", splits["train"], "--validation_file", splits["validation"],
                               "--test_file", splits["test"], "--tag_column", "1", *extra],
                      env=subprocess_env())


@pytest.mark.slow
def test_probe_learns_and_reloads(tmp_path, tiny_llama_dir, splits) -> None:
    output = tmp_path / "run"
    # A random model's state at a word's own token carries the word (residual stream); the state
    # before it, read by llm2vec's default next_token, barely does.
    result = _run(tiny_llama_dir, splits, output, "--retroactive_labels", "same_token")
    assert result.returncode == 0, result.stderr[-4000:]
    assert "evaluation_strategy is called eval_strategy" in result.stderr
    record = json.loads((output / "word_task.json").read_text())
    assert record["labels"] == sorted(record["labels"], key=record["labels"].index)  # first-appearance order
    assert set(record["labels"]) == set(TAGS)
    assert record["steps"] == 60
    losses = [loss for _, loss in record["losses"]]
    assert losses[-1] < 0.8 * losses[0], losses
    assert [step for step, _ in record["evaluations"]] == [20, 40, 60]
    assert record["scores"]["train"]["accuracy"] > 1 / len(TAGS) + 0.1

    # The saved classifier on freshly computed states gives the recorded test score.
    encoder = LLM2Vec.from_pretrained(str(tiny_llama_dir), enable_bidirectional=True, dtype=torch.float32)
    sentences = read_tagged_sentences(splits["test"], 1)
    labels = tuple(record["labels"])
    states = word_features(encoder, sentences, label_ids(sentences, labels, "test"), "same_token", True, 64)
    probe = WordProbe(states.features.shape[1], len(labels), 0.1)
    probe.load_state_dict(load_file(str(output / "word_probe.safetensors")))
    from llm2vec.word_task.scoring import score_probe

    assert score_probe(probe, states, labels)["accuracy"] == pytest.approx(record["scores"]["test"]["accuracy"])

    again = _run(tiny_llama_dir, splits, output, "--retroactive_labels", "same_token", "--overwrite_output_dir", "false",
                 "--resume_from_checkpoint", "last")
    assert again.returncode == 0 and "run already finished at step 60" in again.stdout


def test_states_do_not_depend_on_the_batch(tiny_llama_dir, splits) -> None:
    encoder = LLM2Vec.from_pretrained(str(tiny_llama_dir), enable_bidirectional=True, dtype=torch.float32)
    sentences = read_tagged_sentences(splits["validation"], 1)[:12]
    labels = label_inventory("pos_tags", sentences, "tiny")
    ids = label_ids(sentences, labels, "validation")
    together = word_features(encoder, sentences, ids, "same_token", False, 64, batch_size=12)
    alone = word_features(encoder, sentences, ids, "same_token", False, 64, batch_size=1)
    torch.testing.assert_close(together.features, alone.features, atol=1e-5, rtol=1e-5)
    assert torch.equal(together.labels, alone.labels)
    assert together.words == len(together.labels)  # every word labelled once, none cut
    cut = word_features(encoder, sentences, ids, "same_token", False, 6)
    assert cut.unlabelled_words > 0 and cut.words - cut.unlabelled_words == len(cut.labels)


def test_llm2vec_keys_that_cannot_be_honoured_are_refused(tmp_path, tiny_llama_dir, splits) -> None:
    result = _run(tiny_llama_dir, splits, tmp_path / "auto", "--model_class", "auto")
    assert result.returncode != 0 and "model_class 'auto' is not supported" in result.stderr


def test_next_token_without_bos_leaves_each_first_word_unscored(tiny_qwen_dir, splits) -> None:
    """Qwen2's tokenizer adds no BOS: under next_token no token precedes a sentence's first word
    (llm2vec's alignment drops it); same_token scores every word."""
    encoder = LLM2Vec.from_pretrained(str(tiny_qwen_dir), enable_bidirectional=True, dtype=torch.float32)
    sentences = read_tagged_sentences(splits["validation"], 1)[:10]
    labels = label_inventory("pos_tags", sentences, "tiny")
    ids = label_ids(sentences, labels, "validation")
    shifted = word_features(encoder, sentences, ids, "next_token", True, 64)
    assert shifted.unlabelled_words == len(sentences)
    assert torch.equal(shifted.labels, torch.tensor([i for row in ids for i in row[1:]]))
    assert word_features(encoder, sentences, ids, "same_token", True, 64).unlabelled_words == 0
