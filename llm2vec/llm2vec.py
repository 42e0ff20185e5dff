"""LLM2Vec: a decoder-only language model used as a text encoder.

Loads a base model (and optionally a chain of PEFT adapters), wraps texts in the model's prompt
template, tokenizes with left padding, runs the transformer with position ids taken from the
attention mask (so a text's embedding does not depend on its batch mates) and pools the final
hidden states. Every stage of the project (Stage I, Stage II, evaluation) goes through this class.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Sequence
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm
from transformers import AutoModel, AutoTokenizer

from llm2vec.checkpoint_origin import LLM2VEC_DEFAULTS, LoadChain, origin_of, resolve_chain, stored_settings
from llm2vec.model_config import CONFIG_NAME, LLM2VecConfig
from llm2vec.model_sources import (
    ModelSourceError,
    check_adapter_base,
    check_source,
    explain_load_error,
    write_adapter_base,
)
from llm2vec.packing import (
    PackedSequences,
    install_varlen_attention,
    packed_call,
    pool_packed,
    supports_packing,
    token_budget_batches,
)
from llm2vec.pooling import pool, position_ids_from_mask
from llm2vec.prompts import get_template, llm2vec_template
from llm2vec.tokenization import SEPARATOR, EmbeddingTokenizer
from llm2vec.weights import load_into, read_safetensors_folder

_CONFIG_KEYS = {f.name for f in fields(LLM2VecConfig)}
#: the settings llm2vec's constructor takes by keyword, in its order
_LLM2VEC_CONSTRUCTOR_KEYS = ("pooling_mode", "max_length", "doc_max_length", "skip_instruction")

logger = logging.getLogger(__name__)


def hf_loading_kwargs(hf_kwargs: dict[str, Any]) -> dict[str, Any]:
    """Accept llm2vec-era ``torch_dtype`` and ``"auto"``-free dtype names for transformers 5."""
    kwargs = dict(hf_kwargs)
    if "torch_dtype" in kwargs:
        if "dtype" in kwargs:
            raise ValueError("pass either dtype or torch_dtype, not both")
        kwargs["dtype"] = kwargs.pop("torch_dtype")
    if isinstance(kwargs.get("dtype"), str) and kwargs["dtype"] != "auto":
        kwargs["dtype"] = getattr(torch, kwargs["dtype"])
    return kwargs


def set_bidirectional_attention(model: nn.Module, bidirectional: bool = True) -> int:
    """Make every attention layer of ``model`` attend in both directions (or causally again).

    Transformers builds a bidirectional mask when ``config.is_causal`` is False, and the SDPA and
    flash-attention kernels read ``is_causal`` from each attention module, so both are switched.
    Returns how many modules were switched; 0 means the architecture does not expose the flag.
    """
    switched = 0
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and hasattr(config, "model_type"):
            config.is_causal = not bidirectional
        if hasattr(module, "is_causal") and isinstance(module.is_causal, bool):
            module.is_causal = not bidirectional
            switched += 1
    if bidirectional and switched == 0:
        raise ValueError(
            f"{type(model).__name__} has no attention module with an 'is_causal' flag; "
            "bidirectional attention is not supported for this architecture"
        )
    return switched


class PreparedText(str):
    """A text as ``prepare_for_tokenization`` wrapped it, remembering the text it wrapped."""

    def __new__(cls, wrapped: str, unwrapped: str) -> PreparedText:
        prepared = super().__new__(cls, wrapped)
        prepared.unwrapped = unwrapped
        return prepared


def is_bidirectional(model: nn.Module) -> bool:
    """Whether ``model``'s attention modules attend in both directions (``is_causal`` False)."""
    flags = [m.is_causal for m in model.modules() if isinstance(getattr(m, "is_causal", None), bool)]
    return bool(flags) and not any(flags)


def _model_type(model: nn.Module) -> str | None:
    config = getattr(model, "config", None)
    return getattr(config, "model_type", None)


