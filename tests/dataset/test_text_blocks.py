"""MNTP's data: texts tokenized, concatenated and cut into equal blocks, as llm2vec's group_texts does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from transformers import AutoTokenizer

from llm2vec.dataset.jsonl_reader import DatasetError
from llm2vec.dataset.text_blocks import TextBlocksDataset, load_mntp_texts


def test_blocks_are_the_concatenated_token_stream(tiny_llama_dir: Path, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    path = tmp_path / "corpus.txt"
    path.write_text("the quick brown fox\n\njumps over the lazy dog\nand runs away into the woods\n", encoding="utf-8")
    texts = load_mntp_texts("text", path)
    assert texts == ["the quick brown fox", "jumps over the lazy dog", "and runs away into the woods"]
    stream = [i for text in texts for i in tokenizer(text)["input_ids"]]
    dataset = TextBlocksDataset(texts, tokenizer, block_size=5, seed=0)
    assert len(dataset) == len(stream) // 5
    blocks = sorted(tuple(dataset[i]["input_ids"]) for i in range(len(dataset)))
    assert blocks == sorted(tuple(stream[k : k + 5]) for k in range(0, len(dataset) * 5, 5))
    # the BOS each text starts with is marked special, so the collator never masks it
    for i in range(len(dataset)):
        item = dataset[i]
        assert [m for m, t in zip(item["special_tokens_mask"], item["input_ids"]) if t == tokenizer.bos_token_id] == [
            1] * item["input_ids"].count(tokenizer.bos_token_id)
    assert not np.array_equal(TextBlocksDataset(texts, tokenizer, 5, seed=1).order, dataset.order)


def test_bad_input_is_named(tiny_llama_dir: Path, tmp_path: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"one line\n\xfe\n")
    with pytest.raises(DatasetError, match=r"bad\.txt:2: not UTF-8"):
        load_mntp_texts("text", bad)
    with pytest.raises(DatasetError, match="fewer than one block"):
        TextBlocksDataset(["short"], tokenizer, block_size=64)
    with pytest.raises(DatasetError, match="unknown MNTP dataset_name"):
        load_mntp_texts("E5", tmp_path)
