"""Read a run's JSON config and command-line overrides into argument dataclasses."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser


class ConfigError(ValueError):
    """A training config or override that cannot be used; the message names the file and key."""


def _parse_override_value(raw: str) -> Any:
    # JSON literals give numbers, booleans, null and lists; anything else is a plain string.
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


def parse_overrides(arguments: Sequence[str]) -> dict[str, Any]:
    """``--key value`` or ``--key=value`` pairs into a dict of JSON-typed values."""
    overrides: dict[str, Any] = {}
    index = 0
    while index < len(arguments):
        token = arguments[index]
        if not token.startswith("--"):
            raise ConfigError(f"expected --key value after the config file, got {token!r}")
        key, equals, value = token[2:].partition("=")
        if not equals:
            if index + 1 >= len(arguments) or arguments[index + 1].startswith("--"):
                raise ConfigError(f"override --{key} has no value; write --{key} VALUE")
            index += 1
            value = arguments[index]
        overrides[key.replace("-", "_")] = _parse_override_value(value)
        index += 1
    return overrides


def load_config_dict(path: str | Path) -> dict[str, Any]:
    """The JSON object in ``path``, with errors that name the file and the offending line."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ConfigError(f"{path}:{error.lineno}: invalid JSON ({error.msg})") from error
    if not isinstance(config, dict):
        raise ConfigError(f"{path} must hold a JSON object of training arguments")
    return config


def parse_config(dataclass_types: Sequence[type], argv: Sequence[str] | None = None) -> tuple[Any, ...]:
    """Parse ``CONFIG.json [--key value ...]`` into instances of ``dataclass_types``.

    Overrides replace the config's values. Unknown keys, in the file or on the command line, are
    errors that list the file; the dataclasses' own validation (e.g. TrainingArguments) still runs.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("--"):
        raise ConfigError("usage: SCRIPT CONFIG.json [--key value ...]")
    path, overrides = argv[0], parse_overrides(argv[1:])
    config = load_config_dict(path)
    config.update(overrides)
    parser = HfArgumentParser(dataclass_types)
    known = {name for dtype in dataclass_types for name in dtype.__dataclass_fields__}
    unknown = sorted(set(config) - known)
    if unknown:
        source = "the command line" if set(unknown) <= set(overrides) else path
        raise ConfigError(
            f"unknown key(s) {unknown} in {source}; every key must be a field of "
            f"{', '.join(d.__name__ for d in dataclass_types)} (see docs/configs.md)"
        )
    try:
        return tuple(parser.parse_dict(config, allow_extra_keys=False))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from error
