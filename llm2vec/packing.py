"""Padding-free ("packed") layout of a batch: every sample's real tokens back to back in one row.

A packed row has batch size 1; each sample keeps its own position ids 0..n-1, and attention must
not cross sample boundaries. Flash attention does that with its varlen kernel given
``cu_seq_lens``; for ``sdpa`` models :func:`install_varlen_attention` registers an attention
function that runs SDPA once per sample on the row (without ``cu_seq_lens`` it is plain SDPA).
Eager and flex attention fall back to transformers' own block-diagonal mask, which it builds when
position ids restart at 0 and the attention mask is None (quadratic in the row length).
Model-agnostic; the Stage I model builds its passes with :func:`pack_rows` and
:func:`reconstruction_rows`. Measurements: docs/performance.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

#: name under which the per-sample sdpa is registered in transformers' attention registries
VARLEN_SDPA = "llm2vec_varlen_sdpa"

_IN_PACKED_CALL: ContextVar[bool] = ContextVar("llm2vec_in_packed_call", default=False)


@contextmanager
def packed_call() -> Iterator[None]:
    """Mark a forward pass over a packed row that carries ``cu_seq_lens``.

    Transformers sees restarting position ids without an attention mask and builds a dense
    block-diagonal (1, 1, T, T) mask for sdpa: 268 MB of booleans for a 16k-token row, which
    :data:`VARLEN_SDPA` would ignore. Inside this context its mask builder returns None instead.
    """
    token = _IN_PACKED_CALL.set(True)
    try:
        yield
    finally:
        _IN_PACKED_CALL.reset(token)

@dataclass
class PackedSequences:
    """Samples concatenated in one row.

    Attributes:
        input_ids: (1, T) token ids of all samples back to back.
        position_ids: (1, T) 0..n-1 within each sample.
        cu_seq_lens: (num_samples + 1,) int32 cumulative lengths (sample i is ``[cu[i], cu[i+1])``).
        max_length: the longest sample.
        embed_mask: (1, T) the packed ``embed_mask`` of the source rows, if they had one.
        inputs_embeds: (1, T, hidden) token embeddings to use instead of looking ``input_ids`` up.
    """

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    cu_seq_lens: torch.Tensor
    max_length: int
    embed_mask: torch.Tensor | None = None
    inputs_embeds: torch.Tensor | None = None

    @property
    def num_sequences(self) -> int:
        return self.cu_seq_lens.numel() - 1

    @property
    def lengths(self) -> torch.Tensor:
        return self.cu_seq_lens.diff().long()

    @property
    def last_indices(self) -> torch.Tensor:
        """Index in the row of every sample's last token (its EOS)."""
        return self.cu_seq_lens[1:].long() - 1

    @property
    def first_indices(self) -> torch.Tensor:
        return self.cu_seq_lens[:-1].long()

    def varlen_kwargs(self) -> dict[str, Any]:
        return varlen_kwargs(self.cu_seq_lens, self.max_length)

    def to(self, device: torch.device | str) -> PackedSequences:
        """The same row with every tensor on ``device``."""

        def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.to(device)

        return replace(
            self, input_ids=move(self.input_ids), position_ids=move(self.position_ids),
            cu_seq_lens=move(self.cu_seq_lens), embed_mask=move(self.embed_mask), inputs_embeds=move(self.inputs_embeds),
        )


def cu_seq_lens_from_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """``[0, l0, l0+l1, ...]`` as int32 (flash attention's ``cu_seqlens``)."""
    return F.pad(lengths.cumsum(0), (1, 0)).to(torch.int32)


def positions_from_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """(sum(lengths),) positions 0..l-1 of every segment, back to back."""
    lengths = lengths.long()
    starts = lengths.cumsum(0) - lengths
    total = int(lengths.sum())
    return torch.arange(total, device=lengths.device) - starts.repeat_interleave(lengths, output_size=total)


