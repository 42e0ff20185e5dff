"""LLM2Vec_q2d_d2q: the Stage I model, bidirectional reconstruction through anchor embeddings.

The anchor of a text is its EOS-pooled final hidden state. EBQ2D puts the query's anchor in front
of the document's token embeddings and teacher-forces the document; EBD2Q does the same with the
document's anchor and the query. ``loss = alpha * q2d + (1 - alpha) * d2q`` (paper: alpha 0.2).
The whole loss is computed in ``forward`` so DDP, FSDP and DeepSpeed see every parameter use.

Default semantics (the paper's ``Dec([e_Q, E_D])``): the anchor sits immediately before the first
real token of its row, positions count real tokens only, and the decoder attends to the whole
counterpart (BOS, template and instruction included), so a row's loss does not depend on its batch.
``release_compat`` reproduces the release instead: the anchor goes in front of the left padding
with positions 0..L, and the decoder attends with ``[1 ; embed_mask]``.

Targets are the counterpart's tokens without padding and without its final EOS, BOS included
(the anchor slot predicts the first token); in ``release_compat`` every EOS-id token is ignored.

Computation (default semantics, ``packing=True``): one encoder pass over all queries and documents
packed into a single padding-free row (per-sample positions, attention kept within each sample),
one decoder pass for both reconstruction directions packed the same way, and the cross-entropy at
target positions only, chunked so that the full logits tensor never exists (``ce_implementation``).
``packing=False`` keeps the padded computation: two encoder passes, one decoder pass per direction.
Both compute the same losses and gradients (tests/test_stage_I_packing.py); ``release_compat``
always runs padded, since the release's numbers depend on its padding. See docs/performance.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM
from transformers.utils import ModelOutput

from llm2vec.llm2vec import LLM2Vec
from llm2vec.loss.fused_cross_entropy import fused_linear_cross_entropy
from llm2vec.loss.reconstruction_loss import IGNORE_INDEX, label_cross_entropy, resolve_ce_implementation
from llm2vec.model_config import LLM2VecConfig
from llm2vec.packing import (
    PackedSequences,
    install_varlen_attention,
    pack_rows,
    pool_packed,
    reconstruction_rows,
    uninstall_varlen_attention,
)
from llm2vec.pooling import position_ids_from_mask
from llm2vec.training.checkpoints import load_into, read_safetensors_folder


@dataclass
class ReconstructionOutput(ModelOutput):
    """Stage I losses; ``q_anchor``/``d_anchor`` are the pooled anchors (batch, hidden)."""

    loss: torch.Tensor | None = None
    q2d_loss: torch.Tensor | None = None
    d2q_loss: torch.Tensor | None = None
    q_anchor: torch.Tensor | None = None
    d_anchor: torch.Tensor | None = None


class LLM2Vec_q2d_d2q(LLM2Vec):  # noqa: N801 - the release's public name
    """An ``LLM2Vec`` that keeps the language-model head and computes the Stage I loss.

    Args:
        model: the transformer body of ``causal_lm``.
        tokenizer: its tokenizer.
        config: encoder settings; ``alpha`` weighs EBQ2D against EBD2Q, ``release_compat`` switches
            to the release's computation.
        lm_head: the output projection of ``causal_lm``.
        causal_lm: the full causal LM that owns ``model`` and ``lm_head``; kept (not as a submodule)
            to save complete causal-LM checkpoints.
        ce_chunk_size: positions per cross-entropy chunk (None: all target positions at once).
        packing: compute the default (non-``release_compat``) loss on padding-free packed rows: one
            encoder and one decoder pass per batch. False keeps the padded computation (e.g. when
            a packed row of a huge batch would be too long for the attention kernel).
        ce_implementation: "auto", "chunked", "fused", "liger" or "cut"
            (see ``reconstruction_loss.label_cross_entropy``).
        packed_attention: how attention stays within each packed sample for an ``sdpa`` model:
            "varlen" runs sdpa per sample (``packing.install_varlen_attention``; cost sum(n^2)),
            "mask" uses transformers' block-diagonal mask (cost T^2). Flash attention always uses
            its varlen kernel, eager and flex attention the mask.

    The attributes ``ce_chunk_size``, ``packing`` and ``ce_implementation`` may be changed at any time.
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        config: LLM2VecConfig,
        lm_head: nn.Module,
        causal_lm: nn.Module,
        ce_chunk_size: int | None = 1024,
        packing: bool = True,
        ce_implementation: str = "auto",
        packed_attention: str = "varlen",
    ) -> None:
        if config.enable_bidirectional:
            raise ValueError("Stage I reconstructs text autoregressively; enable_bidirectional must be false")
        if not 0.0 <= config.alpha <= 1.0:
            raise ValueError(f"alpha must lie in [0, 1], got {config.alpha}")
        super().__init__(model, tokenizer, config)
        self.lm_head = lm_head
        # Not registered: its parameters are those of model and lm_head already.
        object.__setattr__(self, "causal_lm", causal_lm)
        self.configure_loss_computation(
            ce_chunk_size=ce_chunk_size,
            packing=packing,
            ce_implementation=ce_implementation,
            packed_attention=packed_attention,
        )

    def configure_loss_computation(
        self,
        *,
        ce_chunk_size: int | None = 1024,
        packing: bool = True,
        ce_implementation: str = "auto",
        packed_attention: str = "varlen",
    ) -> None:
        """Choose how the Stage I loss is computed; none of these settings changes its value.

        Raises:
            ValueError: an unknown ``ce_implementation`` / ``packed_attention``, a fused
                implementation with a sharded lm_head, or a non-positive ``ce_chunk_size``.
        """
        if ce_chunk_size is not None and ce_chunk_size < 1:
            raise ValueError(f"ce_chunk_size must be a positive number of positions or null, got {ce_chunk_size}")
        resolve_ce_implementation(ce_implementation, self.lm_head)  # validates the name early
        if packed_attention == "varlen":
            install_varlen_attention(self.model)
        elif packed_attention == "mask":
            uninstall_varlen_attention(self.model)
        else:
            raise ValueError(f"packed_attention must be 'varlen' or 'mask', got {packed_attention!r}")
        self.ce_chunk_size = ce_chunk_size
        self.packing = packing
        self.ce_implementation = ce_implementation

    @classmethod
    def _load_model(cls, path: Any, config: LLM2VecConfig, hf_kwargs: dict[str, Any]) -> nn.Module:
        return AutoModelForCausalLM.from_pretrained(path, **hf_kwargs)

    @classmethod
    def _from_loaded(cls, model: nn.Module, tokenizer: Any, config: LLM2VecConfig) -> LLM2Vec_q2d_d2q:
        return cls(model.base_model, tokenizer, config, model.get_output_embeddings(), model)

    @property
    def alpha(self) -> float:
        return self.llm2vec_config.alpha

    def save(
        self,
        output_path: Any,
        merge_before_save: bool = False,
        *,
        state_dict: dict[str, torch.Tensor] | None = None,
    ) -> Path:
        """Write a complete causal-LM folder (body and lm_head), tokenizer and ``llm2vec_config.json``."""
        output = Path(output_path)
        output.mkdir(parents=True, exist_ok=True)
        # The wrapper's state-dict keys ("model.*", "lm_head.*") are the causal LM's own.
        self.causal_lm.save_pretrained(output, state_dict=state_dict)
        self.tokenizer.save_pretrained(output)
        self.llm2vec_config.save(output)
        return output

    def load_checkpoint_weights(self, folder: Any) -> None:
        """Load a causal-LM folder written by ``save`` (tied lm_head weights may be absent)."""
        tied = {"lm_head.weight"} if self.lm_head.weight is self.model.get_input_embeddings().weight else set()
        load_into(self, read_safetensors_folder(folder), allowed_missing=tied)

    # ------------------------------------------------------------------ Stage I loss
    def anchors(self, features: dict[str, torch.Tensor] | PackedSequences) -> torch.Tensor:
        """Anchor embeddings: the pooled final hidden states (EOS pooling in every paper config).

        ``features`` is a padded batch, or a :class:`~llm2vec.packing.PackedSequences` row (one
        anchor per packed sample, in order).
        """
        if isinstance(features, PackedSequences):
            hidden = self.packed_hidden_states(features)
            return pool_packed(hidden, features, self.pooling_mode, self.skip_instruction)
        return self.embed(features)

    def packed_hidden_states(self, packed: PackedSequences) -> torch.Tensor:
        """Final hidden states (1, T, hidden) of a packed row; attention stays within each sample."""
        if packed.inputs_embeds is None:
            tokens = {"input_ids": packed.input_ids}
        else:
            tokens = {"inputs_embeds": packed.inputs_embeds}
        return self.model(
            **tokens,
            attention_mask=None,
            position_ids=packed.position_ids,
            use_cache=False,
            **packed.varlen_kwargs(),
        ).last_hidden_state

    def _decoder_inputs(
        self, anchor: torch.Tensor, features: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input embeddings, attention mask, position ids and targets of one reconstruction pass."""
        input_ids = features["input_ids"]
        attention_mask = features["attention_mask"]
        batch, length = input_ids.shape
        token_embeddings = self.model.get_input_embeddings()(input_ids)
        anchor = anchor.to(token_embeddings.dtype).unsqueeze(1)
        no_target = torch.full((batch, 1), IGNORE_INDEX, dtype=torch.long, device=input_ids.device)
        if self.llm2vec_config.release_compat:
            inputs = torch.cat([anchor, token_embeddings], dim=1)
            mask = torch.cat([torch.ones_like(attention_mask[:, :1]), features["embed_mask"]], dim=1)
            positions = torch.arange(length + 1, device=input_ids.device).expand(batch, -1)
            targets = input_ids.masked_fill(input_ids == self.tokenizer.eos_token_id, IGNORE_INDEX)
        else:
            # Row layout [pad.., anchor, t_1..t_n]: the anchor replaces a duplicated first column at
            # the index of the row's first real token.
            rows = torch.arange(batch, device=input_ids.device)
            first_real = length - attention_mask.sum(dim=1)
            inputs = torch.cat([token_embeddings[:, :1], token_embeddings], dim=1)
            inputs = inputs.index_put((rows, first_real), anchor.squeeze(1))
            mask = torch.cat([torch.zeros_like(attention_mask[:, :1]), attention_mask], dim=1)
            mask = mask.index_put((rows, first_real), torch.ones_like(first_real))
            positions = position_ids_from_mask(mask)
            targets = input_ids.masked_fill(attention_mask == 0, IGNORE_INDEX)
            targets[:, -1] = IGNORE_INDEX  # the final EOS, the counterpart's own anchor token
        # Position i predicts token i of the counterpart row (the anchor slot predicts its first token).
        targets = torch.cat([targets, no_target], dim=1)
        return inputs, mask, positions, targets

    def reconstruction_loss(self, anchor: torch.Tensor, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Mean teacher-forced cross-entropy of the tokens of ``features`` after ``anchor``."""
        inputs, mask, positions, targets = self._decoder_inputs(anchor, features)
        hidden = self.model(
            inputs_embeds=inputs, attention_mask=mask, position_ids=positions, use_cache=False
        ).last_hidden_state
        return self._cross_entropy(hidden, targets)

    def _cross_entropy(self, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return label_cross_entropy(hidden, targets, self.lm_head, self.ce_chunk_size, self.ce_implementation)

    def forward(  # type: ignore[override]
        self, q_features: dict[str, torch.Tensor], d_features: dict[str, torch.Tensor]
    ) -> ReconstructionOutput:
        """Stage I losses for a batch of (query, document) pairs.

        A direction whose weight is 0 is still computed for logging, without a graph.
        """
        if self.packing and not self.llm2vec_config.release_compat:
            return self._packed_forward(q_features, d_features)
        q_anchor = self.anchors(q_features)
        d_anchor = self.anchors(d_features)
        q2d = self._weighted_direction(self.alpha, q_anchor, d_features)
        d2q = self._weighted_direction(1.0 - self.alpha, d_anchor, q_features)
        loss = self.alpha * q2d + (1.0 - self.alpha) * d2q
        return ReconstructionOutput(
            loss=loss, q2d_loss=q2d.detach(), d2q_loss=d2q.detach(), q_anchor=q_anchor, d_anchor=d_anchor
        )

    def _packed_forward(
        self, q_features: dict[str, torch.Tensor], d_features: dict[str, torch.Tensor]
    ) -> ReconstructionOutput:
        """The default loss with one packed encoder pass and one packed decoder pass."""
        n_q = q_features["input_ids"].shape[0]
        n_d = d_features["input_ids"].shape[0]
        if n_q != n_d:
            raise ValueError(f"expected as many queries as documents, got {n_q} and {n_d}")
        packed = pack_rows(q_features, d_features)  # samples 0..n_q-1 queries, then documents
        # One embedding lookup serves both passes (the decoder's tokens are the encoder's).
        token_embeddings = self.model.get_input_embeddings()(packed.input_ids)
        anchors = self.anchors(replace(packed, inputs_embeds=token_embeddings))
        q_anchor, d_anchor = anchors[:n_q], anchors[n_q:]

        # Both directions in one decoder row: documents after query anchors (EBQ2D), then
        # queries after document anchors (EBD2Q). Anchor i of the list below is anchors[i].
        device = packed.input_ids.device
        queries = torch.arange(n_q, device=device)
        documents = queries + n_q
        rows = reconstruction_rows(packed, torch.cat([queries, documents]), torch.cat([documents, queries]))
        # The same tensors as the returned q_anchor/d_anchor, so that gradients reach them.
        anchor_list = torch.cat([q_anchor, d_anchor]).to(token_embeddings.dtype)
        inputs = token_embeddings[0, rows.input_positions].index_put(
            (rows.anchor_slots,), anchor_list[rows.anchor_sources]
        )
        hidden = self.model(
            inputs_embeds=inputs[None],
            attention_mask=None,
            position_ids=rows.position_ids,
            use_cache=False,
            **rows.varlen_kwargs(),
        ).last_hidden_state[0]

        split = int(rows.targets_per_pair[:n_d].sum())
        if resolve_ce_implementation(self.ce_implementation, self.lm_head) == "fused":
            q2d, d2q, loss = self._fused_directions(hidden, rows.targets, split)
        else:
            q2d = self._packed_direction(self.alpha, hidden[:split], rows.targets[:split])
            d2q = self._packed_direction(1.0 - self.alpha, hidden[split:], rows.targets[split:])
            loss = self.alpha * q2d + (1.0 - self.alpha) * d2q
        return ReconstructionOutput(
            loss=loss, q2d_loss=q2d.detach(), d2q_loss=d2q.detach(), q_anchor=q_anchor, d_anchor=d_anchor
        )

    def _fused_directions(
        self, hidden: torch.Tensor, targets: torch.Tensor, split: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Both directions' cross-entropy in one fused call: each position weighted by its
        direction's weight over its direction's target count, so the call returns the Stage I
        loss (and per-position losses for the two means)."""
        total = targets.numel()
        if total == 0:
            zero = hidden.sum() * 0.0
            return zero, zero, zero
        weights = torch.empty(total, dtype=torch.float32, device=hidden.device)
        weights[:split] = self.alpha / max(split, 1)
        weights[split:] = (1.0 - self.alpha) / max(total - split, 1)
        loss, losses = fused_linear_cross_entropy(
            hidden, self.lm_head.weight, targets, self.lm_head.bias,
            chunk_size=self.ce_chunk_size, row_weights=weights, return_losses=True,
        )
        zero = losses.new_zeros(())
        q2d = losses[:split].mean() if split else zero
        d2q = losses[split:].mean() if total > split else zero
        return q2d, d2q, loss

    def _packed_direction(self, weight: float, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if targets.numel() == 0:
            return hidden.sum() * 0.0
        if weight > 0.0:
            return self._cross_entropy(hidden, targets)
        with torch.no_grad():
            return self._cross_entropy(hidden.detach(), targets)

    def _weighted_direction(
        self, weight: float, anchor: torch.Tensor, features: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        if weight > 0.0:
            return self.reconstruction_loss(anchor, features)
        with torch.no_grad():
            return self.reconstruction_loss(anchor.detach(), features)
