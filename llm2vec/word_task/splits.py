"""The splits of a word task, as label ids of one inventory, from local CoNLL files or the hub."""

from __future__ import annotations

from dataclasses import dataclass

from llm2vec.dataset.conll import (
    TaggedSentence,
    hub_tagged_sentences,
    label_ids,
    label_inventory,
    read_tagged_sentences,
    tag_column_for,
)
from llm2vec.dataset.jsonl_reader import DatasetError

SPLITS = ("train", "validation", "test")


@dataclass
class WordTaskData:
    """Sentences and label ids of each split present, with the label inventory."""

    labels: tuple[str, ...]
    sentences: dict[str, list[TaggedSentence]]
    label_ids: dict[str, list[list[int]]]


def load_word_task(args) -> WordTaskData:
    """The splits that ``args`` (:class:`~llm2vec.training.arguments.WordTaskArguments`) name.

    Local files when ``train_file`` is set (validation and test optional), else the hub dataset
    ``dataset_name`` with its own splits.
    """
    files = {"train": args.train_file, "validation": args.validation_file, "test": args.test_file}
    if args.train_file is not None:
        sentences = {
            split: read_tagged_sentences(path, tag_column_for(args.task, path, args.tag_column))
            for split, path in files.items()
            if path is not None
        }
    else:
        if any(files.values()):
            raise DatasetError("validation_file and test_file need a train_file (the labels come from training)")
        sentences = {split: rows for split, rows in hub_tagged_sentences(args.dataset_name, args.task).items() if split in SPLITS}
        if "train" not in sentences:
            raise DatasetError(f"hub dataset {args.dataset_name} has no train split")
    labels = label_inventory(args.task, sentences["train"], args.dataset_name)
    return WordTaskData(
        labels=labels,
        sentences=sentences,
        label_ids={split: label_ids(rows, labels, split) for split, rows in sentences.items()},
    )
