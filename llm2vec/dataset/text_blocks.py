"""Running text cut into blocks of equal length: the data of MNTP.

As llm2vec's ``run_mntp.py`` does (its ``group_texts``), every text is tokenized with the
tokenizer's special tokens, the token streams are concatenated, and the result is cut into blocks
of ``block_size`` tokens; the tail that does not fill a block is left out (and said). Texts come
from UTF-8 files, one text per line (``dataset_name: "text"``; a folder means its ``*.txt`` files),
or from the hub's wikitext (``dataset_name: "wikitext"``, ``dataset_config_name``
``wikitext-103-raw-v1``, as llm2vec trains). Tokens are kept in numpy arrays: wikitext-103 is
about 120 million tokens, which Python lists would hold in several gigabytes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from llm2vec.dataset.jsonl_reader import DatasetError
from llm2vec.dataset.text_lines import iter_text_lines, resolve_text_paths

logger = logging.getLogger(__name__)

#: texts tokenized per call: large enough for the fast tokenizer's batching, small enough for memory
_TOKENIZE_BATCH = 1000


def read_text_lines(path: str | os.PathLike[str]) -> list[str]:
    """The non-blank lines of a UTF-8 file or of a folder's ``*.txt`` files.

    Raises:
        DatasetError: a line that is not UTF-8 (naming file and line), or no text at all.
    """
    texts = [line for file in resolve_text_paths(path) for _, line in iter_text_lines(file) if line]
    if not texts:
        raise DatasetError(f"{path} holds no text")
    return texts


def load_mntp_texts(dataset_name: str, dataset_file_path: str | os.PathLike[str] | None,
                    dataset_config_name: str | None = None) -> list[str]:
    """The texts of an MNTP run: a text file or folder, or the hub's wikitext training split."""
    kind = dataset_name.lower()
    if kind == "text":
        if dataset_file_path is None:
            raise DatasetError("dataset_name 'text' needs dataset_file_path: a UTF-8 file or a folder of *.txt files")
        return read_text_lines(dataset_file_path)
    if kind == "wikitext":
        import datasets

        name = dataset_config_name or "wikitext-103-raw-v1"
        try:
            split = datasets.load_dataset("wikitext", name, split="train")
        except Exception as error:  # noqa: BLE001 - any failure to fetch is the same advice
            raise DatasetError(
                f"cannot load the hub dataset wikitext/{name} ({error}); without network, save its text to a "
                "file and use dataset_name 'text' with dataset_file_path"
            ) from error
        return [text for text in split["text"] if text.strip()]
    raise DatasetError(f"unknown MNTP dataset_name {dataset_name!r}; use 'text' (files) or 'wikitext' (hub)")


class TextBlocksDataset(Dataset):
    """Blocks of ``block_size`` tokens of the concatenated, tokenized texts, in a seeded random order.

    Each item is ``{"input_ids": [...], "special_tokens_mask": [...]}``, what transformers'
    ``DataCollatorForLanguageModeling`` takes (it never masks a special token).
    """

    def __init__(self, texts: Sequence[str], tokenizer: Any, block_size: int, seed: int = 42) -> None:
        if block_size < 2:
            raise DatasetError(f"block size (max_seq_length) must be at least 2, got {block_size}")
        ids, special = self._tokenize(texts, tokenizer)
        blocks = len(ids) // block_size
        if blocks == 0:
            raise DatasetError(f"the texts hold {len(ids)} tokens, fewer than one block of {block_size}")
        left_out = len(ids) - blocks * block_size
        if left_out:
            logger.info("MNTP data: %d tokens in %d blocks of %d; the last %d tokens fill no block and are left out",
                        len(ids), blocks, block_size, left_out)
        self.ids = ids[: blocks * block_size].reshape(blocks, block_size)
        self.special = special[: blocks * block_size].reshape(blocks, block_size)
        self.order = np.random.default_rng(seed).permutation(blocks)

    @staticmethod
    def _tokenize(texts: Sequence[str], tokenizer: Any) -> tuple[np.ndarray, np.ndarray]:
        ids: list[np.ndarray] = []
        special: list[np.ndarray] = []
        for start in range(0, len(texts), _TOKENIZE_BATCH):
            encoded = tokenizer(list(texts[start : start + _TOKENIZE_BATCH]), return_special_tokens_mask=True)
            ids.extend(np.asarray(row, dtype=np.int64) for row in encoded["input_ids"])
            special.extend(np.asarray(row, dtype=np.int8) for row in encoded["special_tokens_mask"])
        return np.concatenate(ids), np.concatenate(special)

    def __len__(self) -> int:
        return len(self.order)

    def __getitem__(self, index: int) -> dict[str, list[int]]:
        block = self.order[index]
        return {"input_ids": self.ids[block].tolist(), "special_tokens_mask": self.special[block].tolist()}

