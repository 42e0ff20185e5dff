"""Test helpers: tiny random models/tokenizers and synthetic retrieval data, built offline."""

from llm2vec.testing.tiny_data import write_tiny_pairs_dir, write_tiny_pairs_jsonl
from llm2vec.testing.tiny_models import (
    FAMILIES,
    build_tiny_model,
    build_tiny_tokenizer,
    save_tiny_checkpoint,
)

__all__ = [
    "FAMILIES",
    "build_tiny_model",
    "build_tiny_tokenizer",
    "save_tiny_checkpoint",
    "write_tiny_pairs_dir",
    "write_tiny_pairs_jsonl",
]