def varlen_kwargs(cu_seq_lens: torch.Tensor, max_length: int) -> dict[str, Any]:
    """Keyword arguments that make flash attention (and :data:`VARLEN_SDPA`) treat a packed row
    as separate sequences: the names of transformers' ``FlashAttentionKwargs``."""
    cu = cu_seq_lens.to(torch.int32)
    return {"cu_seq_lens_q": cu, "cu_seq_lens_k": cu, "max_length_q": int(max_length), "max_length_k": int(max_length)}


def token_budget_batches(lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Group consecutive items into batches of at most ``budget`` tokens (indices into ``lengths``).

    An item longer than the budget gets a batch of its own. Items keep their order, so lengths
    sorted longest first give batches whose first item bounds the attention cost of the rest.
    """
    if budget < 1:
        raise ValueError(f"the token budget must be positive, got {budget}")
    batches: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index, length in enumerate(lengths):
        if current and used + length > budget:
            batches.append(current)
            current, used = [], 0
        current.append(index)
        used += length
    if current:
        batches.append(current)
    return batches


def pack_rows(*features: dict[str, torch.Tensor]) -> PackedSequences:
    """Pack the real tokens (``attention_mask == 1``) of every row of every ``features`` in order.

    Works for either padding side as long as each row's real tokens are contiguous. Rows without
    any real token are an error: there would be nothing to pool.
    """
    ids, embed, lengths = [], [], []
    has_embed = all("embed_mask" in f for f in features)
    for f in features:
        mask = f["attention_mask"].bool()
        ids.append(f["input_ids"][mask])
        lengths.append(mask.sum(dim=1))
        if has_embed:
            embed.append(f["embed_mask"][mask])
    length = torch.cat(lengths)
    if (length == 0).any():
        raise ValueError("cannot pack a row without any real token")
    input_ids = torch.cat(ids)
    return PackedSequences(
        input_ids=input_ids[None],
        position_ids=positions_from_lengths(length)[None],
        cu_seq_lens=cu_seq_lens_from_lengths(length),
        max_length=int(length.max()),
        embed_mask=torch.cat(embed)[None] if has_embed else None,
    )


def pool_packed(
    hidden_states: torch.Tensor, packed: PackedSequences, pooling_mode: str, skip_instruction: bool = True
) -> torch.Tensor:
    """``pooling.pool`` for a packed row: (1, T, hidden) or (T, hidden) -> (num_samples, hidden)."""
    hidden = hidden_states[0] if hidden_states.dim() == 3 else hidden_states
    if pooling_mode in ("eos_token", "last_token"):
        return hidden[packed.last_indices]
    if pooling_mode == "bos_token":
        return hidden[packed.first_indices]
    if pooling_mode in ("mean", "weighted_mean"):
        lengths = packed.lengths
        segment = torch.repeat_interleave(torch.arange(lengths.numel(), device=hidden.device), lengths)
        ones = torch.ones(hidden.shape[0], dtype=torch.float32, device=hidden.device)
        if skip_instruction and packed.embed_mask is not None:
            mask = packed.embed_mask[0].float()
            counts = torch.zeros(lengths.numel(), device=hidden.device).index_add_(0, segment, mask)
            # A sample whose text was truncated away falls back to all of its tokens.
            mask = torch.where((counts == 0)[segment], ones, mask)
        else:
            mask = ones
        weights = mask
        if pooling_mode == "weighted_mean":
            running = mask.cumsum(0)
            before = (running - mask)[packed.first_indices]  # cumulative weight before each sample
            weights = (running - before[segment]) * mask
        totals = torch.zeros(lengths.numel(), device=hidden.device).index_add_(0, segment, weights)
        weights = weights / totals[segment]
        summed = torch.zeros(lengths.numel(), hidden.shape[-1], dtype=torch.float32, device=hidden.device)
        summed.index_add_(0, segment, hidden.float() * weights[:, None])
        return summed.to(hidden.dtype)
    raise ValueError(f"unknown pooling_mode '{pooling_mode}'")


# ---------------------------------------------------------------------------- reconstruction rows
@dataclass
class ReconstructionRows:
    """Decoder input of teacher-forced reconstructions, packed.

    Segment j is ``[anchor ; t_1 .. t_{n-2}]`` for a counterpart sample ``t_1 .. t_n`` (``t_n`` its
    EOS) with positions 0..n-2 and targets ``t_1 .. t_{n-1}``: every slot predicts a token, the
    anchor slot the first one. The input token of an anchor slot is a placeholder, to be replaced
    by the anchor embedding. Counterparts with a single token give no segment.

    Attributes:
        input_ids: (S,) token ids of the slots (placeholders at anchor slots).
        input_positions: (S,) where each slot's token is in the packed row of the samples.
        targets: (S,) the token each slot predicts.
        anchor_slots: (K,) slot index of every segment's anchor.
        anchor_sources: (K,) which anchor goes there (index into the caller's anchor list).
        position_ids: (1, S).
        cu_seq_lens, max_length: segment boundaries for attention.
        targets_per_pair: (P,) number of targets (= slots) of each requested pair, 0 for dropped ones.
    """

    input_ids: torch.Tensor
    input_positions: torch.Tensor
    targets: torch.Tensor
    anchor_slots: torch.Tensor
    anchor_sources: torch.Tensor
    position_ids: torch.Tensor
    cu_seq_lens: torch.Tensor
    max_length: int
    targets_per_pair: torch.Tensor

    def varlen_kwargs(self) -> dict[str, Any]:
        return varlen_kwargs(self.cu_seq_lens, self.max_length)


def reconstruction_rows(
    packed: PackedSequences, anchor_index: torch.Tensor, counterpart_index: torch.Tensor
) -> ReconstructionRows:
    """Packed decoder rows reconstructing sample ``counterpart_index[j]`` of ``packed`` from anchor
    ``anchor_index[j]``, for every j in order."""
    device = packed.input_ids.device
    ids = packed.input_ids[0]
    anchor_index = anchor_index.to(device)
    counterpart_index = counterpart_index.to(device)
    slots_per_pair = (packed.lengths[counterpart_index] - 1).clamp(min=0)
    keep = slots_per_pair > 0
    slots = slots_per_pair[keep]
    starts = packed.first_indices[counterpart_index][keep]
    total = int(slots.sum())
    cu = cu_seq_lens_from_lengths(slots)
    offsets = positions_from_lengths(slots)
    segment_start = starts.repeat_interleave(slots, output_size=total)
    targets = ids[segment_start + offsets]
    # Slot o >= 1 holds t_o (index start + o - 1); slot 0 gets t_1 as a placeholder.
    input_positions = segment_start + (offsets - 1).clamp(min=0)
    return ReconstructionRows(
        input_ids=ids[input_positions],
        input_positions=input_positions,
        targets=targets,
        anchor_slots=cu[:-1].long(),
        anchor_sources=anchor_index[keep],
        position_ids=offsets[None],
        cu_seq_lens=cu,
        max_length=int(slots.max()) if slots.numel() else 0,
        targets_per_pair=slots_per_pair,
    )


# ---------------------------------------------------------------------------- attention
def _segment_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    scaling: float | None,
    dropout: float,
    causal: bool,
    sliding_window: int | None,
) -> torch.Tensor:
    length = query.shape[2]
    gqa = query.shape[1] != key.shape[1]
    if sliding_window is not None and causal and length > sliding_window:
        rows = torch.arange(length, device=query.device)
        distance = rows[:, None] - rows[None, :]
        # transformers' sliding window: kv_idx > q_idx - window, and causal.
        mask = (distance >= 0) & (distance < sliding_window)
        return F.scaled_dot_product_attention(
            query, key, value, attn_mask=mask, dropout_p=dropout, scale=scaling, enable_gqa=gqa
        )
    return F.scaled_dot_product_attention(
        query, key, value, dropout_p=dropout, is_causal=causal and length > 1, scale=scaling, enable_gqa=gqa
    )


def varlen_sdpa_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers attention function: sdpa per packed sample when ``cu_seq_lens_q`` is given.

    ``query`` is (1, heads, T, head_dim), ``key``/``value`` (1, kv_heads, T, head_dim); returns
    (1, T, heads, head_dim) like every transformers attention function. Without ``cu_seq_lens_q``
    (padded batches, generation) it is transformers' own ``sdpa_attention_forward``.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    cu = kwargs.get("cu_seq_lens_q")
    cu_k = kwargs.get("cu_seq_lens_k")
    same_keys = cu_k is None or cu_k is cu or (cu is not None and torch.equal(cu_k, cu))
    if cu is None or query.shape[0] != 1 or not same_keys:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, is_causal=is_causal, **kwargs
        )
    if kwargs.get("softcap") is not None or kwargs.get("s_aux") is not None:
        raise NotImplementedError(f"{VARLEN_SDPA} supports neither softcap nor attention sinks")
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    sliding_window = kwargs.get("sliding_window")
    bounds = cu.tolist()
    if bounds[-1] != query.shape[2]:
        raise ValueError(f"cu_seq_lens_q ends at {bounds[-1]} but the packed row has {query.shape[2]} tokens")
    lengths = [stop - start for start, stop in zip(bounds[:-1], bounds[1:]) if stop > start]
    # Split along the tokens of the (1, T, heads, head_dim) layout the projections produced, so
    # that every piece and its gradient are contiguous; split (not slicing) so that backward
    # concatenates the pieces' gradients once instead of adding each into a zero tensor of the row.
    pieces = (x.transpose(1, 2).split(lengths, dim=1) for x in (query, key, value))
    outputs = [
        _segment_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scaling, dropout, causal, sliding_window
        ).transpose(1, 2)
        for q, k, v in zip(*pieces)
    ]
    output = torch.cat(outputs, dim=1) if len(outputs) > 1 else outputs[0].contiguous()
    return output, None


def varlen_sdpa_mask(*args: Any, **kwargs: Any) -> torch.Tensor | None:
    """sdpa's mask builder, except inside :func:`packed_call`, where ``cu_seq_lens`` replace the mask."""
    from transformers.masking_utils import sdpa_mask

    if _IN_PACKED_CALL.get():
        return None
    return sdpa_mask(*args, **kwargs)


def register_varlen_attention() -> None:
    """Register :data:`VARLEN_SDPA` (attention function, and sdpa's mask builder for padded calls)."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(VARLEN_SDPA, varlen_sdpa_attention_forward)
    AttentionMaskInterface.register(VARLEN_SDPA, varlen_sdpa_mask)


def install_varlen_attention(model: nn.Module) -> bool:
    """Switch an ``sdpa`` model to :data:`VARLEN_SDPA` (identical unless given ``cu_seq_lens``).

    Returns whether the model now uses it. Other implementations are left alone: flash attention
    has its own varlen path, and eager/flex attention use transformers' block-diagonal mask.
    The setting is not saved with the model (transformers does not serialize it).
    """
    config = getattr(model, "config", None)
    current = getattr(config, "_attn_implementation", None)
    if current == VARLEN_SDPA:
        return True
    if current != "sdpa":
        return False
    register_varlen_attention()
    config._attn_implementation = VARLEN_SDPA  # type: ignore[union-attr]
    return True


def is_flash_attention(name: str | None) -> bool:
    """Whether a transformers attention implementation name is a flash-attention kernel (varlen-capable)."""
    return bool(name) and (name.startswith("flash_attention") or "flash-attn" in name or "flash_attn" in name)


def supports_packing(model: nn.Module) -> bool:
    """Whether packed rows of ``model`` can keep their samples apart without a dense (T, T) mask.

    True for flash attention, sdpa (through :func:`install_varlen_attention`) and :data:`VARLEN_SDPA`;
    False for eager and flex attention, for which transformers would build that mask.
    """
    current = getattr(getattr(model, "config", None), "_attn_implementation", None)
    return current in ("sdpa", VARLEN_SDPA) or is_flash_attention(current)
