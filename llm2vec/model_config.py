"""``llm2vec_config.json``: the encoder settings stored beside every checkpoint, and their rules."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from llm2vec.pooling import POOLING_MODES
from llm2vec.prompts import TEMPLATES

CONFIG_NAME = "llm2vec_config.json"
#: how texts become token ids: this project's (``anchor``: the template around the text, the text's
#: tokens cut to ``doc_max_length``, the template and EOS always kept) or McGill-NLP llm2vec's
#: (``llm2vec``: its template chosen by model name, words cut to ``doc_max_length``, the whole row
#: truncated from the right), which its published checkpoints were trained with
TOKENIZATIONS = ("anchor", "llm2vec")


def _positive_int(value: Any) -> bool:
    # bool is an int subclass: `true` as a length is a config mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def _flag(value: Any) -> bool:
    return isinstance(value, bool)


#: what each setting must be: (test, description used in the error)
_RULES: dict[str, tuple[Any, str]] = {
    "pooling_mode": (lambda v: v in POOLING_MODES, f"one of {list(POOLING_MODES)}"),
    "max_length": (_positive_int, "a positive integer"),
    "doc_max_length": (_positive_int, "a positive integer"),
    "skip_instruction": (_flag, "true or false"),
    "enable_bidirectional": (_flag, "true or false"),
    "prompt_template": (lambda v: v == "auto" or v in TEMPLATES, f"'auto' or one of {sorted(TEMPLATES)}"),
    "alpha": (
        lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0,
        "a number in [0, 1]",
    ),
    "release_compat": (_flag, "true or false"),
    "tokenization": (lambda v: v in TOKENIZATIONS, f"one of {list(TOKENIZATIONS)}"),
    "llm2vec_model_name": (lambda v: v is None or isinstance(v, str), "null or a model name"),
}


@dataclass
class LLM2VecConfig:
    """Settings that change what an embedding is; saved so a checkpoint reloads as it was trained.

    This class owns their defaults and their rules: training arguments take both from here.
    """

    pooling_mode: str = "eos_token"
    max_length: int = 512
    doc_max_length: int = 400
    skip_instruction: bool = True
    enable_bidirectional: bool = False
    prompt_template: str = "auto"
    alpha: float = 0.2
    release_compat: bool = False
    tokenization: str = "anchor"
    #: the model name that chooses llm2vec's prompt format (``tokenization: llm2vec``); null: the
    #: loaded model's, as llm2vec takes it. Recorded at load, so a checkpoint keeps its format.
    llm2vec_model_name: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            problem = self.problem_with(f.name, getattr(self, f.name))
            if problem is not None:
                raise ValueError(f"{f.name} {problem}")

    @staticmethod
    def problem_with(name: str, value: Any) -> str | None:
        """What is wrong with ``value`` as setting ``name`` ("must be ..."), or None if it is fine."""
        test, description = _RULES[name]
        return None if test(value) else f"must be {description}, got {value!r}"

    def save(self, directory: str | os.PathLike) -> Path:
        """Write the config as ``llm2vec_config.json`` in ``directory``."""
        path = Path(directory) / CONFIG_NAME
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path

    @staticmethod
    def checked(stored: dict[str, Any], where: str | os.PathLike) -> dict[str, Any]:
        """``stored`` (a config read from ``where``) if every key is known and every value fits its rule.

        Raises:
            ValueError: naming ``where`` and the first unknown key or bad value.
        """
        known = {f.name for f in fields(LLM2VecConfig)}
        unknown = sorted(set(stored) - known)
        if unknown:
            raise ValueError(f"{where} has unknown keys {unknown}; known keys: {sorted(known)}")
        for name, value in stored.items():
            problem = LLM2VecConfig.problem_with(name, value)
            if problem is not None:
                raise ValueError(f"{where}: {name} {problem}")
        return stored
