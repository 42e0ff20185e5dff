"""LLM2Vec_q2d_d2q: the Stage I model, bidirectional reconstruction through anchor embeddings.

The anchor of a text is its EOS-pooled final hidden state. EBQ2D puts the query's anchor in front
of the document's tokens and teacher-forces the document; EBD2Q does the same with the document's
anchor and the query; ``loss = alpha * q2d + (1 - alpha) * d2q`` (paper: alpha 0.2), computed in
``forward`` so that DDP, FSDP and DeepSpeed see every parameter use. By default the anchor sits
right before the counterpart's first real token and positions count real tokens only, so a row's
loss does not depend on its batch; ``release_compat`` reproduces the release's layout instead
(docs/differences_from_release.md). The passes run packed, without padding, unless ``packing`` is
off or ``release_compat`` is on; how, and why it is faster: docs/performance.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForCausalLM
from transformers.utils import ModelOutput

from llm2vec.llm2vec import LLM2Vec
from llm2vec.loss.reconstruction_loss import CE_IMPLEMENTATIONS, IGNORE_INDEX, ReconstructionLosses, reconstruction_loss
from llm2vec.model_config import LLM2VecConfig
from llm2vec.packing import (
    PackedSequences,
    install_varlen_attention,
    pack_rows,
    pool_packed,
    reconstruction_rows,
)
from llm2vec.pooling import position_ids_from_mask
from llm2vec.weights import load_into, read_safetensors_folder


@dataclass
class StageILossComputation:
    """How the Stage I loss is computed; none of these settings changes its value.

    The Stage I training config's keys of the same names (``experiments/run_stage_I.py`` parses
    them into this class); any field may be changed on a model between steps.
    """

    packing: bool = field(
        default=True,
        metadata={"help": "Padding-free packed encoder and decoder passes (false: padded rows). Same loss."},
    )
    ce_implementation: str = field(
        default="auto",
        metadata={
            "help": "Cross-entropy at target positions: auto (fused for a plain lm_head, chunked for a sharded "
            "one), fused (gradient computed in forward), chunked (checkpointed chunks through the lm_head module)."
        },
    )
    ce_chunk_size: int | None = field(
        default=4096, metadata={"help": "Target positions whose logits exist at once; null for one piece."}
    )

    def __post_init__(self) -> None:
        if self.ce_implementation not in CE_IMPLEMENTATIONS:
            raise ValueError(
                f"ce_implementation must be one of {list(CE_IMPLEMENTATIONS)}, got {self.ce_implementation!r}"
            )
        size = self.ce_chunk_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"ce_chunk_size must be a positive number of positions or null, got {size!r}")


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
        loss_computation: packing and cross-entropy settings (the attribute may be replaced later).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer: Any,
        config: LLM2VecConfig,
        lm_head: nn.Module,
        causal_lm: nn.Module,
        loss_computation: StageILossComputation | None = None,
    ) -> None:
        if config.enable_bidirectional:
            raise ValueError("Stage I reconstructs text autoregressively; enable_bidirectional must be false")
        super().__init__(model, tokenizer, config)
        self.lm_head = lm_head
        # Not registered: its parameters are those of model and lm_head already.
        object.__setattr__(self, "causal_lm", causal_lm)
        self.loss_computation = loss_computation if loss_computation is not None else StageILossComputation()
        # Same as sdpa on padded rows; on packed rows it keeps attention within each sample.
        install_varlen_attention(self.model)

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

    def _decoder_inputs(
        self, anchor: torch.Tensor, features: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input embeddings, attention mask, position ids and targets of one padded reconstruction pass."""
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

    def _padded_decoder(
        self, anchor: torch.Tensor, features: dict[str, torch.Tensor], weight: float
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Hidden states and targets of one reconstruction direction on padded rows.

        A direction of weight 0 runs without a graph: its loss is only logged.
        """
        with torch.set_grad_enabled(torch.is_grad_enabled() and weight > 0.0):
            inputs, mask, positions, targets = self._decoder_inputs(anchor, features)
            hidden = self.model(
                inputs_embeds=inputs, attention_mask=mask, position_ids=positions, use_cache=False
            ).last_hidden_state
        return hidden, targets

    def _loss(self, hidden: torch.Tensor, targets: torch.Tensor, split: int) -> ReconstructionLosses:
        settings = self.loss_computation
        return reconstruction_loss(
            hidden, targets, split, self.alpha, self.lm_head, settings.ce_implementation, settings.ce_chunk_size
        )

    def forward(  # type: ignore[override]
        self, q_features: dict[str, torch.Tensor], d_features: dict[str, torch.Tensor]
    ) -> ReconstructionOutput:
        """Stage I losses for a batch of (query, document) pairs."""
        if self.loss_computation.packing and not self.llm2vec_config.release_compat:
            return self._packed_forward(q_features, d_features)
        q_anchor = self.anchors(q_features)
        d_anchor = self.anchors(d_features)
        q2d_hidden, q2d_targets = self._padded_decoder(q_anchor, d_features, self.alpha)
        d2q_hidden, d2q_targets = self._padded_decoder(d_anchor, q_features, 1.0 - self.alpha)
        width = q2d_hidden.shape[-1]
        hidden = torch.cat([q2d_hidden.reshape(-1, width), d2q_hidden.reshape(-1, width)])
        targets = torch.cat([q2d_targets.reshape(-1), d2q_targets.reshape(-1)])
        losses = self._loss(hidden, targets, q2d_targets.numel())
        return ReconstructionOutput(
            loss=losses.loss, q2d_loss=losses.q2d, d2q_loss=losses.d2q, q_anchor=q_anchor, d_anchor=d_anchor
        )

    def reconstruction_losses_per_pair(
        self,
        q_features: dict[str, torch.Tensor],
        d_features: dict[str, torch.Tensor],
        q_anchor: torch.Tensor,
        d_anchor: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Each pair's mean cross-entropy of EBQ2D and of EBD2Q (two tensors of shape (batch,)) on
        padded rows, with the given anchors: ``q_anchor[i]`` conditions the reconstruction of
        document i, ``d_anchor[i]`` that of query i. Passing other texts' anchors measures
        how much the reconstruction relies on its own (``llm2vec.evaluation.anchor_probe``).
        Materializes the logits of the whole batch: meant for evaluation, not training.
        """
        out = []
        for anchor, features in ((q_anchor, d_features), (d_anchor, q_features)):
            hidden, targets = self._padded_decoder(anchor, features, 1.0)
            logits = self.lm_head(hidden).float()
            per_token = nn.functional.cross_entropy(
                logits.transpose(1, 2), targets, ignore_index=IGNORE_INDEX, reduction="none"
            )
            counts = (targets != IGNORE_INDEX).sum(dim=1)
            out.append(per_token.sum(dim=1) / counts.clamp(min=1))
        return out[0], out[1]

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
        hidden = self._run_packed_row(rows.position_ids, rows.varlen_kwargs(), inputs_embeds=inputs[None])[0]
        split = int(rows.targets_per_pair[:n_d].sum())
        losses = self._loss(hidden, rows.targets, split)
        return ReconstructionOutput(
            loss=losses.loss, q2d_loss=losses.q2d, d2q_loss=losses.d2q, q_anchor=q_anchor, d_anchor=d_anchor
        )
