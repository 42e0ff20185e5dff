"""Where a checkpoint comes from: the folders it loads from, in order, and which project made it.

McGill-NLP publishes LLM2Vec models as a chain of repositories: an MNTP repository holds a LoRA
adapter trained on the bidirectional body, the tokenizer and often a copy of the base's
``config.json``; a supervised or unsupervised repository holds the next adapter and an
``llm2vec_config.json`` with llm2vec's four settings. llm2vec loads the base the MNTP adapter names,
merges the MNTP adapter, then applies the next one. :func:`resolve_chain` turns what the user gave
(``base`` may be such an adapter repository) into that chain, so that transformers never loads an
adapter folder as a model (it fails on a local folder with a ``config.json``, and elsewhere injects
the adapter under the name that the next adapter then replaces).

A chain made by llm2vec gets llm2vec's defaults where its files say nothing (bidirectional
attention, mean pooling, llm2vec's tokenization); this project's checkpoints and plain base models
keep this project's. :func:`checkpoint_origin` tells them apart by what ``llm2vec_config.json``
holds: this project writes every setting, llm2vec only its four.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm2vec.model_config import CONFIG_NAME

ADAPTER_CONFIG_NAME = "adapter_config.json"
#: the keys llm2vec writes into ``llm2vec_config.json`` (its ``LLM2Vec.save``)
LLM2VEC_KEYS = frozenset({"pooling_mode", "max_length", "doc_max_length", "skip_instruction"})
#: llm2vec's behaviour where a checkpoint of its own says nothing: ``from_pretrained`` defaults to
#: bidirectional attention, the constructor to mean pooling, and it tokenizes its own way
LLM2VEC_DEFAULTS: dict[str, Any] = {"enable_bidirectional": True, "pooling_mode": "mean", "tokenization": "llm2vec"}
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


@dataclass(frozen=True)
class LoadChain:
    """What to load: the base weights, then each adapter in order (all but the last are merged).

    ``tokenizer_source`` is the first folder of the chain that holds a tokenizer (llm2vec reads the
    tokenizer from the name it was given); ``name_or_path`` is the model name llm2vec would see in
    ``model.config._name_or_path``, which chooses its prompt format.
    """

    base: str
    adapters: tuple[str, ...]
    tokenizer_source: str
    name_or_path: str

    @property
    def sources(self) -> list[str]:
        return [self.base, *self.adapters]


def _local_file(source: str | os.PathLike, filename: str) -> Path | None:
    """``filename`` of a local folder or a hub repository (from the cache or downloaded), if it has one."""
    folder = Path(source).expanduser()
    if folder.is_dir():
        path = folder / filename
        return path if path.is_file() else None
    try:
        from transformers.utils import cached_file

        found = cached_file(str(source), filename, _raise_exceptions_for_missing_entries=False,
                            _raise_exceptions_for_connection_errors=False)
    except (OSError, ValueError):  # not a repository id, or offline without a cached copy
        return None
    return Path(found) if found else None


def _read_json(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path} is not valid JSON: {error}") from error


def adapter_base_of(source: str | os.PathLike) -> str | None:
    """The base model a PEFT adapter repository names, or None when ``source`` is no adapter."""
    config = _read_json(_local_file(source, ADAPTER_CONFIG_NAME))
    if config is None:
        return None
    base = config.get("base_model_name_or_path")
    if not base:
        raise ValueError(f"{source}: {ADAPTER_CONFIG_NAME} names no base_model_name_or_path; pass the base model first")
    return str(base)


def _has_tokenizer(source: str | os.PathLike) -> bool:
    return any(_local_file(source, name) is not None for name in _TOKENIZER_FILES)


def _llm2vec_name(source: str | os.PathLike, fallback: str) -> str:
    # llm2vec replaces the loaded model's _name_or_path by the one in a local folder's config.json
    folder = Path(source).expanduser()
    if folder.is_dir() and (folder / "config.json").is_file():
        return str(_read_json(folder / "config.json").get("_name_or_path") or "")
    return fallback


def resolve_chain(base: str | os.PathLike, adapters: list[str] | tuple[str, ...] = ()) -> LoadChain:
    """The chain ``from_pretrained(base, peft_model_name_or_path=adapters)`` loads.

    ``base`` may itself be an adapter repository (an llm2vec MNTP repository): its adapter then
    comes first, on the base model it names (which may again be an adapter, and so on).
    """
    chain = [str(base)]
    seen = {str(base)}
    while (named := adapter_base_of(chain[0])) is not None:
        if named in seen:
            raise ValueError(f"adapter {chain[0]} names {named} as its base, which is already in the chain {chain}")
        seen.add(named)
        chain.insert(0, named)
    given = str(base)
    tokenizer_source = given if _has_tokenizer(given) else next((s for s in chain if _has_tokenizer(s)), chain[0])
    name = _llm2vec_name(given, fallback=chain[0] if len(chain) > 1 else given)
    return LoadChain(chain[0], tuple(chain[1:]) + tuple(str(a) for a in adapters), tokenizer_source, name)


def stored_settings(source: str | os.PathLike) -> dict[str, Any] | None:
    """The raw ``llm2vec_config.json`` of a folder or hub repository, or None when it has none."""
    return _read_json(_local_file(source, CONFIG_NAME))


def checkpoint_origin(sources: Sequence[str]) -> str:
    """``"llm2vec"`` for a chain McGill-NLP's llm2vec made, else ``"anchor"`` (this project, or a plain model).

    A chain is llm2vec's when an ``llm2vec_config.json`` in it holds llm2vec's keys only, or when
    it has adapters and no ``llm2vec_config.json`` at all; a stored setting that llm2vec does not
    write (this project writes them all) makes it this project's.
    """
    return origin_of([stored_settings(source) for source in sources])


def origin_of(stored_by_source: Sequence[dict[str, Any] | None]) -> str:
    """:func:`checkpoint_origin` from the chain's ``llm2vec_config.json`` contents, already read
    (one per source, None where there is none)."""
    stored = [settings for settings in stored_by_source if settings is not None]
    if any(set(settings) - LLM2VEC_KEYS for settings in stored):
        return "anchor"
    if stored or len(stored_by_source) > 1:
        return "llm2vec"
    return "anchor"
