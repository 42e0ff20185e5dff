"""``llm2vec_config.json``: the encoder settings stored beside every checkpoint."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

CONFIG_NAME = "llm2vec_config.json"


@dataclass
class LLM2VecConfig:
    """Settings that change what an embedding is; saved so a checkpoint reloads as it was trained."""

    pooling_mode: str = "eos_token"
    max_length: int = 512
    doc_max_length: int = 400
    skip_instruction: bool = True
    enable_bidirectional: bool = False
    prompt_template: str = "auto"
    alpha: float = 0.2
    release_compat: bool = False

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the config as ``llm2vec_config.json`` in ``directory``."""
        path = Path(directory) / CONFIG_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @staticmethod
    def read_overrides(directory: str | os.PathLike | None) -> dict[str, Any]:
        """The keys stored in ``directory``'s config, or nothing when it has none (e.g. a hub id)."""
        if directory is None:
            return {}
        path = Path(directory) / CONFIG_NAME
        if not path.is_file():
            return {}
        try:
            stored = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON: {error}") from error
        known = {f.name for f in fields(LLM2VecConfig)}
        unknown = sorted(set(stored) - known)
        if unknown:
            raise ValueError(f"{path} has unknown keys {unknown}; known keys: {sorted(known)}")
        return stored
