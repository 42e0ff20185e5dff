"""LLM2VecContrastive: the Stage II model, contrastive fine-tuning with LoRA.

An ``LLM2Vec`` encoder over the Stage I checkpoint (Anchor) or the original model (Baseline) with
a fresh LoRA adapter (:class:`LoraSettings`) and the InfoNCE loss over in-batch and hard negatives
(``HardNegativeNLLLoss``) computed inside ``forward``, so DDP, FSDP and DeepSpeed see every
parameter use. Checkpoints hold the adapter, the tokenizer and ``llm2vec_config.json`` and load
with ``LLM2Vec.from_pretrained(base, peft_model_name_or_path=checkpoint)`` (a base that had an
adapter A merged in: ``peft_model_name_or_path=[A, checkpoint]``); without LoRA
(``train_full_parameters``, the release's accidental behaviour) they are full model folders.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, PeftModel, get_peft_model
from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file
from torch import nn
from transformers.utils import ModelOutput

from llm2vec.llm2vec import LLM2Vec
from llm2vec.loss.distributed import world_size
from llm2vec.loss.gradient_cache import cached_loss
from llm2vec.loss.hard_negative_nll_loss import DEFAULT_SCALE, HardNegativeNLLLoss
from llm2vec.model_config import LLM2VecConfig

logger = logging.getLogger(__name__)

#: The projections LoRA adapts in the paper (Llama, Qwen2 and Mistral all name them so).
LORA_TARGET_MODULES: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
ADAPTER_WEIGHTS_NAME = "adapter_model.safetensors"


@dataclass
class LoraSettings:
    """The fresh LoRA adapter of Stage II (paper: r 16, alpha 32, dropout 0.05, every projection).

    The Stage II training config's keys of the same names (``experiments/run_stage_II.py`` parses
    them into this class).
    """

    lora_r: int = field(default=16, metadata={"help": "LoRA rank (paper 16)."})
    lora_alpha: int | None = field(default=None, metadata={"help": "LoRA alpha; null means 2 * lora_r."})
    lora_dropout: float = field(default=0.05, metadata={"help": "Dropout on the LoRA input (paper 0.05)."})
    lora_target_modules: list[str] = field(
        default_factory=lambda: list(LORA_TARGET_MODULES), metadata={"help": "Linear layers that get an adapter."}
    )

    def __post_init__(self) -> None:
        def positive_int(value: Any) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 1

        if not positive_int(self.lora_r):
            raise ValueError(f"lora_r must be a positive integer, got {self.lora_r!r}")
        if self.lora_alpha is not None and not positive_int(self.lora_alpha):
            raise ValueError(f"lora_alpha must be a positive integer or null, got {self.lora_alpha!r}")
        dropout = self.lora_dropout
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0.0 <= dropout < 1.0:
            raise ValueError(f"lora_dropout must be a number in [0, 1), got {dropout!r}")
        targets = self.lora_target_modules
        if not targets or not all(isinstance(name, str) and name for name in targets):
            raise ValueError(f"lora_target_modules must be a non-empty list of module names, got {targets!r}")

    @property
    def alpha(self) -> int:
        return 2 * self.lora_r if self.lora_alpha is None else self.lora_alpha


@dataclass
class ContrastiveOutput(ModelOutput):
    """Stage II loss and the in-batch top-1 accuracy of query -> own positive (over all candidates)."""

    loss: torch.Tensor | None = None
    accuracy: torch.Tensor | None = None


class LLM2VecContrastive(LLM2Vec):
    """An ``LLM2Vec`` that computes the contrastive Stage II loss in ``forward``.

    Args:
        model: the transformer without its head (``AutoModel``).
        tokenizer: its tokenizer.
        config: encoder settings (pooling, lengths, template).
        loss_scale: 1 / temperature of the cosine similarities (release: 50, paper text: 20).
    """

    def __init__(
        self, model: nn.Module, tokenizer: Any, config: LLM2VecConfig, loss_scale: float = DEFAULT_SCALE
    ) -> None:
        super().__init__(model, tokenizer, config)
        self.loss_fn = HardNegativeNLLLoss(loss_scale)
        self.gradient_cache_mini_batch_size: int | None = None

    # ------------------------------------------------------------------ training setup
    @property
    def loss_scale(self) -> float:
        return self.loss_fn.scale

    @loss_scale.setter
    def loss_scale(self, scale: float) -> None:
        self.loss_fn = HardNegativeNLLLoss(scale)

    @property
    def has_adapter(self) -> bool:
        return isinstance(self.model, PeftModel)

    def add_lora(self, settings: LoraSettings | None = None, init_lora_weights: bool | str = True) -> None:
        """Wrap the transformer in a fresh LoRA adapter; every other parameter is frozen.

        ``settings`` default to the paper's. ``init_lora_weights=False`` gives a random (non-zero)
        B, for tests.
        """
        if self.has_adapter:
            raise ValueError("the model already has a LoRA adapter; load the base with merge_peft=True first")
        settings = settings if settings is not None else LoraSettings()
        config = LoraConfig(
            r=settings.lora_r,
            lora_alpha=settings.alpha,
            lora_dropout=settings.lora_dropout,
            target_modules=list(settings.lora_target_modules),
            bias="none",
            init_lora_weights=init_lora_weights,
        )
        self.model = get_peft_model(self.model, config)
        trainable = sum(p.numel() for p in self.parameters() if p.requires_grad)
        total = sum(p.numel() for p in self.parameters())
        logger.info("LoRA r=%d alpha=%s: %d of %d parameters train", settings.lora_r, settings.alpha, trainable, total)

    def train_full_parameters(self) -> None:
        """Train every weight without LoRA (the release's accidental Stage II; off in the paper)."""
        if self.has_adapter:
            raise ValueError("full-parameter training and a LoRA adapter exclude each other")
        for parameter in self.parameters():
            parameter.requires_grad_(True)
        logger.warning("Stage II trains all parameters (full_parameter=true): not the paper's LoRA recipe")

    # ------------------------------------------------------------------ loss
    def forward(  # type: ignore[override]
        self,
        q_features: dict[str, torch.Tensor],
        d_features: dict[str, torch.Tensor],
        n_features: dict[str, torch.Tensor] | None = None,
    ) -> ContrastiveOutput:
        """Contrastive loss of queries against their positives, the other positives and hard negatives.

        With ``gradient_cache_mini_batch_size`` set (and gradients enabled), the loss is the same but
        the encoder runs on that many rows at a time (see ``llm2vec.loss.gradient_cache``).
        """
        groups = [q_features, d_features] + ([n_features] if n_features is not None else [])
        if self.gradient_cache_mini_batch_size is not None and torch.is_grad_enabled():
            if world_size() > 1:
                raise ValueError(
                    "gradient_cache_mini_batch_size is for single-process training (one GPU reproducing a "
                    "large contrastive batch); with several processes raise per-device batch or GPUs instead"
                )
            loss, scores = cached_loss(self.embed, groups, self._loss_and_scores, self.gradient_cache_mini_batch_size)
        else:
            loss, scores = self._loss_and_scores(*(self.embed(group) for group in groups))
        labels = torch.arange(scores.shape[0], device=scores.device)
        accuracy = (scores.detach().argmax(dim=-1) == labels).float().mean()
        return ContrastiveOutput(loss=loss, accuracy=accuracy)

    def _loss_and_scores(
        self, q_reps: torch.Tensor, d_reps: torch.Tensor, n_reps: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        scores, labels = self.loss_fn.scores(q_reps, d_reps, n_reps)
        return self.loss_fn.loss_from_scores(scores, labels), scores

    # ------------------------------------------------------------------ checkpoints
    def load_checkpoint_weights(self, folder: str | os.PathLike) -> None:
        """Restore the weights ``save`` wrote: exactly the adapter's tensors, or the full model."""
        if not self.has_adapter:
            super().load_checkpoint_weights(folder)
            return
        load_adapter_weights(self.model, folder, "a Stage II LoRA checkpoint")


def load_adapter_weights(model: nn.Module, folder: str | os.PathLike, what: str) -> None:
    """Load ``folder``'s adapter tensors into the PEFT ``model``: exactly its keys, in its shapes.

    Raises:
        FileNotFoundError: ``folder`` has no adapter file (it is not ``what``).
        ValueError: the adapter's keys or shapes differ from the model's (another rank?).
    """
    path = Path(folder) / ADAPTER_WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{folder} has no {ADAPTER_WEIGHTS_NAME}: not {what}")
    state = load_file(path)
    expected = get_peft_model_state_dict(model)
    if set(state) != set(expected):
        missing, unexpected = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise ValueError(
            f"adapter in {folder} does not match the model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    resized = sorted(k for k, v in state.items() if v.shape != expected[k].shape)
    if resized:
        raise ValueError(
            f"adapter in {folder} does not match the model (another LoRA rank?): {resized[0]} has shape "
            f"{tuple(state[resized[0]].shape)}, the model {tuple(expected[resized[0]].shape)}"
        )
    result = set_peft_model_state_dict(model, state)
    if result.unexpected_keys:
        raise ValueError(f"adapter in {folder} has keys the model lacks: {sorted(result.unexpected_keys)[:5]}")
