"""Fingerprints of what determines an embedding: model folders by content, settings by value.

A local model or adapter folder is identified by the SHA-256 of each file that changes its
embeddings (weights, model and adapter configs, tokenizer files); a hub id by its name (and
revision). Evaluation keys its result folders by these fingerprints, and an adapter records the
fingerprint of the base it was trained on. Digests are cached per process by path, size and
modification time, so a folder is read once however often it is asked about.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: files that take part in an embedding; optimizer states, trainer logs and markers do not
_EMBEDDING_FILES = (
    "*.safetensors", "*.safetensors.index.json", "pytorch_model*.bin", "adapter_model.bin",
    "config.json", "adapter_config.json", "llm2vec_config.json",
    "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
    "tokenizer.model", "vocab.json", "merges.txt", "chat_template.jinja",
)

_digests: dict[tuple[str, int, int], str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """SHA-256 of a file's content (cached per process while its size and mtime are unchanged)."""
    path = Path(path).resolve()
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _digests:
        with path.open("rb") as handle:
            _digests[key] = hashlib.file_digest(handle, "sha256").hexdigest()
    return _digests[key]


def source_fingerprint(name_or_path: str | os.PathLike, revision: str | None = None) -> dict[str, Any]:
    """What identifies a model source: ``{"files": {name: sha256}}`` for a local folder, else the hub id."""
    folder = Path(name_or_path)
    if not folder.is_dir():
        return {"hub_id": str(name_or_path), "revision": revision}
    names = sorted({p.name for pattern in _EMBEDDING_FILES for p in folder.glob(pattern) if p.is_file()})
    if not names:
        raise FileNotFoundError(f"{folder} holds no model or adapter files to fingerprint")
    return {"files": {name: file_digest(folder / name) for name in names}}


def same_source(recorded: Mapping[str, Any], given: Mapping[str, Any]) -> bool | None:
    """True/False when two source fingerprints can be compared (both local, or both hub ids);
    None when one is a folder and the other a hub id (a local copy of a hub model looks so)."""
    if ("files" in recorded) != ("files" in given):
        return None
    if "files" in recorded:
        return recorded["files"] == given["files"]
    return recorded.get("hub_id") == given.get("hub_id")


def digest(value: Any) -> str:
    """SHA-256 of a JSON-serializable value in canonical form."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def chain_fingerprint(sources: Sequence[str | os.PathLike]) -> list[dict[str, Any]]:
    """The source fingerprints of a base model followed by the adapters applied to it, in order."""
    return [source_fingerprint(source) for source in sources]
