"""The one tokenization path shared by training and encoding.

A text is ``"{instruction} " + SEPARATOR + text`` (or just a text). It is wrapped in the model's
prompt template, tokenized, truncated so that only the text shrinks (the template suffix and the
pooled EOS always survive), and left-padded. ``embed_mask`` marks the tokens after the separator:
the text, the template's closing tokens and the EOS, as llm2vec defines it.

``llm2vec_style=True`` tokenizes as McGill-NLP llm2vec does, and the authors' release with it
(``release_compat``, ``tokenization: llm2vec``): the formatted string is tokenized whole and
truncated from the right (a long text loses its EOS), and ``embed_mask`` is the last ``m`` positions
of the padded row, ``m`` being the token count of the part after the separator tokenized alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from llm2vec.packing import PackedSequences, cu_seq_lens_from_lengths, positions_from_lengths
from llm2vec.prompts import PromptTemplate

#: Marks where an instruction ends: texts are written ``"{instruction}; " + SEPARATOR + text``. It is
#: removed before tokenization; what follows it is the text that pooling and truncation act on.
SEPARATOR = "!@#$%^&*()"


@dataclass(frozen=True)
class EncodedText:
    """Token ids of one formatted text; the last ``embed_count`` positions form its embed mask."""

    input_ids: list[int]
    embed_count: int


def _split_instruction(text: str) -> tuple[str, str]:
    instruction, separator, body = text.partition(SEPARATOR)
    if not separator:
        return "", text
    return instruction, body


def _special_tokens_around(tokenizer: Any) -> tuple[list[int], list[int]]:
    """The ids the tokenizer itself adds before and after a text (e.g. BOS)."""
    probe = "hello world"
    bare = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe, add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    raise ValueError("cannot tell which special tokens the tokenizer adds around a text")


class EmbeddingTokenizer:
    """Formats, tokenizes, truncates and left-pads texts for an embedding model.

    Args:
        tokenizer: a Hugging Face fast tokenizer.
        template: the prompt template to wrap texts in.
        max_length: the most tokens in a row, template and special tokens included.
        llm2vec_style: tokenize as llm2vec and the release do (see the module docstring).
    """

    def __init__(
        self, tokenizer: Any, template: PromptTemplate, max_length: int, llm2vec_style: bool = False
    ) -> None:
        if max_length < 1:
            raise ValueError(f"max_length must be positive, got {max_length}")
        self.tokenizer = tokenizer
        self.template = template
        self.max_length = max_length
        self.llm2vec_style = llm2vec_style
        self.suffix = template.resolve_suffix(tokenizer)
        self.suffix_ids = tokenizer(self.suffix, add_special_tokens=False)["input_ids"]
        self.special_before, self.special_after = _special_tokens_around(tokenizer)
        self.fixed_length = len(self.special_before) + len(self.suffix_ids) + len(self.special_after)
        if tokenizer.pad_token_id is None:
            raise ValueError("the tokenizer has no pad token; LLM2Vec sets pad = eos before tokenizing")

    def encode_text(self, text: str, text_max_length: int | None = None) -> EncodedText:
        """Token ids and embed span of one text; ``text_max_length`` caps the text's own tokens."""
        if self.llm2vec_style:
            return self._encode_like_llm2vec(text)
        instruction, body = _split_instruction(text)
        content = instruction + body
        lead = len(content) - len(content.lstrip())
        content = content.strip()
        text_char_start = len(self.template.prefix) + max(0, len(instruction) - lead)
        head = self.tokenizer(
            self.template.prefix + content, add_special_tokens=False, return_offsets_mapping=True
        )
        ids, offsets = head["input_ids"], head["offset_mapping"]
        # The first token that reaches into the text starts the embed span; a token straddling the
        # instruction/text boundary belongs to the text so that no text character is hidden.
        n_fixed = next((i for i, (_, end) in enumerate(offsets) if end > text_char_start), len(ids))
        budget = self.max_length - self.fixed_length - n_fixed
        if budget < 0:
            raise ValueError(
                f"max_length {self.max_length} leaves no room for the text: template, special tokens and "
                f"instruction take {self.fixed_length + n_fixed} tokens (instruction: {instruction[:80]!r})"
            )
        if text_max_length is not None:
            budget = min(budget, text_max_length)
        text_ids = ids[n_fixed : n_fixed + budget]
        input_ids = self.special_before + ids[:n_fixed] + text_ids + self.suffix_ids + self.special_after
        return EncodedText(input_ids, len(text_ids) + len(self.suffix_ids) + len(self.special_after))

    def format(self, text: str) -> str:
        """``text`` wrapped in the template: prefix, the text (stripped if the template says so), suffix."""
        content = text.strip() if self.template.strip_text else text
        return self.template.prefix + content + self.suffix

    def _encode_like_llm2vec(self, text: str) -> EncodedText:
        # llm2vec's tokenize: every separator is dropped from the row; the span is the part between
        # the first and a second separator (all that follows the first, in practice).
        parts = self.format(text).split(SEPARATOR)
        input_ids = self.tokenizer(
            "".join(parts), add_special_tokens=True, truncation=True, max_length=self.max_length
        )["input_ids"]
        # Without a separator the embed mask is empty.
        after_ids = self.tokenizer(
            parts[1] if len(parts) > 1 else "", add_special_tokens=False, truncation=True, max_length=self.max_length
        )["input_ids"]
        return EncodedText(input_ids, len(after_ids))

    def pad(self, encoded: Sequence[EncodedText]) -> dict[str, torch.Tensor]:
        """Left-pad rows into ``input_ids``, ``attention_mask`` and ``embed_mask`` tensors."""
        width = max(len(row.input_ids) for row in encoded)
        batch = len(encoded)
        input_ids = torch.full((batch, width), self.tokenizer.pad_token_id, dtype=torch.long)
        attention_mask = torch.zeros((batch, width), dtype=torch.long)
        embed_mask = torch.zeros((batch, width), dtype=torch.long)
        for i, row in enumerate(encoded):
            n = len(row.input_ids)
            input_ids[i, width - n :] = torch.tensor(row.input_ids, dtype=torch.long)
            attention_mask[i, width - n :] = 1
            if row.embed_count > 0:
                # In llm2vec style the count may exceed the row (right truncation): as in llm2vec and
                # the release, the span then reaches into the left padding.
                embed_mask[i, width - min(row.embed_count, width) :] = 1
        return {"input_ids": input_ids, "attention_mask": attention_mask, "embed_mask": embed_mask}

    @staticmethod
    def pack(encoded: Sequence[EncodedText]) -> PackedSequences:
        """Put tokenized texts back to back in one row (the padding-free layout of :meth:`pad`)."""
        if not encoded:
            raise ValueError("cannot pack an empty batch")
        lengths = torch.tensor([len(row.input_ids) for row in encoded], dtype=torch.long)
        if (lengths == 0).any():
            raise ValueError("cannot pack a text without any token")
        input_ids = torch.tensor([token for row in encoded for token in row.input_ids], dtype=torch.long)
        embed_mask = torch.zeros(input_ids.numel(), dtype=torch.long)
        ends = lengths.cumsum(0)
        for end, length, row in zip(ends.tolist(), lengths.tolist(), encoded):
            # As in pad(): a span longer than the row (llm2vec style) covers the whole row.
            embed_mask[end - min(row.embed_count, length) : end] = 1
        return PackedSequences(
            input_ids=input_ids[None],
            position_ids=positions_from_lengths(lengths)[None],
            cu_seq_lens=cu_seq_lens_from_lengths(lengths),
            max_length=int(lengths.max()),
            embed_mask=embed_mask[None],
        )

    def __call__(self, texts: Sequence[str], text_max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Tokenize and left-pad a batch of texts."""
        if len(texts) == 0:
            raise ValueError("cannot tokenize an empty batch")
        return self.pad([self.encode_text(text, text_max_length) for text in texts])
