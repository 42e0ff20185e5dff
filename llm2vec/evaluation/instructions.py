"""Task instructions for evaluation: the paper's Table 13 (E5-mistral's instructions).

The instructions file maps mteb task names to instructions, each ending with a colon as in the
release. The paper's file ships with the package (``llm2vec/evaluation/data/``, read with
``importlib.resources``) and is the default; ``test_configs/mteb/task_to_instructions.json`` is a
link to it for the release's command line. An instruction is prepended to queries and to both
sides of symmetric tasks (STS, classification, clustering, ...), never to retrieval documents.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

__all__ = [
    "MissingInstructionError",
    "default_instructions_path",
    "load_task_instructions",
    "format_instruction",
    "missing_instructions",
    "check_instructions",
]


class MissingInstructionError(KeyError):
    """A task has no instruction in the instructions file."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0]) if self.args else ""


def default_instructions_path() -> Traversable:
    """The packaged Table 13 file, ``llm2vec/evaluation/data/task_to_instructions.json``.

    A ``Traversable`` (a ``pathlib.Path`` for an ordinary installation): read it with
    ``read_text``, or pass ``None`` to :func:`load_task_instructions`.
    """
    return resources.files("llm2vec.evaluation") / "data" / "task_to_instructions.json"


def load_task_instructions(path: str | os.PathLike | None = None) -> dict[str, str]:
    """Read a ``{task name: instruction}`` JSON file (default: :func:`default_instructions_path`).

    A given ``path`` is read as given (a relative one from the working directory).

    Raises:
        FileNotFoundError: ``path`` does not exist (the message names it).
        ValueError: the file is not a JSON object of strings.
    """
    if path is None:
        source: Traversable | Path = default_instructions_path()
    else:
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(
                f"instructions file {source} not found (a relative path is read from the working directory, "
                f"{Path.cwd()}); without a path, the paper's instructions shipped with llm2vec are used"
            )
    data = json.loads(source.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{source}: expected a JSON object mapping task names to instructions")
    for name, instruction in data.items():
        if not isinstance(instruction, str):
            raise ValueError(f"{source}: the instruction of {name!r} is not a string: {instruction!r}")
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
    task_names: Iterable[str],
    instructions: Mapping[str, str],
    source: str | os.PathLike | Traversable | None = None,
) -> None:
    """Raise :class:`MissingInstructionError` naming every task of ``task_names`` without one."""
    missing = missing_instructions(task_names, instructions)
    if missing:
        where = f" in {source}" if source is not None else ""
        raise MissingInstructionError(
            f"no instruction{where} for task(s): {', '.join(missing)}. Add them to the file "
            "(or pass --allow_missing_instructions to encode these tasks without an instruction)."
        )
