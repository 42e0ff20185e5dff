"""Pooling modes and position ids on hand-computed, left-padded tensors."""

from __future__ import annotations

import pytest
import torch

from llm2vec.pooling import POOLING_MODES, pool, position_ids_from_mask

# Two left-padded rows of 4 positions, hidden size 2.
# Row 0: one pad (value 100 must never leak), instruction token [1, 2], text tokens [3, 4], [5, 6].
# Row 1: no pad, instruction token [1, 0], text tokens [2, 0], [4, 1], [8, 3].
HIDDEN = torch.tensor(
    [
        [[100.0, 100.0], [1.0, 2.0], [3.0, 4.0], [5.0, 6.0]],
        [[1.0, 0.0], [2.0, 0.0], [4.0, 1.0], [8.0, 3.0]],
    ]
)
ATTENTION = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1]])
EMBED = torch.tensor([[0, 0, 1, 1], [0, 1, 1, 1]])


def expect(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float32)


def test_mean_over_text_tokens() -> None:
    out = pool(HIDDEN, ATTENTION, EMBED, "mean", skip_instruction=True)
    torch.testing.assert_close(out, expect([[4.0, 5.0], [14 / 3, 4 / 3]]))


def test_mean_over_all_real_tokens() -> None:
    out = pool(HIDDEN, ATTENTION, EMBED, "mean", skip_instruction=False)
    torch.testing.assert_close(out, expect([[3.0, 4.0], [15 / 4, 1.0]]))
    # without an embed mask, skip_instruction has nothing to skip
    torch.testing.assert_close(pool(HIDDEN, ATTENTION, None, "mean", skip_instruction=True), out)


def test_weighted_mean_weights_one_to_k() -> None:
    out = pool(HIDDEN, ATTENTION, EMBED, "weighted_mean", skip_instruction=True)
    # row 0: weights 1, 2 on [3, 4], [5, 6]; row 1: weights 1, 2, 3 on [2, 0], [4, 1], [8, 3]
    torch.testing.assert_close(out, expect([[13 / 3, 16 / 3], [34 / 6, 11 / 6]]))
    out = pool(HIDDEN, ATTENTION, EMBED, "weighted_mean", skip_instruction=False)
    # row 0: weights 1, 2, 3 from the first real token (not from the pad); row 1: weights 1..4
    torch.testing.assert_close(out, expect([[22 / 6, 28 / 6], [49 / 10, 15 / 10]]))


@pytest.mark.parametrize("mode", ["eos_token", "last_token"])
def test_eos_and_last_token_take_the_last_column(mode: str) -> None:
    out = pool(HIDDEN, ATTENTION, EMBED, mode)
    torch.testing.assert_close(out, expect([[5.0, 6.0], [8.0, 3.0]]))


def test_bos_token_is_the_first_real_token() -> None:
    out = pool(HIDDEN, ATTENTION, EMBED, "bos_token")
    torch.testing.assert_close(out, expect([[1.0, 2.0], [1.0, 0.0]]))
    more_padding = torch.tensor([[0, 0, 0, 1], [0, 0, 1, 1]])
    torch.testing.assert_close(pool(HIDDEN, more_padding, None, "bos_token"), expect([[5.0, 6.0], [4.0, 1.0]]))


@pytest.mark.parametrize("mode", ["mean", "weighted_mean"])
def test_empty_embed_mask_falls_back_to_real_tokens(mode: str) -> None:
    empty = torch.tensor([[0, 0, 0, 0], [0, 1, 1, 1]])
    out = pool(HIDDEN, ATTENTION, empty, mode, skip_instruction=True)
    assert torch.isfinite(out).all()
    all_tokens = pool(HIDDEN, ATTENTION, None, mode, skip_instruction=False)
    with_text = pool(HIDDEN, ATTENTION, EMBED, mode, skip_instruction=True)
    torch.testing.assert_close(out[0], all_tokens[0])
    torch.testing.assert_close(out[1], with_text[1])


def test_embed_mask_reaching_into_padding_is_cut_by_attention() -> None:
    # release_compat rows may mark pad positions; they must still not count
    wide = torch.tensor([[1, 1, 1, 1], [0, 1, 1, 1]])
    out = pool(HIDDEN, ATTENTION, wide, "mean", skip_instruction=True)
    torch.testing.assert_close(out[0], torch.tensor([3.0, 4.0]))


def test_output_keeps_the_hidden_dtype() -> None:
    out = pool(HIDDEN.to(torch.bfloat16), ATTENTION, EMBED, "mean")
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), expect([[4.0, 5.0], [14 / 3, 4 / 3]]), rtol=1e-2, atol=1e-2)


def test_unknown_mode_raises() -> None:
    assert set(POOLING_MODES) == {"mean", "weighted_mean", "eos_token", "last_token", "bos_token"}
    with pytest.raises(ValueError, match="unknown pooling_mode 'cls'"):
        pool(HIDDEN, ATTENTION, EMBED, "cls")


def test_position_ids_from_left_padded_mask() -> None:
    mask = torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 1]])
    expected = torch.tensor([[0, 0, 0, 1, 2], [0, 1, 2, 3, 4], [0, 0, 0, 0, 0]])
    positions = position_ids_from_mask(mask)
    assert positions.dtype == torch.long
    assert torch.equal(positions, expected)
    # a boolean mask works the same; the last real token's position is the row's length - 1
    assert torch.equal(position_ids_from_mask(mask.bool()), expected)
    assert positions[:, -1].tolist() == (mask.sum(dim=1) - 1).tolist()
