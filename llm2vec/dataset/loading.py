"""Build the training dataset named in a training config."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from torch.utils.data import Dataset

from llm2vec.dataset.e5 import E5Dataset
from llm2vec.dataset.jsonl_pairs import JsonlPairsDataset
from llm2vec.dataset.jsonl_reader import DatasetError, DatasetNotFoundError
from llm2vec.dataset.task_chunked import TrainSample
from llm2vec.dataset.text_lines import TextLinesDataset, check_text_options

DATASET_NAMES = ("E5", "jsonl", "text", "Wiki1M")
"""Valid values of ``dataset_name`` (matched case-insensitively)."""


def _jsonl_paths(dataset_file_path: str | os.PathLike[str], files: Sequence[str]) -> list[Path]:
    """Resolve a ``files`` restriction against the ``*.jsonl`` files of a directory."""
    directory = Path(dataset_file_path)
    if not directory.is_dir():
        raise DatasetNotFoundError(
            f"files restricts the files of a directory, but {directory} is not a directory"
        )
    names = [files] if isinstance(files, str) else list(files)
    if not names:
        raise DatasetError("files is empty; use None to train on every *.jsonl file")
    names = [name.removesuffix(".jsonl") for name in names]
    available = sorted(path.stem for path in directory.glob("*.jsonl") if path.is_file())
    unknown = [name for name in names if name not in available]
    if unknown:
        raise DatasetError(
            f"Unknown file name(s) {unknown} in {directory}; valid names are: "
            f"{', '.join(available) or '(no *.jsonl file)'}"
        )
    return [directory / f"{name}.jsonl" for name in dict.fromkeys(names)]


def load_train_dataset(
    dataset_name: str,
    dataset_file_path: str | os.PathLike[str],
    per_device_batch_size: int,
    world_size: int,
    seed: int,
    files: Sequence[str] | None = None,
    require_negatives: bool = False,
    default_instruction: str | None = None,
) -> Dataset[TrainSample]:
    """Return the training dataset for a config.

    Args:
        dataset_name: ``"E5"`` (the echo-embeddings mixture), ``"jsonl"`` (own pairs) or
            ``"text"``/``"Wiki1M"`` (sentences, one per line, each its own positive: SimCSE),
            case-insensitive.
        dataset_file_path: the E5 data directory, or a JSONL file or directory of JSONL files.
        per_device_batch_size: samples per micro-batch on one device.
        world_size: number of data-parallel processes.
        seed: run seed.
        files: restrict the files used, by name without ``.jsonl`` (for ``"jsonl"``,
            ``dataset_file_path`` must then be a directory).
        require_negatives: make samples without a hard negative an error.
        default_instruction: instruction for JSONL lines without one (``"jsonl"`` only; E5
            files have fixed instructions).

    Raises:
        DatasetError: on an unknown dataset name, an option that does not apply to the
            dataset, or any data problem (see ``E5Dataset`` and ``JsonlPairsDataset``).
    """
    kind = dataset_name.lower() if isinstance(dataset_name, str) else None
    if kind == "e5":
        if default_instruction is not None:
            # Ignoring it would train with other instructions than the config says.
            raise DatasetError(
                "default_instruction applies only to the 'jsonl' dataset; E5 files have fixed "
                "instructions (see E5_INSTRUCTIONS)"
            )
        return E5Dataset(
            dataset_file_path,
            per_device_batch_size,
            world_size=world_size,
            seed=seed,
            files=files,
            require_negatives=require_negatives,
        )
    if kind == "jsonl":
        paths = dataset_file_path if files is None else _jsonl_paths(dataset_file_path, files)
        return JsonlPairsDataset(
            paths,
            per_device_batch_size,
            world_size=world_size,
            seed=seed,
            default_instruction=default_instruction,
            require_negatives=require_negatives,
        )
    if kind in ("text", "wiki1m"):
        check_text_options(files, require_negatives, default_instruction)
        return TextLinesDataset(dataset_file_path, per_device_batch_size, world_size=world_size, seed=seed)
    raise DatasetError(
        f"Unknown dataset_name {dataset_name!r}; valid names are: {', '.join(DATASET_NAMES)} "
        "(case-insensitive)"
    )
