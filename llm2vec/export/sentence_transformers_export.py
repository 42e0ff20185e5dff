"""Export a trained :class:`~llm2vec.LLM2Vec` as a sentence-transformers model folder.

The folder holds the (merged) transformer, a tokenizer that produces exactly the token ids of
``LLM2Vec.encode``, a Pooling module and ``config_sentence_transformers.json`` with per-task
prompts; ``SentenceTransformer(folder).encode(texts, prompt_name=task)`` then reproduces
``LLM2Vec.encode([[instruction, text], ...])``. No remote code is involved: the template's BOS,
prefix and suffix/EOS become fixed special pieces of the tokenizer's post-processor (so Hugging
Face truncation keeps the EOS, as LLM2Vec does), instructions become prompts, padding is on the
right. How each setting is expressed, and the limits (instructed texts longer than
``doc_max_length``, mean pooling with ``skip_instruction``, ``release_compat``), are in
docs/evaluation.md, "sentence-transformers export".
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from llm2vec.tokenization import SEPARATOR

if TYPE_CHECKING:
    from llm2vec.llm2vec import LLM2Vec

__all__ = [
    "POOLING_TO_ST",
    "ExportReport",
    "ExportError",
    "export_sentence_transformers",
    "instruction_prompts",
    "probe_texts",
]

#: LLM2Vec pooling mode -> sentence-transformers pooling mode
POOLING_TO_ST: dict[str, str] = {
    "eos_token": "lasttoken",
    "last_token": "lasttoken",
    "bos_token": "cls",
    "mean": "mean",
    "weighted_mean": "weightedmean",
}
_LEGACY_POOLING_KEYS = {
    "cls": "pooling_mode_cls_token",
    "mean": "pooling_mode_mean_tokens",
    "max": "pooling_mode_max_tokens",
    "mean_sqrt_len_tokens": "pooling_mode_mean_sqrt_len_tokens",
    "weightedmean": "pooling_mode_weightedmean_tokens",
    "lasttoken": "pooling_mode_lasttoken",
}
TEMPLATE_PROMPT_NAME = "llm2vec_template"
_PROBE_INSTRUCTION = "Retrieve semantically similar text:"
_STALE_FILES = (
    "chat_template.jinja",
    "chat_template.json",
    "llm2vec_config.json",
    "adapter_config.json",
    "adapter_model.safetensors",
    "adapter_model.bin",
)


class ExportError(ValueError):
    """The encoder cannot be exported faithfully (see the message for the reason)."""


@dataclass
class ExportReport:
    """What was written and how faithful it is."""

    output_dir: Path
    layout: str  # "tokenizer": template prefix in the post-processor; "prompt": prefix in the prompts
    pooling_mode: str  # sentence-transformers pooling mode
    include_prompt: bool
    max_seq_length: int
    prompts: dict[str, str]
    default_prompt_name: str | None
    exact: bool
    merged: bool
    strips_whitespace: bool = True
    max_abs_diff: float | None = None
    min_cosine: float | None = None
    limitations: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["output_dir"] = str(self.output_dir)
        return data


# ------------------------------------------------------------------------------------------------ prompts
def instruction_prompts(instructions: Mapping[str, str], base: str = "") -> dict[str, str]:
    """sentence-transformers prompts for ``{task: instruction}``, following mteb's prompt lookup.

    Each task gets ``{task}: base + "{instruction} "`` (queries and every text of symmetric tasks,
    as the project's mteb encoder does) and ``{task}-document: base`` (mteb looks up
    ``{task}-document`` first for the corpus side of retrieval/reranking, which gets no
    instruction). ``query`` and ``document`` map to ``base`` (the template prefix or nothing).
    """
    prompts: dict[str, str] = {"query": base, "document": base}
    for task, instruction in instructions.items():
        instruction = instruction.strip()
        prompts[task] = f"{base}{instruction} " if instruction else base
        prompts[f"{task}-document"] = base
    return prompts


def _load_default_instructions(path: str | os.PathLike | None) -> dict[str, str]:
    """``path`` (``None``: the packaged Table 13 file), formatted as the mteb encoder does."""
    from llm2vec.evaluation.instructions import format_instruction, load_task_instructions

    return {task: format_instruction(text) for task, text in load_task_instructions(path).items()}


# ------------------------------------------------------------------------------------------- tokenizer
def probe_texts(doc_max_length: int, surrounding_whitespace: bool = True) -> list[str]:
    """Texts that exercise punctuation, digits, unicode and truncation (the last one is longer
    than ``doc_max_length`` tokens), and, with ``surrounding_whitespace``, leading/trailing
    whitespace and the empty text."""
    long_words = " ".join(f"word{i % 97} and" for i in range(doc_max_length + 50))
    texts = [
        "hello world",
        "Punctuation first? (yes) - and, more!",
        "123 numbers come first",
        "new line\nin the middle\tand a tab",
        "ünïcödé text — with dashes … and emoji 🙂",
        "",
        "The city is large. " * 11 + "The end.",
        long_words,
    ]
    if surrounding_whitespace:
        texts[1:1] = ["  leading and trailing spaces  ", "\nnew line first", "trailing newline\n"]
    else:
        texts.remove("")  # an empty text after an instruction leaves the prompt's trailing space
    return texts


def _prefix_tail(prefix: str, special_tokens: Sequence[str]) -> str:
    """The part of ``prefix`` after its last special token (what precedes the text in a segment)."""
    tail = prefix
    for token in sorted(special_tokens, key=len, reverse=True):
        if token and token in tail:
            tail = tail.rsplit(token, 1)[1]
    return tail


def _build_tokenizer(encoder: LLM2Vec, layout: str, max_seq_length: int) -> Any:
    from tokenizers import Regex, Tokenizer, normalizers, processors
    from transformers import PreTrainedTokenizerFast

    source = encoder.tokenizer
    et = encoder.embedding_tokenizer
    prefix = encoder.template.prefix
    prefix_ids = source(prefix, add_special_tokens=False)["input_ids"] if prefix else []

    backend = Tokenizer.from_str(source.backend_tokenizer.to_str())
    specials: list[dict[str, Any]] = []
    pieces: list[str] = []

    def piece(name: str, ids: Sequence[int]) -> None:
        if ids:
            specials.append({"id": name, "ids": list(ids), "tokens": source.convert_ids_to_tokens(list(ids))})
            pieces.append(f"{name}:0")

    piece("[LLM2VEC_BEFORE]", et.special_before)
    if layout == "tokenizer":
        piece("[LLM2VEC_PREFIX]", prefix_ids)
    pieces.append("$A:0")
    piece("[LLM2VEC_SUFFIX]", et.suffix_ids)
    piece("[LLM2VEC_AFTER]", et.special_after)
    single = " ".join(pieces)
    backend.post_processor = processors.TemplateProcessing(
        single=single, pair=f"{single} $B:1", special_tokens=specials
    )
    steps: list[Any] = []
    if layout == "tokenizer" or not prefix:
        steps.append(normalizers.Strip(left=True, right=True))
    else:
        # The prompt starts with the prefix; LLM2Vec strips the text after it (when there is no
        # instruction): remove whitespace right after the prefix's last plain-text part. The
        # look-behind keeps the prefix's own characters (and their alignment) untouched.
        tail = _prefix_tail(prefix, list(source.all_special_tokens) + list(source.added_tokens_encoder))
        if tail:
            core = tail.rstrip()
            # Leading whitespace of the text (right after the prefix) and trailing whitespace of the
            # text, but not the prefix's own trailing whitespace when the text is empty. (Oniguruma:
            # \A / \z anchor the string, ^ / $ would also match at line breaks.)
            steps += [
                normalizers.Replace(Regex(f"(?<=\\A{re.escape(tail)})\\s+"), ""),
                normalizers.Replace(Regex(f"(?<!\\A{re.escape(core)})\\s+\\z"), ""),
            ]
        else:
            steps.append(normalizers.Strip(left=True, right=True))
    if backend.normalizer is not None:
        steps.append(backend.normalizer)
    backend.normalizer = normalizers.Sequence(steps)

    kwargs: dict[str, Any] = {
        "model_max_length": max_seq_length,
        "padding_side": "right",
        "truncation_side": "right",
        "clean_up_tokenization_spaces": False,
    }
    for name in ("bos_token", "eos_token", "unk_token", "pad_token"):
        value = getattr(source, name, None)
        if value is not None:
            kwargs[name] = str(value)
    return PreTrainedTokenizerFast(tokenizer_object=backend, **kwargs)


def _st_input(layout: str, prefix: str, instruction: str, text: str) -> str:
    """The string sentence-transformers tokenizes: prompt + text."""
    base = prefix if layout == "prompt" else ""
    return f"{base}{instruction.strip()} {text}" if instruction.strip() else f"{base}{text}"


def _llm2vec_text(instruction: str, text: str) -> str:
    instruction = instruction.strip()
    return f"{instruction} {SEPARATOR}{text}" if instruction else text


def _fits_with_instruction(encoder: LLM2Vec, instruction: str, texts: Sequence[str]) -> list[str]:
    """The texts that stay exact with ``instruction``: instruction + text within ``doc_max_length``
    tokens (longer instructed texts are the documented truncation limit)."""
    count = lambda text: len(encoder.tokenizer(text, add_special_tokens=False)["input_ids"])  # noqa: E731
    n_instruction = count(instruction) + 1
    return [text for text in texts if count(text) + n_instruction < encoder.doc_max_length]


def _check_ids(
    encoder: LLM2Vec, tokenizer: Any, layout: str, instructions: Sequence[str], texts: Sequence[str]
) -> str | None:
    """The first probe whose ids differ from LLM2Vec's, described; None if all agree."""
    et = encoder.embedding_tokenizer
    doc = encoder.doc_max_length
    cases: list[tuple[str, str]] = [("", t) for t in texts]
    for instruction in instructions:
        cases += [(instruction, text) for text in _fits_with_instruction(encoder, instruction, texts)]
    for instruction, text in cases:
        expected = et.encode_text(_llm2vec_text(instruction, text), text_max_length=doc).input_ids
        got = list(tokenizer(_st_input(layout, encoder.template.prefix, instruction, text), truncation=True)["input_ids"])
        if got != list(expected):
            return (
                f"instruction {instruction[:40]!r}, text {text[:40]!r}: LLM2Vec ids {expected[:12]}...{expected[-4:]} "
                f"({len(expected)}), exported tokenizer {got[:12]}...{got[-4:]} ({len(got)})"
            )
    return None


