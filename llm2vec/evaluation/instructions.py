"""Task instructions for evaluation: the paper's Table 13 (E5-mistral's instructions).

``test_configs/mteb/task_to_instructions.json`` maps mteb task names to instructions, each ending
with a colon as in the release. An instruction is prepended to queries and to both sides of
symmetric tasks (STS, classification, clustering, ...), never to retrieval documents.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

__all__ = [
    "DEFAULT_INSTRUCTIONS_FILE",
    "MissingInstructionError",
    "default_instructions_path",
    "load_task_instructions",
    "format_instruction",
    "missing_instructions",
    "check_instructions",
]

#: the instructions file, relative to the repository root (the scripts' default)
DEFAULT_INSTRUCTIONS_FILE = "test_configs/mteb/task_to_instructions.json"

_REPO_ROOT = Path(__file__).resolve().parents[2]


class MissingInstructionError(KeyError):
    """A task has no instruction in the instructions file."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0]) if self.args else ""


def default_instructions_path() -> Path:
    """``test_configs/mteb/task_to_instructions.json`` of this repository."""
    return _REPO_ROOT / DEFAULT_INSTRUCTIONS_FILE


def load_task_instructions(path: str | os.PathLike | None = None) -> dict[str, str]:
    """Read a ``{task name: instruction}`` JSON file (default: :func:`default_instructions_path`).

    A relative ``path`` that does not exist from the working directory is looked up from the
    repository root, so the default works from any directory.
    """
    path = Path(path) if path is not None else default_instructions_path()
    if not path.is_absolute() and not path.exists() and (_REPO_ROOT / path).exists():
        path = _REPO_ROOT / path
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a JSON object mapping task names to instructions")
    for name, instruction in data.items():
        if not isinstance(instruction, str):
            raise ValueError(f"{path}: the instruction of {name!r} is not a string: {instruction!r}")
    return dict(data)


def format_instruction(instruction: str) -> str:
    """An instruction as it is prepended: stripped, ending with a colon (as the release does)."""
    instruction = instruction.strip()
    if instruction and not instruction.endswith(":"):
        instruction = instruction.rstrip(".").rstrip() + ":"
    return instruction


def missing_instructions(task_names: Iterable[str], instructions: Mapping[str, str]) -> list[str]:
    """The names of ``task_names`` without an instruction, in order."""
    return [name for name in task_names if name not in instructions]


def check_instructions(
    task_names: Iterable[str], instructions: Mapping[str, str], source: str | os.PathLike | None = None
) -> None:
    """Raise :class:`MissingInstructionError` naming every task of ``task_names`` without one."""
    missing = missing_instructions(task_names, instructions)
    if missing:
        where = f" in {source}" if source is not None else ""
        raise MissingInstructionError(
            f"no instruction{where} for task(s): {', '.join(missing)}. Add them to the file "
            "(or pass --allow_missing_instructions to encode these tasks without an instruction)."
        )
