"""Masked next-token prediction (MNTP): llm2vec's first step, teaching a decoder to use bidirectional attention.

A fraction of the tokens is masked; the model attends in both directions and predicts each masked
token from the hidden state of the position *before* it, through its own language-model head
(the causal-LM loss with labels only at masked positions: transformers shifts them by one). A LoRA
adapter is trained on the decoder body alone, and saved as McGill-NLP publishes MNTP models: the
adapter (keys of the body, so it applies to ``AutoModel``), the tokenizer and the base's
``config.json`` with its name, without ``llm2vec_config.json``. ``LLM2Vec.from_pretrained`` of
such a folder gives llm2vec's encoder: bidirectional, mean pooling, llm2vec's tokenization.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from torch import nn
from transformers import AutoModelForCausalLM, AutoTokenizer

from llm2vec.llm2vec import hf_loading_kwargs, set_bidirectional_attention
from llm2vec.llm2vec_contrastive import LoraSettings, load_adapter_weights
from llm2vec.model_sources import check_source

logger = logging.getLogger(__name__)

#: what llm2vec's ``mask_token_type`` names: the token put in place of a masked one
MASK_TOKEN_TYPES = ("blank", "eos", "mask")


def set_mask_token(tokenizer: Any, mask_token_type: str) -> int:
    """Give ``tokenizer`` the mask token llm2vec uses for ``mask_token_type``; return its id.

    ``blank`` is ``"_"`` (llm2vec's default), ``eos`` the EOS token, ``mask`` a new ``<mask>``
    token (the model's embeddings must then grow: :meth:`LLM2VecMNTP.from_pretrained` does it).
    A tokenizer that has a mask token keeps it, as in llm2vec.
    """
    if mask_token_type not in MASK_TOKEN_TYPES:
        raise ValueError(f"mask_token_type must be one of {list(MASK_TOKEN_TYPES)}, got {mask_token_type!r}")
    if tokenizer.mask_token is None:
        if mask_token_type == "mask":
            tokenizer.add_special_tokens({"mask_token": "<mask>"})
        else:
            tokenizer.mask_token = "_" if mask_token_type == "blank" else tokenizer.eos_token
    mask_id = tokenizer.mask_token_id
    if mask_id is None or mask_id == tokenizer.unk_token_id:
        raise ValueError(f"the tokenizer has no single token for the mask {tokenizer.mask_token!r}; "
                         "choose mask_token_type 'eos' or 'mask'")
    return int(mask_id)


class LLM2VecMNTP(nn.Module):
    """A causal LM with bidirectional attention, trained by MNTP through a LoRA adapter on its body.

    Args:
        model: an ``AutoModelForCausalLM`` (its attention is made bidirectional here).
        tokenizer: its tokenizer, with the mask token set (:func:`set_mask_token`).
        name_or_path: the base model's name, written into the saved ``config.json`` (llm2vec's
            prompt format follows it).
    """

    def __init__(self, model: nn.Module, tokenizer: Any, name_or_path: str) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.name_or_path = name_or_path
        set_bidirectional_attention(self.model, True)

    @classmethod
    def from_pretrained(cls, base_model_name_or_path: str | os.PathLike, mask_token_type: str = "blank",
                        **hf_kwargs: Any) -> LLM2VecMNTP:
        """Load a base causal LM and its tokenizer, with llm2vec's mask token."""
        check_source(base_model_name_or_path, "base model")
        hf_kwargs = hf_loading_kwargs(hf_kwargs)
        tokenizer = AutoTokenizer.from_pretrained(base_model_name_or_path)
        if tokenizer.pad_token is None:  # blocks have one length, but the collator pads by the tokenizer
            tokenizer.pad_token = tokenizer.eos_token
        set_mask_token(tokenizer, mask_token_type)
        model = AutoModelForCausalLM.from_pretrained(base_model_name_or_path, **hf_kwargs)
        if len(tokenizer) > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(tokenizer))
        return cls(model, tokenizer, str(base_model_name_or_path))

    # ------------------------------------------------------------------ the body and its adapter
    @property
    def body(self) -> nn.Module:
        """The decoder without the language-model head (what the adapter is trained on)."""
        return getattr(self.model, self.model.base_model_prefix)

    def add_lora(self, settings: LoraSettings | None = None) -> None:
        """Wrap the body in a fresh LoRA adapter; every other parameter (the head too) is frozen."""
        if hasattr(self.body, "peft_config"):
            raise ValueError("the body already has a LoRA adapter")
        settings = settings if settings is not None else LoraSettings()
        config = LoraConfig(r=settings.lora_r, lora_alpha=settings.alpha, lora_dropout=settings.lora_dropout,
                            target_modules=list(settings.lora_target_modules), bias="none")
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        setattr(self.model, self.model.base_model_prefix, get_peft_model(self.body, config))

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs: dict[str, Any] | None = None,
                                        every_n_layers: int = 1, offload: bool = False) -> None:
        """Recompute decoder activations in backward (the Trainer calls this for ``activation_checkpointing``)."""
        kwargs = {"use_reentrant": False, **(activation_checkpointing_kwargs or {})}
        self.model.activation_checkpointing_enable(kwargs, every_n_layers=every_n_layers, offload=offload)
        self.model.enable_input_require_grads()

    def activation_checkpointing_disable(self) -> None:
        self.model.activation_checkpointing_disable()

    # ------------------------------------------------------------------ loss
    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor,
                attention_mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """The MNTP loss: cross-entropy of each masked token (``labels`` != -100) predicted from
        the position before it; ``labels`` hold the original ids of the masked tokens.

        The language-model head runs only at the positions that predict a masked token (a fifth
        of them at llm2vec's ``mlm_probability``), not over every position as the causal-LM
        forward would: the head's vocabulary-sized output is the largest tensor of the step.
        """
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        targets = labels[:, 1:]
        predicting = targets != -100
        if not predicting.any():  # nothing masked in this batch: a zero that keeps the graph
            return {"loss": hidden.sum() * 0.0}
        logits = self.model.get_output_embeddings()(hidden[:, :-1][predicting])
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap:  # Gemma-2 caps its logits; the causal-LM forward does it after the head
            logits = torch.tanh(logits / cap) * cap
        return {"loss": F.cross_entropy(logits.float(), targets[predicting])}

    # ------------------------------------------------------------------ checkpoints
    def save(self, output_dir: str | os.PathLike, state_dict: Mapping[str, torch.Tensor] | None = None) -> Path:
        """Write the body's adapter, the tokenizer and the named ``config.json`` (McGill-NLP's MNTP layout).

        ``state_dict`` (this module's keys) replaces the live weights, for trainers that gather
        sharded parameters before saving.
        """
        output = Path(output_dir)
        output.mkdir(parents=True, exist_ok=True)
        prefix = f"model.{self.model.base_model_prefix}."
        body_state = None if state_dict is None else {
            k.removeprefix(prefix): v for k, v in state_dict.items() if k.startswith(prefix)}
        self.body.save_pretrained(output, state_dict=body_state)
        self.tokenizer.save_pretrained(output)
        config = self.model.config.to_dict()
        config["_name_or_path"] = self.name_or_path
        (output / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        return output

    def load_checkpoint_weights(self, folder: str | os.PathLike) -> None:
        """Load the adapter a ``save`` wrote into ``folder`` (to resume training)."""
        load_adapter_weights(self.body, folder, "an MNTP checkpoint")