# ----------------------------------------------------------------------------------------------- export
def _is_peft(model: Any) -> bool:
    try:
        from peft import PeftModel
    except ImportError:  # pragma: no cover - peft is a dependency
        return False
    return isinstance(model, PeftModel)


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _versions() -> dict[str, str]:
    import transformers

    versions = {"pytorch": torch.__version__, "transformers": transformers.__version__}
    try:
        import sentence_transformers

        versions["sentence_transformers"] = sentence_transformers.__version__
    except ImportError:  # pragma: no cover - the eval extra installs it
        pass
    return versions


def _write_st_config(
    out: Path,
    hidden: int,
    pooling: str,
    include_prompt: bool,
    max_seq_length: int,
    prompts: dict[str, str],
    default_prompt_name: str | None,
) -> None:
    # The classic module paths and config keys load in sentence-transformers 5 and 6 alike (6 maps
    # them to its new modules and, without a modality_config, keeps the Transformer text-only).
    _write_json(
        out / "modules.json",
        [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        ],
    )
    _write_json(out / "sentence_bert_config.json", {"max_seq_length": max_seq_length, "do_lower_case": False})
    pooling_config: dict[str, Any] = {"word_embedding_dimension": hidden}
    pooling_config.update({key: mode == pooling for mode, key in _LEGACY_POOLING_KEYS.items()})
    pooling_config["include_prompt"] = include_prompt
    _write_json(out / "1_Pooling" / "config.json", pooling_config)
    _write_json(
        out / "config_sentence_transformers.json",
        {
            "__version__": _versions(),
            "model_type": "SentenceTransformer",
            "prompts": prompts,
            "default_prompt_name": default_prompt_name,
            "similarity_fn_name": "cosine",
        },
    )


