"""Reading model weights saved as safetensors, and loading them strictly into a module.

Shared by the models (resuming from a checkpoint folder written by their ``save``) and the
trainer (scattering a full state dict into FSDP shards); it depends on nothing else here.
"""

from __future__ import annotations

import json
from collections.abc import Set
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

SAFETENSORS_NAME = "model.safetensors"
SAFETENSORS_INDEX_NAME = "model.safetensors.index.json"


def _read(path: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(path)
    except Exception as error:  # noqa: BLE001 - safetensors' errors do not name the file
        raise ValueError(f"{path} cannot be read as safetensors ({error}); it may be truncated or damaged") from error


def read_safetensors_folder(folder: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of ``model.safetensors``, or of the shards listed in its index, in ``folder``."""
    folder = Path(folder)
    single = folder / SAFETENSORS_NAME
    if single.is_file():
        return _read(single)
    index = folder / SAFETENSORS_INDEX_NAME
    if not index.is_file():
        raise FileNotFoundError(f"{folder} has neither {SAFETENSORS_NAME} nor {SAFETENSORS_INDEX_NAME}")
    shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    state: dict[str, torch.Tensor] = {}
    for shard in shards:
        state.update(_read(folder / shard))
    return state


def load_into(module: nn.Module, state: dict[str, torch.Tensor], allowed_missing: Set[str] = frozenset()) -> None:
    """Load ``state`` into ``module`` strictly, except for keys the checkpoint may omit (tied weights).

    Raises:
        ValueError: keys are missing from ``state`` or ``state`` has keys the module lacks.
    """
    result = module.load_state_dict(state, strict=False)
    missing = set(result.missing_keys) - set(allowed_missing)
    if missing or result.unexpected_keys:
        raise ValueError(
            f"checkpoint does not match the model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(result.unexpected_keys)[:5]}"
        )