class LLM2Vec(nn.Module):
    """A text encoder over a decoder-only transformer.

    Args:
        model: the transformer without its language-model head (``AutoModel``), possibly PEFT-wrapped.
        tokenizer: its tokenizer; padding is set to the left and a missing pad token to EOS.
        config: pooling, lengths, template and the other settings saved in ``llm2vec_config.json``;
            without one, this project's defaults, and the attention ``model`` has now (a
            bidirectional model stays bidirectional, as with llm2vec's constructor).
        pooling_mode, max_length, doc_max_length, skip_instruction: llm2vec's constructor keywords
            (``pooling_mode`` may also come third, as in llm2vec); they override ``config``.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        config: LLM2VecConfig | str | None = None,
        max_length: int | None = None,
        doc_max_length: int | None = None,
        skip_instruction: bool | None = None,
        *,
        pooling_mode: str | None = None,
    ) -> None:
        super().__init__()
        if isinstance(config, str):  # llm2vec's LLM2Vec(model, tokenizer, "mean", ...)
            if pooling_mode is not None:
                raise TypeError("pooling_mode given twice: as the third argument and as a keyword")
            config, pooling_mode = None, config
        if config is None:
            config = LLM2VecConfig(enable_bidirectional=is_bidirectional(model))
        given = dict(zip(_LLM2VEC_CONSTRUCTOR_KEYS, (pooling_mode, max_length, doc_max_length, skip_instruction)))
        config = replace(config, **{k: v for k, v in given.items() if v is not None})
        llm2vec_format = config.tokenization == "llm2vec" and not config.release_compat
        if llm2vec_format and config.llm2vec_model_name is None:  # recorded, so that a save keeps the format
            name = getattr(getattr(model, "config", None), "_name_or_path", None)
            config = replace(config, llm2vec_model_name=str(name or ""))
        self.model = model
        self.tokenizer = tokenizer
        self.llm2vec_config = config
        #: the base model and adapters this encoder was loaded from (set by ``from_pretrained``)
        self.loaded_from: list[str] = []
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None or config.release_compat or config.tokenization == "llm2vec":
            # The release and llm2vec pad with EOS; the release's label masking relies on pad == eos.
            tokenizer.pad_token = tokenizer.eos_token
        if llm2vec_format:
            template = llm2vec_template(config.llm2vec_model_name, config.pooling_mode, _model_type(model))
        else:
            template = get_template(
                "llama3" if config.release_compat else config.prompt_template,
                _model_type(model),
                tokenizer,
                allow_missing_special_tokens=config.release_compat,
            )
        self.template = template
        self.embedding_tokenizer = EmbeddingTokenizer(
            tokenizer, template, config.max_length,
            llm2vec_style=config.release_compat or config.tokenization == "llm2vec",
        )
        # Always set, both ways: a checkpoint saved bidirectional stores is_causal=false in its config.
        set_bidirectional_attention(self.model, config.enable_bidirectional)

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_pretrained(
        cls,
        base_model_name_or_path: str | os.PathLike,
        peft_model_name_or_path: str | os.PathLike | Sequence[str | os.PathLike] | None = None,
        merge_peft: bool = False,
        enable_bidirectional: bool | None = None,
        pooling_mode: str | None = None,
        max_length: int | None = None,
        doc_max_length: int | None = None,
        skip_instruction: bool | None = None,
        prompt_template: str | None = None,
        allow_base_mismatch: bool = False,
        **kwargs: Any,
    ) -> LLM2Vec:
        """Load a base model, optionally apply PEFT adapters, and read ``llm2vec_config.json``.

        Settings come, first found wins, from the explicit arguments, the last adapter's
        ``llm2vec_config.json``, the base checkpoint's, then the defaults (``eos_token`` pooling,
        ``max_length`` 512, ``doc_max_length`` 400, ``skip_instruction`` True, template detected).
        A checkpoint made by McGill-NLP's llm2vec (see :mod:`llm2vec.checkpoint_origin`) gets
        llm2vec's defaults instead (bidirectional attention, mean pooling, llm2vec's tokenization),
        said once in the log and written into the next ``save``.
        Further keyword arguments that name ``LLM2VecConfig`` fields (``alpha``, ``release_compat``)
        are settings too; the rest (``dtype``, ``attn_implementation``, ``device_map``...) go to
        transformers. ``base_model_name_or_path`` may be an adapter repository (llm2vec's MNTP
        repositories): its adapter is applied, and merged, on the base it names.
        ``peft_model_name_or_path`` may be a list: every adapter but the last is merged
        before the next is loaded; the last is merged too when ``merge_peft`` is set. An adapter
        that records another base than the one given is refused unless ``allow_base_mismatch``.

        Raises:
            ModelSourceError: a path that does not exist, an adapter of another base, an
                unreadable weight file or an adapter whose shapes do not fit (the message names it).
        """
        explicit = {
            "enable_bidirectional": enable_bidirectional,
            "pooling_mode": pooling_mode,
            "max_length": max_length,
            "doc_max_length": doc_max_length,
            "skip_instruction": skip_instruction,
            "prompt_template": prompt_template,
        }
        explicit.update({k: kwargs.pop(k) for k in list(kwargs) if k in _CONFIG_KEYS})
        check_source(base_model_name_or_path, "base model")
        chain = resolve_chain(base_model_name_or_path, cls._adapter_paths(peft_model_name_or_path))
        sources = chain.sources
        for index, adapter in enumerate(chain.adapters):
            check_source(adapter, "adapter")
            check_adapter_base(adapter, sources[: index + 1], allow_base_mismatch)
        config, chosen = cls._resolve(chain, explicit)
        if chosen:
            logger.warning(
                "%s was made by McGill-NLP's llm2vec (its llm2vec_config.json holds none of this project's settings); "
                "using llm2vec's defaults where it says nothing: %s. Pass them to from_pretrained to choose otherwise; "
                "save() writes them into llm2vec_config.json.",
                " + ".join(sources), ", ".join(f"{k}={v!r}" for k, v in chosen.items()),
            )

        tokenizer = AutoTokenizer.from_pretrained(chain.tokenizer_source)
        try:
            model = cls._load_model(chain.base, config, hf_loading_kwargs(kwargs))
            if getattr(model, "_hf_peft_config_loaded", False):
                raise ModelSourceError(
                    f"{chain.base} loaded with an adapter already inside it; pass the adapter folder "
                    "itself (its base is read from adapter_config.json) so that no adapter replaces another"
                )
            for index, adapter in enumerate(chain.adapters):
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, str(adapter))
                if index < len(chain.adapters) - 1 or merge_peft:
                    model = model.merge_and_unload()
        except Exception as error:
            explained = explain_load_error(error, sources)
            if explained is None:
                raise
            raise explained from error
        if config.tokenization == "llm2vec":
            # llm2vec chooses its prompt format by this name, taken as llm2vec takes it
            model.config._name_or_path = chain.name_or_path
        encoder = cls._from_loaded(model, tokenizer, config)
        encoder.loaded_from = sources
        return encoder

    @staticmethod
    def resolve_config(
        base_model_name_or_path: str | os.PathLike, adapters: Sequence[str | os.PathLike] = (), **explicit: Any
    ) -> LLM2VecConfig:
        """The settings ``from_pretrained`` uses: ``explicit`` ones (None = not given), else the last
        adapter's ``llm2vec_config.json``, the base's, then the defaults (llm2vec's for a checkpoint
        of llm2vec, this project's otherwise). Loads no weights."""
        chain = resolve_chain(base_model_name_or_path, [str(a) for a in adapters])
        return LLM2Vec._resolve(chain, explicit)[0]

    @staticmethod
    def _resolve(chain: LoadChain, explicit: dict[str, Any]) -> tuple[LLM2VecConfig, dict[str, Any]]:
        """The settings, and those chosen because the checkpoint comes from llm2vec."""
        stored_by_source = [stored_settings(source) for source in chain.sources]
        settings: dict[str, Any] = {}
        for source, stored in zip(chain.sources, stored_by_source):
            if stored is not None:
                where = Path(source) / CONFIG_NAME if Path(source).is_dir() else f"{source}/{CONFIG_NAME}"
                settings.update(LLM2VecConfig.checked(stored, where))
        given = {k: v for k, v in explicit.items() if v is not None}
        chosen: dict[str, Any] = {}
        if origin_of(stored_by_source) == "llm2vec":
            chosen = {k: v for k, v in LLM2VEC_DEFAULTS.items() if k not in settings and k not in given}
        return LLM2VecConfig(**{**chosen, **settings, **given}), chosen

    @staticmethod
    def _adapter_paths(peft: str | os.PathLike | Sequence[str | os.PathLike] | None) -> list[str]:
        if peft is None:
            return []
        if isinstance(peft, (str, os.PathLike)):
            return [str(peft)]
        return [str(p) for p in peft]

    @classmethod
    def _load_model(cls, path: str | os.PathLike, config: LLM2VecConfig, hf_kwargs: dict[str, Any]) -> nn.Module:
        """The transformer without its head; subclasses that need the head load more."""
        return AutoModel.from_pretrained(path, **hf_kwargs)

    @classmethod
    def _from_loaded(cls, model: nn.Module, tokenizer: Any, config: LLM2VecConfig) -> LLM2Vec:
        return cls(model, tokenizer, config)

    # ------------------------------------------------------------------ settings
    @property
    def pooling_mode(self) -> str:
        return self.llm2vec_config.pooling_mode

    @property
    def max_length(self) -> int:
        return self.llm2vec_config.max_length

    @property
    def doc_max_length(self) -> int:
        return self.llm2vec_config.doc_max_length

    @property
    def skip_instruction(self) -> bool:
        return self.llm2vec_config.skip_instruction

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def activation_checkpointing_enable(
        self,
        activation_checkpointing_kwargs: dict[str, Any] | None = None,
        every_n_layers: int = 1,
        offload: bool = False,
    ) -> None:
        """Recompute decoder activations in backward (the Trainer calls this for ``activation_checkpointing``)."""
        kwargs = {"use_reentrant": False, **(activation_checkpointing_kwargs or {})}
        self.model.activation_checkpointing_enable(kwargs, every_n_layers=every_n_layers, offload=offload)
        if hasattr(self.model, "enable_input_require_grads"):
            # Frozen embeddings under LoRA would otherwise cut the checkpointed graph.
            self.model.enable_input_require_grads()

    def activation_checkpointing_disable(self) -> None:
        self.model.activation_checkpointing_disable()

    # ------------------------------------------------------------------ encoding
    def prepare_for_tokenization(self, text: str) -> str:
        """``text`` wrapped in the prompt format (llm2vec's method of this name).

        ``tokenize`` wraps texts itself; given what this method returned, it unwraps it first, so
        llm2vec's ``tokenize([prepare_for_tokenization(t) for t in texts])`` wraps once.
        """
        return PreparedText(self.embedding_tokenizer.format(text), text)

    def tokenize(self, texts: Sequence[str], text_max_length: int | None = None) -> dict[str, torch.Tensor]:
        """``input_ids``, ``attention_mask`` and ``embed_mask`` of left-padded, templated texts."""
        texts = [t.unwrapped if isinstance(t, PreparedText) else t for t in texts]
        return self.embedding_tokenizer(texts, text_max_length=text_max_length)

    def hidden_states(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Final-layer hidden states (batch, length, hidden) of tokenized features."""
        attention_mask = features["attention_mask"]
        # The release let transformers number positions 0..L-1 through the left padding.
        positions = None if self.llm2vec_config.release_compat else position_ids_from_mask(attention_mask)
        output = self.model(
            input_ids=features["input_ids"], attention_mask=attention_mask, position_ids=positions, use_cache=False
        )
        return output.last_hidden_state

    def get_pooling(self, features: dict[str, torch.Tensor], last_hidden_states: torch.Tensor) -> torch.Tensor:
        """Pool final hidden states (batch, length, hidden) of tokenized ``features`` (llm2vec's method)."""
        return pool(
            last_hidden_states,
            features["attention_mask"],
            features.get("embed_mask"),
            self.pooling_mode,
            self.skip_instruction,
        )

    def packed_hidden_states(self, packed: PackedSequences) -> torch.Tensor:
        """Final hidden states (1, T, hidden) of a packed row; attention stays within each sample.

        :data:`~llm2vec.packing.VARLEN_SDPA` (see ``install_varlen_attention``) and flash attention
        take the sample boundaries from ``cu_seq_lens``; plain sdpa, eager and flex attention get
        transformers' block-diagonal mask, correct but quadratic in the row's length.
        """
        if packed.inputs_embeds is None:
            return self._run_packed_row(packed.position_ids, packed.varlen_kwargs(), input_ids=packed.input_ids)
        return self._run_packed_row(packed.position_ids, packed.varlen_kwargs(), inputs_embeds=packed.inputs_embeds)

    def _run_packed_row(
        self, position_ids: torch.Tensor, varlen: dict[str, Any], **tokens: torch.Tensor
    ) -> torch.Tensor:
        """The transformer on one packed row (``input_ids`` or ``inputs_embeds``), without a dense mask."""
        with packed_call():
            return self.model(
                **tokens, attention_mask=None, position_ids=position_ids, use_cache=False, **varlen
            ).last_hidden_state

    def embed(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled embeddings (batch, hidden) of tokenized features."""
        return self.get_pooling(features, self.hidden_states(features))

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pooled embeddings (batch, hidden) of tokenized features (same as ``embed``)."""
        return self.embed(features)

    def _as_text(self, sentence: str | Sequence[Any]) -> str:
        """One input of ``encode`` as a text, its instruction (if any) before the separator.

        A string may carry its instruction already (``"{instruction} " + SEPARATOR + text``, as the
        evaluation writes it); a pair or triple is joined that way.
        """
        if isinstance(sentence, str):
            instruction, separator, text = sentence.partition(SEPARATOR)
            if not separator:
                instruction, text = "", sentence
        elif (len(sentence) == 2 or len(sentence) == 3 and isinstance(sentence[2], int)) and all(
            isinstance(part, str) for part in sentence[:2]
        ):
            instruction, text = sentence[0], sentence[1]  # a triple's id is ignored, as llm2vec does
        else:
            raise ValueError(
                f"expected a text, an [instruction, text] pair or an [instruction, text, id] triple, got {sentence!r}"
            )
        if self.llm2vec_config.tokenization == "llm2vec":
            # llm2vec's _convert_to_str: it tests the instruction before stripping it
            text = self._cut_words(text)
            return f"{instruction.strip()} {SEPARATOR}{text}" if instruction else f"{SEPARATOR}{text}"
        if isinstance(sentence, str):
            return sentence
        instruction = instruction.strip()
        return f"{instruction} {SEPARATOR}{text}" if instruction else f"{SEPARATOR}{text}"

    def _cut_words(self, text: str) -> str:
        """llm2vec's length cap: drop whole words, in proportion, until at most ``doc_max_length`` tokens remain."""
        def count(value: str) -> int:
            return len(self.tokenizer(value, add_special_tokens=False, truncation=True,
                                      max_length=self.max_length)["input_ids"])

        length = count(text)
        while length > self.doc_max_length:
            words = text.split()
            text = " ".join(words[: int(len(words) * self.doc_max_length / length)])
            length = count(text)
        return text

    def encode(
        self,
        sentences: str | Sequence[str] | Sequence[Sequence[str]],
        batch_size: int = 32,
        show_progress_bar: bool = True,
        convert_to_numpy: bool = False,
        convert_to_tensor: bool = False,
        device: str | torch.device | None = None,
        *,
        packing: bool | None = None,
        max_batch_tokens: int | None = None,
    ) -> torch.Tensor | np.ndarray:
        """Embed texts, ``[instruction, text]`` pairs or ``[instruction, text, id]`` triples; float32, in input order.

        Each text is cut to ``doc_max_length`` tokens (whole words, as llm2vec does, under llm2vec's
        tokenization) and each row to ``max_length``. Returns a tensor (batch, hidden), or a numpy
        array with ``convert_to_numpy``; a single string or triple gives one vector.

        Batches are packed by default: the texts of a batch sit back to back in one row with
        attention kept within each text, so no token is padding, and a batch holds as many texts,
        longest first, as fit ``max_batch_tokens`` (default: ``batch_size`` times the longest
        text, the size of the largest padded batch). ``packing=False`` (and any model whose
        attention cannot take packed rows: eager, flex, or ``release_compat``) pads batches of
        ``batch_size`` texts sorted by character length, as llm2vec does. Both give the same
        embeddings up to rounding (1e-5 in float32).
        """
        # One triple is one input, as in llm2vec; two strings are two texts, not a pair.
        single = isinstance(sentences, str) or (
            len(sentences) > 0 and isinstance(sentences[0], str) and isinstance(sentences[-1], int)
        )
        texts = [self._as_text(s) for s in ([sentences] if single else sentences)]
        device = torch.device(device) if device is not None else self.device
        if device != self.device:
            self.to(device)
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        embeddings: list[torch.Tensor | None] = [None] * len(texts)
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                batches = self._packed_batches if self._packs(packing) else self._padded_batches
                for indices, pooled in batches(texts, batch_size, max_batch_tokens, device, show_progress_bar):
                    pooled = pooled.float().cpu()
                    for row, index in enumerate(indices):
                        embeddings[index] = pooled[row]
        finally:
            self.train(was_training)
        if not texts:
            result = torch.empty(0, self._hidden_size())
        else:
            result = torch.stack(embeddings)  # type: ignore[arg-type]
        if single:
            result = result[0]
        if convert_to_numpy and not convert_to_tensor:
            return result.numpy()
        return result

    def token_counts(self, sentences: Sequence[str] | Sequence[Sequence[str]]) -> list[int]:
        """Tokens of each input's row as ``encode`` builds it (template and cuts included)."""
        return [
            len(self.embedding_tokenizer.encode_text(self._as_text(s), self.doc_max_length).input_ids)
            for s in sentences
        ]

    def _packs(self, packing: bool | None) -> bool:
        """Whether ``encode`` packs: as asked, else whenever the model's attention allows it."""
        if packing is None:
            return supports_packing(self.model) and not self.llm2vec_config.release_compat
        if packing and self.llm2vec_config.release_compat:
            raise ValueError(
                "release_compat numbers positions through the left padding, so its embeddings depend on padding; "
                "encode it with packing=False"
            )
        return packing

    def _padded_batches(
        self, texts: list[str], batch_size: int, max_batch_tokens: int | None, device: torch.device, progress: bool
    ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Left-padded batches of ``batch_size`` texts, longest (in characters) first, as llm2vec batches."""
        if max_batch_tokens is not None:
            raise ValueError("max_batch_tokens applies to packed batches; padded batches hold batch_size texts")
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for start in tqdm(range(0, len(order), batch_size), desc="Batches", disable=not progress):
            indices = order[start : start + batch_size]
            features = self.tokenize([texts[i] for i in indices], text_max_length=self.doc_max_length)
            yield indices, self.embed({k: v.to(device) for k, v in features.items()})

    def _packed_batches(
        self, texts: list[str], batch_size: int, max_batch_tokens: int | None, device: torch.device, progress: bool
    ) -> Iterator[tuple[list[int], torch.Tensor]]:
        """Packed rows of at most ``max_batch_tokens`` tokens, texts longest (in tokens) first."""
        if not texts:
            return
        install_varlen_attention(self.model)
        encoded = [self.embedding_tokenizer.encode_text(text, self.doc_max_length) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(encoded[i].input_ids))
        lengths = [len(encoded[i].input_ids) for i in order]
        budget = max_batch_tokens if max_batch_tokens is not None else batch_size * lengths[0]
        batches = token_budget_batches(lengths, budget)
        for batch in tqdm(batches, desc="Batches", disable=not progress):
            indices = [order[position] for position in batch]
            packed = self.embedding_tokenizer.pack([encoded[i] for i in indices]).to(device)
            hidden = self.packed_hidden_states(packed)
            yield indices, pool_packed(hidden, packed, self.pooling_mode, self.skip_instruction)

    def _hidden_size(self) -> int:
        config = getattr(self.model, "config", None)
        return int(getattr(config, "hidden_size"))

    # ------------------------------------------------------------------ saving
    def save(
        self,
        output_path: str | os.PathLike,
        merge_before_save: bool = False,
        save_config: bool = True,
        *,
        state_dict: dict[str, torch.Tensor] | None = None,
    ) -> Path:
        """Write weights (or the adapter), tokenizer and ``llm2vec_config.json`` to ``output_path``.

        ``save_config=False`` leaves out ``llm2vec_config.json`` (as in llm2vec): the folder then
        reloads with the defaults, not with this encoder's settings.

        With a PEFT adapter, only the adapter is written unless ``merge_before_save``, which merges
        it into the base weights (in place: this encoder keeps the merged weights) and writes those.
        ``state_dict`` (this module's keys) replaces the live weights, for trainers that gather
        sharded parameters before saving. An adapter also records the base (and earlier adapters)
        it was loaded on (``adapter_base.json``), so that it is not applied to another.
        """
        output = Path(output_path)
        output.mkdir(parents=True, exist_ok=True)
        if merge_before_save and hasattr(self.model, "merge_and_unload"):
            self.model = self.model.merge_and_unload()
        self._save_weights(output, self._strip_prefix(state_dict, "model."))
        self._keep_llm2vec_name(output)
        self.tokenizer.save_pretrained(output)
        if save_config:
            self.llm2vec_config.save(output)
        if hasattr(self.model, "peft_config") and self.loaded_from:
            write_adapter_base(output, self.loaded_from)
        return output

    def _keep_llm2vec_name(self, output: Path) -> None:
        # llm2vec's prompt format follows the model name, which transformers 4 wrote into config.json
        # and transformers 5 does not: write it, so the saved model reloads with the same format.
        path = output / "config.json"
        name = getattr(getattr(self.model, "config", None), "_name_or_path", None)
        if self.llm2vec_config.tokenization != "llm2vec" or not path.is_file() or name is None:
            return
        stored = json.loads(path.read_text(encoding="utf-8"))
        stored["_name_or_path"] = name
        path.write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @staticmethod
    def _strip_prefix(state_dict: dict[str, torch.Tensor] | None, prefix: str) -> dict[str, torch.Tensor] | None:
        if state_dict is None:
            return None
        return {k.removeprefix(prefix): v for k, v in state_dict.items() if k.startswith(prefix)}

    def _save_weights(self, output: Path, state_dict: dict[str, torch.Tensor] | None) -> None:
        self.model.save_pretrained(output, state_dict=state_dict)

    def load_checkpoint_weights(self, folder: str | os.PathLike) -> None:
        """Load the weights a ``save`` of this encoder wrote into ``folder`` (to resume training)."""
        state = read_safetensors_folder(folder)
        load_into(self.model, state)
