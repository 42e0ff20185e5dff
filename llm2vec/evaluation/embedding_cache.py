"""Embeddings on disk, so that an evaluation resumes where it stopped and shared corpora are embedded once.

A cache folder belongs to one model: its name is the digest of everything that determines an
embedding other than the text (weights of base and adapters by content, encoder settings, dtype,
attention implementation, batching path; :func:`embedding_fingerprint`). Inside, each text is
keyed by the SHA-256 of its instruction and its text, so a corpus that two tasks share (the
CQADupStack forums' documents, a corpus reused across retrieval tasks) is looked up, not
encoded again, and a changed instruction is a different key.

Embeddings are appended in chunk files (``chunk-<writer>-<n>.safetensors``: ``keys`` (n, 16)
uint8 and ``embeddings`` (n, dim)), each written to a temporary name and renamed into place, so a
process killed at any moment leaves complete chunks only and loses at most the chunk it was
computing. Writers never share a file name, so several processes can fill one folder. Embeddings
that are exactly representable in bfloat16 (those of a bf16 model) are stored in bfloat16:
lossless at half the size.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llm2vec.files import remove_stale_temporaries, set_aside, write_atomically, write_text_atomically
from llm2vec.fingerprint import digest

logger = logging.getLogger(__name__)

KEY_BYTES = 16
FINGERPRINT_NAME = "fingerprint.json"
_CHUNK_GLOB = "chunk-*.safetensors"


def text_key(instruction: str, text: str) -> bytes:
    """The cache key of one input: its instruction and text, unambiguously joined."""
    joined = json.dumps([instruction, text], ensure_ascii=False)
    return hashlib.sha256(joined.encode("utf-8")).digest()[:KEY_BYTES]


def embedding_fingerprint(parts: Mapping[str, Any]) -> str:
    """Digest (16 hex digits) of what determines an embedding besides its text and instruction.

    ``parts`` is :func:`~llm2vec.evaluation.runner.evaluation_fingerprint`'s record; its
    ``instructions`` entry (the instructions file) and ``sources`` (paths, not content) are left
    out, since every key holds its own instruction and the weights are keyed by content.
    """
    return digest({k: v for k, v in parts.items() if k not in ("instructions", "sources")})[:16]


@dataclass(frozen=True)
class CacheReport:
    """What a cache folder holds."""

    folder: Path
    chunks: int
    embeddings: int
    bytes: int

    def __str__(self) -> str:
        return (
            f"embedding cache {self.folder}: {self.embeddings} embeddings in {self.chunks} chunk(s), "
            f"{self.bytes / 2**20:.1f} MiB"
        )


class EmbeddingCache:
    """The embeddings of one model, keyed by :func:`text_key` (see the module docstring).

    Args:
        folder: the model's cache folder (created; ``parts`` written into ``fingerprint.json``).
        parts: the record of what the folder's name stands for, kept for people reading the folder.
        writer: part of every chunk name this object writes (e.g. the rank); a random suffix keeps
            two processes with the same writer name apart.
    """

    def __init__(self, folder: str | os.PathLike, parts: Mapping[str, Any] | None = None, writer: str = "0") -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(self.folder)
        if parts is not None and not (self.folder / FINGERPRINT_NAME).exists():
            write_text_atomically(self.folder / FINGERPRINT_NAME, json.dumps(dict(parts), indent=2, default=str) + "\n")
        self._writer = f"{writer}-{uuid.uuid4().hex[:8]}"
        self._written = 0
        self._index: dict[bytes, tuple[Path, int]] = {}
        self._scanned: set[Path] = set()
        self.refresh()

    # ------------------------------------------------------------------ reading
    def refresh(self) -> None:
        """Index the chunks written since the last look (by this or any other process)."""
        for path in sorted(self.folder.glob(_CHUNK_GLOB)):
            if path in self._scanned:
                continue
            try:
                keys = self._read(path, "keys")
            except Exception as error:  # noqa: BLE001 - any unreadable chunk is set aside the same way
                self._set_aside(path, error)
                continue
            self._scanned.add(path)
            for row, key in enumerate(keys.numpy()):
                self._index[key.tobytes()] = (path, row)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, key: bytes) -> bool:
        return key in self._index

    def get(self, keys: Sequence[bytes]) -> dict[int, np.ndarray]:
        """``{position in keys: embedding (float32)}`` of every key the cache holds."""
        by_file: dict[Path, list[tuple[int, int]]] = {}
        for position, key in enumerate(keys):
            found = self._index.get(key)
            if found is not None:
                by_file.setdefault(found[0], []).append((position, found[1]))
        result: dict[int, np.ndarray] = {}
        for path, wanted in by_file.items():
            try:
                embeddings = self._read(path, "embeddings").float().numpy()
            except Exception as error:  # noqa: BLE001
                # Its keys read before; now it cannot be read: forget it, the texts are encoded again.
                self._set_aside(path, error)
                self._index = {k: v for k, v in self._index.items() if v[0] != path}
                continue
            for position, row in wanted:
                result[position] = embeddings[row]
        return result

    # ------------------------------------------------------------------ writing
    def put(self, keys: Sequence[bytes], embeddings: np.ndarray) -> Path | None:
        """Write one chunk (atomically) and index it; returns its path (None for no rows)."""
        if len(keys) != len(embeddings):
            raise ValueError(f"{len(keys)} keys for {len(embeddings)} embeddings")
        if not keys:
            return None
        values = torch.from_numpy(np.ascontiguousarray(embeddings, dtype=np.float32))
        as_bf16 = values.bfloat16()
        if torch.equal(as_bf16.float(), values):
            values = as_bf16  # lossless: the model computed them in bf16
        key_tensor = torch.from_numpy(np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), KEY_BYTES).copy())
        path = self.folder / f"chunk-{self._writer}-{self._written:06d}.safetensors"
        self._written += 1

        def write(temporary: Path) -> None:
            from safetensors.torch import save_file

            save_file({"keys": key_tensor, "embeddings": values}, str(temporary))

        write_atomically(path, write)
        self._scanned.add(path)
        for row, key in enumerate(keys):
            self._index[key] = (path, row)
        return path

    # ------------------------------------------------------------------ reporting
    def report(self) -> CacheReport:
        """Chunks, embeddings and bytes on disk."""
        chunks = sorted(self.folder.glob(_CHUNK_GLOB))
        return CacheReport(self.folder, len(chunks), len(self._index), sum(p.stat().st_size for p in chunks))

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _read(path: Path, name: str) -> torch.Tensor:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as handle:
            return handle.get_tensor(name)

    @staticmethod
    def _set_aside(path: Path, error: Exception) -> None:
        try:
            aside = set_aside(path)
        except OSError:
            aside = path
        logger.warning("embedding cache chunk %s cannot be read (%s); set aside as %s, its texts are encoded again",
                       path, error, aside)


def folder_report(root: str | os.PathLike) -> list[CacheReport]:
    """Reports of every model folder under a cache root (for ``--cache_report``)."""
    reports = []
    for folder in sorted(Path(root).glob("*")):
        if folder.is_dir():
            chunks = sorted(folder.glob(_CHUNK_GLOB))
            count = 0
            for path in chunks:
                try:
                    count += EmbeddingCache._read(path, "keys").shape[0]
                except Exception:  # noqa: BLE001 - a report counts what it can read
                    continue
            reports.append(CacheReport(folder, len(chunks), count, sum(p.stat().st_size for p in chunks)))
    return reports