def _readme(report: ExportReport, settings: dict[str, Any]) -> str:
    example = next(
        (k for k in report.prompts if k not in ("query", "document", TEMPLATE_PROMPT_NAME) and not k.endswith("-document")),
        None,
    )
    lines = [
        "# LLM2Vec encoder exported for sentence-transformers",
        "",
        "Written by `llm2vec.export.export_sentence_transformers`. The tokenizer adds the prompt template",
        f"(layout `{report.layout}`) and the pooled EOS itself; pooling `{report.pooling_mode}`,",
        f"max_seq_length {report.max_seq_length}, right padding.",
        "",
        "```python",
        "from sentence_transformers import SentenceTransformer",
        'model = SentenceTransformer("<this folder>")',
        'documents = model.encode(["a document"])',
    ]
    if example:
        lines.append(f'queries = model.encode(["a query"], prompt_name={example!r})  # "{{instruction}} " + text')
    lines += ["```", "", "LLM2Vec settings: `" + json.dumps(settings) + "`", "", "Limitations:", ""]
    lines += [f"- {item}" for item in report.limitations]
    lines += ["", "Do not load this folder with `LLM2Vec.from_pretrained`: its tokenizer already adds the template."]
    return "\n".join(lines) + "\n"


def _verify(
    encoder: LLM2Vec,
    out: Path,
    layout: str,
    instructions: Sequence[str],
    dtype: torch.dtype,
    surrounding_whitespace: bool = True,
) -> tuple[float, float]:
    """Max |difference| and min cosine between SentenceTransformer(out) and LLM2Vec.encode."""
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(out), device="cpu", model_kwargs={"dtype": dtype})
    texts = probe_texts(encoder.doc_max_length, surrounding_whitespace)[:-1]  # long text: documented limit
    prefix = encoder.template.prefix if layout == "prompt" else ""
    reference = [encoder.encode(texts, batch_size=4, show_progress_bar=False).float().numpy()]
    exported = [model.encode(texts, batch_size=4, convert_to_numpy=True)]
    for instruction in instructions:
        fitting = _fits_with_instruction(encoder, instruction, texts)
        if not fitting:
            continue
        pairs = [[instruction, t] for t in fitting]
        reference.append(encoder.encode(pairs, batch_size=4, show_progress_bar=False).float().numpy())
        prompt = f"{prefix}{instruction.strip()} "
        exported.append(model.encode(fitting, prompt=prompt, batch_size=4, convert_to_numpy=True))
    ref = np.concatenate(reference).astype(np.float64)
    got = np.concatenate(exported).astype(np.float64)
    diff = float(np.abs(ref - got).max())
    cos = (ref * got).sum(1) / (np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1) + 1e-12)
    del model
    return diff, float(cos.min())


