"""Training data: the E5 mixture and users' own JSONL pairs, batched one task at a time."""

from llm2vec.dataset.e5 import E5_INSTRUCTIONS, E5Dataset
from llm2vec.dataset.jsonl_pairs import JsonlPairsDataset
from llm2vec.dataset.jsonl_reader import DatasetError, DatasetNotFoundError
from llm2vec.dataset.task_chunked import TrainSample
from llm2vec.dataset.loading import load_train_dataset

__all__ = [
    "DatasetError",
    "DatasetNotFoundError",
    "E5Dataset",
    "E5_INSTRUCTIONS",
    "JsonlPairsDataset",
    "TrainSample",
    "load_train_dataset",
]
