"""An independent, written-out re-computation of McGill-NLP llm2vec's ``LLM2Vec.encode``.

Each step re-expresses one method of llm2vec's ``llm2vec/llm2vec.py`` (class ``LLM2Vec``), named
in a comment above the function that follows it: the input normalisation of ``encode``, the word
cut and separator join of ``_convert_to_str``, the model-name dependent prompt wrappers and EOS
suffixes of ``prepare_for_tokenization``, the embed mask of ``tokenize``, the bidirectional
forward of the ``*BiModel`` classes (``llm2vec/models/bidirectional_*.py``) and the pooling of
``get_pooling``. Nothing is imported from the ``llm2vec`` package under test: only ``torch`` and
``transformers``, so that the library can be checked against this file.

Why one text per forward pass: llm2vec pads batches on the left and lets the model number the
positions ``0..L-1`` over the whole padded row, so a left-padded text gets positions shifted by its
padding length (McGill-NLP/llm2vec issue #68), and its embedding depends on the other texts of its
batch. Only unpadded batches are comparable between implementations; running every text alone
gives exactly llm2vec's numbers for a batch in which no padding happens, with positions
``0..L-1`` unambiguous.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from transformers import GemmaConfig, LlamaConfig, MistralConfig, Qwen2Config

__all__ = [
    "SEPARATOR",
    "normalize_sentences",
    "convert_to_str",
    "prepare_for_tokenization",
    "tokenize_one",
    "forward_hidden",
    "pool",
    "llm2vec_reference_embeddings",
]

#: the marker llm2vec puts between the instruction and the text (``LLM2Vec._convert_to_str``)
SEPARATOR = "!@#$%^&*()"

POOLING_MODES = ("mean", "weighted_mean", "eos_token", "last_token", "bos_token")


# follows llm2vec/llm2vec.py, LLM2Vec.encode (the input handling before ``_convert_to_str``)
def normalize_sentences(sentences: Sequence[Any]) -> list[tuple[str, str]]:
    """``sentences`` as ``(instruction, text)`` pairs, the way ``LLM2Vec.encode`` reads them.

    A single ``[instruction, text, id]`` triple (first item a string, last an int) is one
    sentence; a list of strings becomes ``("", s)`` pairs; pairs and triples keep their first two
    items (a triple's id is ignored). Two inputs llm2vec accepts silently are rejected: a bare
    string (llm2vec encodes each of its characters) and a string inside a list whose first item
    is a pair (llm2vec reads its first two characters as instruction and text).
    """
    if isinstance(sentences, str):
        raise TypeError("pass a list of sentences, not a bare string (llm2vec would encode each character)")
    sentences = list(sentences)
    if not sentences:
        return []
    if isinstance(sentences[0], str) and isinstance(sentences[-1], int):
        sentences = [sentences]
    if isinstance(sentences[0], str):
        sentences = [["", s] for s in sentences]
    pairs = []
    for sentence in sentences:
        if isinstance(sentence, str):  # llm2vec would take its first two characters as (instruction, text)
            raise TypeError(f"a string among pairs/triples: {sentence!r}; do not mix the forms")
        instruction, text = sentence[0], sentence[1]
        if not isinstance(instruction, str) or not isinstance(text, str):
            raise TypeError(f"instruction and text must be strings, got {sentence!r}")
        pairs.append((instruction, text))
    return pairs


def _count_tokens(tokenizer, text: str, max_length: int) -> int:
    """Tokens of ``text`` alone, no special tokens, truncated to ``max_length``."""
    encoded = tokenizer(text, truncation=True, max_length=max_length, add_special_tokens=False)
    return len(encoded["input_ids"])


# follows llm2vec/llm2vec.py, LLM2Vec._convert_to_str
def convert_to_str(tokenizer, instruction: str, text: str, max_length: int = 512, doc_max_length: int = 400) -> str:
    """Shorten ``text`` by whole words to at most ``doc_max_length`` tokens, then join with the separator.

    While the (``max_length``-truncated) token count ``n`` of the text exceeds
    ``doc_max_length``, the text keeps its first ``int(words * doc_max_length / n)``
    whitespace-separated words, re-joined by single spaces (so a cut text also loses its original
    whitespace). A truthy instruction is stripped and followed by a space and the separator; an
    empty one leaves just the separator in front of the text.
    """
    n_tokens = _count_tokens(tokenizer, text, max_length)
    while n_tokens > doc_max_length:
        words = text.split()
        keep = int(len(words) * (doc_max_length / n_tokens))
        text = " ".join(words[:keep])
        n_tokens = _count_tokens(tokenizer, text, max_length)
    if instruction:
        return f"{instruction.strip()} {SEPARATOR}{text}"
    return SEPARATOR + text


# follows llm2vec/llm2vec.py, LLM2Vec.prepare_for_tokenization
def prepare_for_tokenization(text: str, name_or_path: str, config, pooling_mode: str = "mean") -> str:
    """The chat wrapper chosen by ``name_or_path`` and, for ``eos_token`` pooling, the EOS suffix.

    Checked in llm2vec's order: Meta-Llama-3-8B-Instruct wraps and returns at once (no EOS suffix
    even for ``eos_token`` pooling); Mistral-7B-Instruct-v0.2 / Llama-2-7b-chat-hf, gemma-2-9b-it
    and Qwen2-1.5B/7B-Instruct wrap and go on. With ``eos_token`` pooling a suffix follows, chosen
    first by the exact name Meta-Llama-3-8B, then by the config class (``isinstance``): Llama or
    Mistral -> ``" </s>"`` (plain text for tokenizers without that token), Gemma -> ``"<eos>"``,
    Qwen2 -> ``"<|endoftext|>"``; other configs get none.
    """
    if name_or_path == "meta-llama/Meta-Llama-3-8B-Instruct":
        return "<|start_header_id|>user<|end_header_id|>\n\n" + text.strip() + "<|eot_id|>"
    if name_or_path in ("mistralai/Mistral-7B-Instruct-v0.2", "meta-llama/Llama-2-7b-chat-hf"):
        text = "[INST] " + text.strip() + " [/INST]"
    if name_or_path in ("google/gemma-2-9b-it",):
        text = "<bos><start_of_turn>user\n" + text.strip() + "<end_of_turn>"
    if name_or_path in ("Qwen/Qwen2-1.5B-Instruct", "Qwen/Qwen2-7B-Instruct"):
        text = "<|im_start|>user\n" + text.strip() + "<|im_end|>"
    if pooling_mode == "eos_token":
        if name_or_path == "meta-llama/Meta-Llama-3-8B":
            text = text.strip() + "<|end_of_text|>"
        elif isinstance(config, (LlamaConfig, MistralConfig)):
            text = text.strip() + " </s>"
        elif isinstance(config, GemmaConfig):
            text = text.strip() + "<eos>"
        elif isinstance(config, Qwen2Config):
            text = text.strip() + "<|endoftext|>"
    return text


# follows llm2vec/llm2vec.py, LLM2Vec.tokenize (for a batch of one text, hence no padding)
def tokenize_one(tokenizer, text: str, max_length: int = 512) -> dict[str, torch.Tensor]:
    """``input_ids``, ``attention_mask`` and ``embed_mask`` (each ``(1, L)``) of one prepared text.

    The text is split at the separator; the model input is all parts joined back without it,
    tokenized with special tokens and truncated to ``max_length``. The embed mask marks the last
    ``n`` positions, ``n`` being the token count of the part right after the first separator
    tokenized ALONE (no special tokens, truncated to ``max_length``); a text without separator
    has an all-zero embed mask.
    """
    parts = text.split(SEPARATOR)
    span = parts[1] if len(parts) > 1 else ""
    full = "".join(parts)
    encoded = tokenizer(full, truncation=True, max_length=max_length, return_tensors="pt")
    input_ids = encoded["input_ids"]
    attention_mask = encoded["attention_mask"]
    n_span = _count_tokens(tokenizer, span, max_length)
    embed_mask = torch.zeros_like(attention_mask)
    if n_span > 0:
        embed_mask[0, -n_span:] = 1  # a span longer than the input marks the whole row
    return {"input_ids": input_ids, "attention_mask": attention_mask, "embed_mask": embed_mask}


# follows the forward of llm2vec/models/bidirectional_{llama,mistral,qwen2,gemma}.py (*BiModel):
# their _update_causal_mask builds a zero (nothing masked) additive mask instead of the causal one
def forward_hidden(model, input_ids: torch.Tensor, bidirectional: bool = True) -> torch.Tensor:
    """Last hidden states ``(1, L, H)`` of one unpadded text, bidirectional or causal.

    The model gets a ready 4D additive mask ``(1, 1, L, L)``, which transformers 5 passes
    unchanged to every attention layer (eager adds it, SDPA uses it as ``attn_mask`` and so does
    not set ``is_causal``). Bidirectional: all zeros, every token sees every token, as in
    llm2vec's Bi models. Causal: ``finfo.min`` above the diagonal, as llm2vec's ``AutoModel``
    path; explicit, so that it stays causal even for a model whose config says
    ``is_causal=False`` (transformers 5 then builds bidirectional masks from a 2D mask).
    Positions are ``0..L-1`` in both cases.
    """
    implementation = getattr(model.config, "_attn_implementation", None)
    if implementation not in ("eager", "sdpa"):
        raise ValueError(f"a 4D additive mask needs eager or sdpa attention, not {implementation!r}")
    length = input_ids.shape[1]
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    input_ids = input_ids.to(device)
    position_ids = torch.arange(length, device=device).unsqueeze(0)
    attention_mask = torch.zeros(1, 1, length, length, dtype=dtype, device=device)
    if not bidirectional:
        above_diagonal = torch.ones(length, length, dtype=torch.bool, device=device).triu(diagonal=1)
        attention_mask[0, 0].masked_fill_(above_diagonal, torch.finfo(dtype).min)
    with torch.no_grad():
        output = model(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
    return output.last_hidden_state


# follows llm2vec/llm2vec.py, LLM2Vec.get_pooling (and _skip_instruction) for one unpadded row
def pool(
    hidden: torch.Tensor,
    features: dict[str, torch.Tensor],
    pooling_mode: str = "mean",
    skip_instruction: bool = True,
    bos_token_id: int | None = None,
) -> torch.Tensor:
    """The ``(H,)`` embedding of one row of ``hidden`` ``(1, L, H)``.

    ``skip_instruction`` replaces the attention mask by the embed mask; ``length`` = its sum.
    mean: mean of the last ``length`` positions; note that llm2vec slices ``[-length:]``, so a
    length of 0 averages ALL positions. weighted_mean: weights ``1..length`` over the last
    ``length`` positions, normalised (all zero when length is 0). eos_token / last_token: the last
    position. bos_token: the position holding ``bos_token_id`` (exactly one is required here;
    llm2vec would return as many rows as there are such tokens).
    """
    mask = features["embed_mask"] if skip_instruction else features["attention_mask"]
    length = int(mask[0].sum())
    row = hidden[0]
    if pooling_mode == "mean":
        return row[-length:].mean(dim=0)  # -0: is the whole row, as in llm2vec
    if pooling_mode == "weighted_mean":
        weights = torch.zeros(row.shape[0], dtype=row.dtype, device=row.device)
        if length > 0:
            weights[-length:] = torch.arange(1, length + 1, dtype=row.dtype, device=row.device)
            weights = weights / torch.clamp(weights.sum(), min=1e-9)
        return (row * weights.unsqueeze(-1)).sum(dim=0)
    if pooling_mode in ("eos_token", "last_token"):
        return row[-1]
    if pooling_mode == "bos_token":
        selected = row[features["input_ids"][0].to(row.device) == bos_token_id]
        if selected.shape[0] != 1:
            raise ValueError(f"bos_token pooling needs exactly one BOS token in the input, found {selected.shape[0]}")
        return selected[0]
    raise ValueError(f"{pooling_mode} is not implemented yet.")


def llm2vec_reference_embeddings(
    model,
    tokenizer,
    name_or_path: str,
    sentences,
    pooling_mode: str = "mean",
    max_length: int = 512,
    doc_max_length: int = 400,
    skip_instruction: bool = True,
    bidirectional: bool = True,
) -> torch.Tensor:
    """What ``LLM2Vec.encode(sentences)`` returns, computed one text per forward pass, float32 ``(n, H)``.

    ``model`` is a transformers base model (``AutoModel``: no LM head; float32, eval mode, with
    any adapters already merged), ``tokenizer`` its tokenizer and ``name_or_path`` stands for
    llm2vec's ``model.config._name_or_path`` (which picks the prompt wrapper). ``sentences`` are
    strings, ``[instruction, text]`` pairs or ``[instruction, text, id]`` triples.
    """
    if pooling_mode not in POOLING_MODES:
        raise ValueError(f"{pooling_mode} is not implemented yet.")
    rows = []
    for instruction, text in normalize_sentences(sentences):
        joined = convert_to_str(tokenizer, instruction, text, max_length=max_length, doc_max_length=doc_max_length)
        prepared = prepare_for_tokenization(joined, name_or_path, model.config, pooling_mode)
        features = tokenize_one(tokenizer, prepared, max_length=max_length)
        hidden = forward_hidden(model, features["input_ids"], bidirectional=bidirectional)
        rows.append(pool(hidden, features, pooling_mode, skip_instruction, tokenizer.bos_token_id).detach().cpu())
    if not rows:
        return torch.zeros(0, model.config.hidden_size, dtype=torch.float32)
    # LLM2Vec.encode: embeddings are returned in input order, as float32
    return torch.stack(rows).to(torch.float32)