def export_sentence_transformers(
    encoder: LLM2Vec,
    output_dir: str | os.PathLike,
    merge: bool = True,
    prompts: Mapping[str, str] | None = None,
    *,
    instructions_file: str | os.PathLike | None = None,
    verify: bool = True,
    allow_approximate: bool = False,
    atol: float | None = None,
) -> ExportReport:
    """Write a sentence-transformers folder that reproduces ``encoder.encode`` (docs/evaluation.md).

    Args:
        encoder: a trained LLM2Vec (base model, or base + PEFT adapter).
        output_dir: the folder to write (created; files of a previous export are replaced).
        merge: merge a PEFT adapter into the weights. This merges *in place*: ``encoder`` keeps
            the merged weights afterwards, as ``LLM2Vec.save(merge_before_save=True)`` does.
            With ``merge=False`` the adapter is written as is and sentence-transformers loads the
            base model named in its ``adapter_config.json`` (which must stay reachable).
        prompts: ``{name: instruction}``; each becomes the prompt ``"{instruction} "`` (plus
            ``{name}-document`` without instruction for mteb's corpus side). ``None`` reads
            ``instructions_file`` (default: the paper's Table 13 instructions shipped with
            ``llm2vec.evaluation``) and formats the instructions as the project's mteb encoder
            does. ``{}``: no task prompts.
        instructions_file: instructions JSON used when ``prompts`` is None.
        verify: load the folder with sentence-transformers and compare its embeddings with
            ``encoder.encode`` on probe texts, without and with instructions.
        allow_approximate: export pooling modes that cannot be reproduced exactly (mean pooling
            with ``skip_instruction``) instead of raising.
        atol: largest accepted |difference| in verification (default 1e-4; for half-precision
            weights a minimum cosine of 0.999 is accepted instead).

    Returns:
        an :class:`ExportReport` (also written to ``llm2vec_export.json``).

    Raises:
        ExportError: the encoder's settings cannot be expressed, or verification fails.
    """
    config = encoder.llm2vec_config
    if config.release_compat:
        raise ExportError(
            "release_compat encoders (the release's right-truncating tokenization) cannot be exported; "
            "load the checkpoint with release_compat=False"
        )
    if config.pooling_mode not in POOLING_TO_ST:
        raise ExportError(f"pooling_mode '{config.pooling_mode}' has no sentence-transformers equivalent")
    st_pooling = POOLING_TO_ST[config.pooling_mode]
    exact_pooling = not (config.pooling_mode in ("mean", "weighted_mean") and config.skip_instruction)
    limitations = [
        "sentence-transformers truncates prompt and text together: an instructed text is exact while "
        f"instruction + text fit in doc_max_length ({config.doc_max_length}) tokens; beyond that it loses its "
        "last n_instruction tokens compared with LLM2Vec.encode. Texts without instruction are always exact.",
    ]
    if not exact_pooling:
        message = (
            f"{config.pooling_mode} pooling with skip_instruction=True averages only the text tokens (after the "
            "BOS, the template prefix and the instruction); sentence-transformers can only exclude a prompt it "
            "measures by tokenizing the prompt alone, and never the BOS/template of prompt-less texts"
        )
        if not allow_approximate:
            raise ExportError(message + "; pass allow_approximate=True to export an approximation")
        limitations.append("APPROXIMATE: " + message + ".")

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in _STALE_FILES:
        if (out / name).exists():
            (out / name).unlink()
    if (out / "1_Pooling").is_dir():
        shutil.rmtree(out / "1_Pooling")

    # ---- weights
    merged = False
    if _is_peft(encoder.model):
        if merge:
            encoder.model = encoder.model.merge_and_unload()
            merged = True
        else:
            limitations.append(
                "the PEFT adapter is not merged: the base model named in adapter_config.json must stay reachable."
            )
    if config.enable_bidirectional:
        limitations.append(
            "bidirectional attention relies on config.is_causal=False being honoured when the model is reloaded."
        )
    encoder.model.save_pretrained(out)
    dtype = next(encoder.model.parameters()).dtype

    # ---- tokenizer: the template prefix as fixed ids if that reproduces LLM2Vec, else in the prompts
    instructions = dict(prompts) if prompts is not None else _load_default_instructions(instructions_file)
    et = encoder.embedding_tokenizer
    prefix = encoder.template.prefix
    # The row length LLM2Vec gives a text longer than every cap (BOS + prefix + cut text + suffix):
    # sentence-transformers truncates every input to it.
    long_text = " ".join(["word"] * (config.max_length + config.doc_max_length + 8))
    max_seq_length = len(et.encode_text(long_text, text_max_length=config.doc_max_length).input_ids)
    distinct = sorted({text.strip() for text in instructions.values() if text.strip()})
    probe_instructions = [_PROBE_INSTRUCTION, *distinct]
    all_probes = probe_texts(config.doc_max_length)

    clean_probes = probe_texts(config.doc_max_length, surrounding_whitespace=False)
    failures: dict[str, str] = {}
    layout: str | None = None
    tokenizer: Any = None
    strips_whitespace = True
    # Prefer a layout that reproduces every probe; else one that is exact for texts without
    # surrounding whitespace (e.g. Metaspace tokenizers, whose "first word" marker follows the
    # original offsets, so a stripped text loses it).
    for probes, strict in ((all_probes, True), (clean_probes, False)):
        for candidate in ("tokenizer", "prompt") if prefix else ("tokenizer",):
            tokenizer = _build_tokenizer(encoder, candidate, max_seq_length)
            problem = _check_ids(encoder, tokenizer, candidate, probe_instructions, probes)
            if problem is None:
                layout = candidate
                break
            failures.setdefault(candidate, problem)
        if layout is not None:
            strips_whitespace = strict
            break
    if layout is None:
        details = "; ".join(f"{name}: {problem}" for name, problem in failures.items())
        raise ExportError(f"no tokenizer layout reproduces LLM2Vec's token ids ({details})")
    tokenizer.save_pretrained(out)

    # Reload as sentence-transformers will (AutoTokenizer) and check again: some tokenizer classes,
    # chosen from config.json's model type (Qwen2Tokenizer), rebuild their normalizer on load.
    from transformers import AutoTokenizer

    reloaded = AutoTokenizer.from_pretrained(out)
    problem = _check_ids(encoder, reloaded, layout, probe_instructions, all_probes if strips_whitespace else clean_probes)
    if problem is not None and strips_whitespace:
        if _check_ids(encoder, reloaded, layout, probe_instructions, clean_probes) is None:
            problem = None
            strips_whitespace = False
            failures["reload"] = f"transformers loads the tokenizer as {type(reloaded).__name__}, which rebuilds its normalizer"
    if problem is not None:
        raise ExportError(f"the saved tokenizer does not reload faithfully: {problem}")
    if not strips_whitespace:
        reason = failures.get("reload") or next(iter(failures.values()), "")
        limitations.append(
            "the exported tokenizer cannot strip the whitespace around a text as LLM2Vec does, so texts with "
            "leading/trailing whitespace (or empty texts with a prompt) get other ids: strip texts before "
            f"encoding to get identical embeddings (first mismatch: {reason})."
        )

    # ---- sentence-transformers configuration
    base = prefix if layout == "prompt" else ""
    st_prompts = instruction_prompts(instructions, base=base)
    default_prompt_name = None
    if layout == "prompt":
        st_prompts[TEMPLATE_PROMPT_NAME] = prefix
        default_prompt_name = TEMPLATE_PROMPT_NAME
        limitations.append(
            f"the template prefix {prefix!r} is part of every prompt (default prompt '{TEMPLATE_PROMPT_NAME}'); "
            "a custom prompt= passed to encode must start with it."
        )
    hidden = int(encoder.model.config.hidden_size)
    _write_st_config(out, hidden, st_pooling, exact_pooling, max_seq_length, st_prompts, default_prompt_name)

    report = ExportReport(
        output_dir=out,
        layout=layout,
        pooling_mode=st_pooling,
        include_prompt=exact_pooling,
        max_seq_length=max_seq_length,
        prompts=st_prompts,
        default_prompt_name=default_prompt_name,
        exact=exact_pooling,
        merged=merged,
        strips_whitespace=strips_whitespace,
        limitations=limitations,
    )
    settings = {**asdict(config), "template": asdict(encoder.template)}
    if verify:
        checked = [_PROBE_INSTRUCTION, *distinct[:3]]
        report.max_abs_diff, report.min_cosine = _verify(encoder, out, layout, checked, dtype, strips_whitespace)
        tolerance = atol if atol is not None else 1e-4
        ok = report.max_abs_diff <= tolerance or (
            dtype != torch.float32 and atol is None and report.min_cosine >= 0.999
        )
        if exact_pooling and not ok:
            raise ExportError(
                f"the exported model differs from LLM2Vec.encode: max |diff| {report.max_abs_diff:.3g}, "
                f"min cosine {report.min_cosine:.6f} (folder left in {out} for inspection)"
            )
    _write_json(out / "llm2vec_export.json", {**report.to_json(), "llm2vec_config": settings})
    (out / "README.md").write_text(_readme(report, settings), encoding="utf-8")
    return report
