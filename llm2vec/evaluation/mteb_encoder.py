"""An :class:`~llm2vec.LLM2Vec` as an mteb 2.x encoder.

mteb calls ``encode(inputs, *, task_metadata, hf_split, hf_subset, prompt_type)`` with a
``DataLoader`` of batches (dicts with a ``"text"`` list; retrieval corpora come with the title
already joined to the text as ``"title text"``, the raw text in ``"body"`` and the ``"title"``).
The encoder looks up the task's instruction and hands ``[instruction, text]`` pairs to
``LLM2Vec.encode``, which cuts each text to ``doc_max_length`` tokens, batches by length and
returns float32 embeddings in input order.

The texts of one call are embedded in chunks (``chunk_texts``), longest first. With an
:class:`~llm2vec.evaluation.embedding_cache.EmbeddingCache`, texts it holds are read instead of
embedded and every finished chunk is written to it, so an interrupted evaluation resumes and a
corpus shared by tasks is embedded once. Under data parallelism (``torchrun``), each chunk is
split across ranks by tokens and gathered back on every rank (see
:mod:`llm2vec.evaluation.data_parallel`); rank 0 alone reads and writes the cache.

Instruction policy (E5-mistral, as in the release): the instruction of ``task_metadata.name`` is
given to queries and to every text of symmetric tasks (STS, classification, clustering, pair
classification, summarization); documents (``prompt_type == PromptType.document``, i.e. the corpus
side of retrieval and reranking) get none.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from mteb.models.abs_encoder import AbsEncoder
from mteb.models.model_meta import ModelMeta, ScoringFunction
from mteb.types import PromptType
from tqdm.auto import tqdm

from llm2vec.evaluation.data_parallel import Ranks, counted_in_parallel, split_by_tokens
from llm2vec.evaluation.embedding_cache import EmbeddingCache, text_key
from llm2vec.evaluation.instructions import MissingInstructionError, format_instruction

if TYPE_CHECKING:
    from mteb.abstasks.task_metadata import TaskMetadata
    from torch.utils.data import DataLoader

    from llm2vec.llm2vec import LLM2Vec

__all__ = ["LLM2VecMTEBEncoder", "batch_texts", "build_model_meta", "model_name_from_paths"]

logger = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._+=-]+")


def _clean(part: str) -> str:
    return _UNSAFE.sub("_", part).strip("_") or "model"


def _is_hub_id(path: str) -> bool:
    return not Path(path).exists() and re.fullmatch(r"[\w.-]+/[\w.-]+", path) is not None


def model_name_from_paths(
    base_model_name_or_path: str | os.PathLike,
    peft_model_name_or_path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
) -> str:
    """An ``organization/model``-style name for the results folder of a checkpoint.

    The name comes from the last thing loaded: the (last) adapter if any, else the base model. A
    hub id is used as is; a local folder gives ``<parent folder>/<folder>`` (so
    ``output/run_a/checkpoint-1000`` gives ``run_a/checkpoint-1000``).
    """
    if peft_model_name_or_path is None or isinstance(peft_model_name_or_path, (str, os.PathLike)):
        last = peft_model_name_or_path or base_model_name_or_path
    else:
        adapters = list(peft_model_name_or_path)
        last = adapters[-1] if adapters else base_model_name_or_path
    text = str(last).rstrip("/\\")
    if _is_hub_id(text):
        return text
    parts = Path(text).resolve().parts
    leaf = parts[-1] if parts else "model"
    parent = parts[-2] if len(parts) >= 2 and parts[-2] not in ("/", "") else "local"
    return f"{_clean(parent)}/{_clean(leaf)}"


def build_model_meta(
    base_model_name_or_path: str | os.PathLike,
    peft_model_name_or_path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
    *,
    name: str | None = None,
    revision: str | None = None,
    embed_dim: int | None = None,
    max_tokens: int | None = None,
    n_parameters: int | None = None,
) -> ModelMeta:
    """mteb metadata of an LLM2Vec checkpoint; results go to ``results/<name>/<revision>/``.

    ``name`` defaults to :func:`model_name_from_paths`; ``revision`` to mteb's
    ``no_revision_available``. Building it does not load the model.
    """
    if name is None:
        name = model_name_from_paths(base_model_name_or_path, peft_model_name_or_path)
    if "/" not in name:
        name = f"local/{name}"
    base = str(base_model_name_or_path)
    return ModelMeta(
        loader=None,
        name=name,
        revision=revision or "no_revision_available",
        release_date=None,
        languages=None,
        n_parameters=n_parameters,
        memory_usage_mb=None,
        max_tokens=max_tokens,
        embed_dim=embed_dim,
        license=None,
        open_weights=None,
        public_training_code=None,
        public_training_data=None,
        framework=["LLM2Vec", "PyTorch"],
        reference=None,
        similarity_fn_name=ScoringFunction.COSINE,
        use_instructions=True,
        training_datasets=None,
        adapted_from=base if peft_model_name_or_path else None,
    )


def batch_texts(batch: Mapping[str, Any]) -> list[str]:
    """The texts of one mteb batch; a corpus title is joined to its text (``"title text"``).

    mteb's corpus loader already puts ``"title text"`` in ``"text"`` (and the raw text in
    ``"body"``); a batch with a ``"title"`` but no ``"body"`` is joined here the same way.
    """
    if "text" not in batch:
        raise ValueError(f"LLM2VecMTEBEncoder encodes text only; got a batch with keys {sorted(batch)}")
    texts = [str(t) for t in batch["text"]]
    if "title" in batch and "body" not in batch:
        titles = batch["title"]
        texts = [f"{title} {text}".strip() if title else text for title, text in zip(titles, texts, strict=True)]
    return texts


class LLM2VecMTEBEncoder(AbsEncoder):
    """mteb encoder protocol over an :class:`~llm2vec.LLM2Vec` (see the module docstring).

    Args:
        model: the LLM2Vec encoder (already on its device and in its dtype).
        task_to_instructions: mteb task name -> instruction (Table 13, plus local tasks).
        model_meta: where mteb writes results; default: :func:`build_model_meta` of the
            model's ``name_or_path``.
        missing_instruction: ``"error"`` raises :class:`MissingInstructionError` for a task without
            an instruction; ``"empty"`` encodes it without one (logged once per task).
        instructions_source: named in the error message (the instructions file).
        batch_size: default batch size when mteb does not pass one.
        show_progress_bar: one progress bar per ``encode`` call, labelled with the task name.
        cache: where embeddings are looked up and written (None: no cache).
        ranks: this process among data-parallel ranks (default: the current process group's).
        chunk_texts: texts per chunk: the unit of cache writes, of the split across ranks and at
            most what an interruption loses (default ``64 * batch_size``).
        packing: ``LLM2Vec.encode``'s ``packing`` (None: packed where the attention allows).
    """

    def __init__(
        self,
        model: LLM2Vec,
        task_to_instructions: Mapping[str, str] | None = None,
        *,
        model_meta: ModelMeta | None = None,
        missing_instruction: Literal["error", "empty"] = "error",
        instructions_source: str | os.PathLike | None = None,
        batch_size: int = 32,
        show_progress_bar: bool = True,
        cache: EmbeddingCache | None = None,
        ranks: Ranks | None = None,
        chunk_texts: int | None = None,
        packing: bool | None = None,
    ) -> None:
        if chunk_texts is not None and chunk_texts < 1:
            raise ValueError(f"chunk_texts must be positive, got {chunk_texts}")
        if missing_instruction not in ("error", "empty"):
            raise ValueError(f"missing_instruction must be 'error' or 'empty', got {missing_instruction!r}")
        self.model = model
        self.task_to_instructions = dict(task_to_instructions or {})
        self.missing_instruction = missing_instruction
        self.instructions_source = instructions_source
        self.batch_size = batch_size
        self.show_progress_bar = show_progress_bar
        self.cache = cache
        self.ranks = ranks if ranks is not None else Ranks.current()
        self.chunk_texts = chunk_texts
        self.packing = packing
        #: texts embedded and texts read from the cache, over the encoder's life
        self.counts = {"embedded": 0, "cached": 0}
        self._warned: set[str] = set()
        if model_meta is None:
            config = getattr(model.model, "config", None)
            model_meta = build_model_meta(
                getattr(config, "name_or_path", None) or "llm2vec",
                embed_dim=getattr(config, "hidden_size", None),
                max_tokens=model.max_length,
            )
        self.mteb_model_meta = model_meta

    # ------------------------------------------------------------------ instructions
    def task_instruction(self, task_metadata: TaskMetadata) -> str:
        """The task's instruction, formatted (ends with a colon); ``""`` if missing and allowed."""
        name = task_metadata.name
        if name in self.task_to_instructions:
            return format_instruction(self.task_to_instructions[name])
        if self.missing_instruction == "error":
            where = f" in {self.instructions_source}" if self.instructions_source else ""
            raise MissingInstructionError(f"no instruction{where} for task {name}")
        if name not in self._warned:
            self._warned.add(name)
            logger.warning("no instruction for task %s: encoding it without one", name)
        return ""

    def instruction_for(self, task_metadata: TaskMetadata, prompt_type: PromptType | None) -> str:
        """The instruction for one ``encode`` call: none for documents, the task's otherwise."""
        if prompt_type == PromptType.document:
            return ""
        return self.task_instruction(task_metadata)

    # ------------------------------------------------------------------ encoding
    def encode(
        self,
        inputs: DataLoader[Any],
        *,
        task_metadata: TaskMetadata,
        hf_split: str,
        hf_subset: str,
        prompt_type: PromptType | None = None,
        **kwargs: Any,
    ) -> np.ndarray:
        """Embeddings (n, hidden) float32 of every text in ``inputs``, in order."""
        instruction = self.instruction_for(task_metadata, prompt_type)
        texts = [text for batch in inputs for text in batch_texts(batch)]
        return self.encode_texts(
            texts,
            instruction,
            batch_size=int(kwargs.get("batch_size") or self.batch_size),
            description=self._description(task_metadata, hf_split, hf_subset, prompt_type),
            show_progress_bar=bool(kwargs.get("show_progress_bar", self.show_progress_bar)) and self.show_progress_bar,
        )

    def encode_texts(
        self,
        texts: Sequence[str],
        instruction: str = "",
        *,
        batch_size: int | None = None,
        description: str = "Encoding",
        show_progress_bar: bool | None = None,
    ) -> np.ndarray:
        """Embed ``texts`` with one ``instruction`` (``""`` for none), in input order (float32).

        Identical texts are embedded once; texts in the cache are read; the rest are embedded in
        chunks, longest first, each written to the cache as soon as it is done.
        """
        batch_size = batch_size or self.batch_size
        show = self.show_progress_bar if show_progress_bar is None else show_progress_bar
        keys = [text_key(instruction, text) for text in texts]
        first: dict[bytes, int] = {}
        for index, key in enumerate(keys):
            first.setdefault(key, index)
        unique = list(first.values())
        found = self._cached(unique, keys)
        missing = [i for i in unique if i not in found]
        missing.sort(key=lambda i: (-len(texts[i]), i))
        self.counts["cached"] += len(found)
        self.counts["embedded"] += len(missing)
        chunk_texts = self.chunk_texts or 64 * batch_size
        progress = tqdm(total=len(missing), desc=description, disable=not show or not missing)
        for start in range(0, len(missing), chunk_texts):
            chunk = missing[start : start + chunk_texts]
            found.update(self._embed_chunk(chunk, texts, instruction, batch_size))
            if self.cache is not None and self.ranks.is_main:
                self.cache.put([keys[i] for i in chunk], np.stack([found[i] for i in chunk]))
            progress.update(len(chunk))
        progress.close()
        if not texts:
            return np.asarray(self.model.encode([], show_progress_bar=False, convert_to_numpy=True), dtype=np.float32)
        return np.stack([found[first[key]] for key in keys]).astype(np.float32, copy=False)

    def _cached(self, unique: list[int], keys: list[bytes]) -> dict[int, np.ndarray]:
        """The cached embeddings of ``unique`` (indices), the same on every rank.

        Rank 0 decides what is cached. Other ranks read the same folder (a shared file system)
        and receive from rank 0 only what they cannot read themselves.
        """
        if self.cache is None:
            return {}
        if self.ranks.is_main:
            positions = self.cache.get([keys[i] for i in unique])
            found = {unique[p]: vector for p, vector in positions.items()}
        else:
            found = {}
        if not self.ranks.parallel:
            return found
        cached = set(self.ranks.broadcast(sorted(found)))
        if not self.ranks.is_main:
            self.cache.refresh()
            wanted = sorted(cached)
            positions = self.cache.get([keys[i] for i in wanted])
            found = {wanted[p]: vector for p, vector in positions.items()}
        lacking = sorted(set().union(*self.ranks.gather(sorted(cached - set(found)))))
        if lacking:
            sent = self.ranks.broadcast({i: found[i] for i in lacking} if self.ranks.is_main else None)
            found.update(sent)
        return found

    def _embed_chunk(
        self, chunk: list[int], texts: Sequence[str], instruction: str, batch_size: int
    ) -> dict[int, np.ndarray]:
        """``{index: embedding}`` of the texts of ``chunk``; with several ranks each embeds a share."""
        mine = chunk
        if self.ranks.parallel:
            lengths = counted_in_parallel(self.ranks, [[instruction, texts[i]] for i in chunk], self.model.token_counts)
            shares = split_by_tokens(lengths, self.ranks.world_size)
            mine = [chunk[j] for j in shares[self.ranks.rank]]
        embeddings = self.model.encode(
            [[instruction, texts[i]] for i in mine],
            batch_size=batch_size,
            show_progress_bar=False,
            convert_to_numpy=True,
            packing=self.packing,
        )
        result = {}
        for indices, rows in self.ranks.gather((mine, np.asarray(embeddings, dtype=np.float32))):
            result.update(zip(indices, rows))
        return result

    @staticmethod
    def _description(
        task_metadata: TaskMetadata, hf_split: str, hf_subset: str, prompt_type: PromptType | None
    ) -> str:
        parts = [task_metadata.name]
        if hf_subset and hf_subset != "default":
            parts.append(hf_subset)
        if prompt_type is not None:
            parts.append(prompt_type.value)
        return " ".join(parts)
