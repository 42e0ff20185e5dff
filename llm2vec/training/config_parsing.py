"""Read a run's JSON config and command-line overrides into argument dataclasses."""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import HfArgumentParser

from llm2vec.training.legacy_keys import translate_legacy_keys


class ConfigError(ValueError):
    """A training config or override that cannot be used; the message names the file and key."""


def _parse_override_value(raw: str) -> Any:
    # JSON literals give numbers, booleans, null and lists; anything else is a plain string.
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw


_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _as_bool(key: str, value: Any) -> bool:
    # A string is truthy whatever it says: "False" must not mean true.
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"{key} must be true or false (also 1/0, yes/no), got {value!r}")


def _check_value(key: str, annotation: Any, value: Any) -> Any:
    """``value`` as a value of the field type ``annotation``; complex types are left to the dataclass."""
    if annotation is bool:
        return _as_bool(key, value)
    if annotation is int:
        if _is_number(value) and float(value).is_integer():
            return int(value)
        raise ValueError(f"{key} must be a whole number, got {value!r}")
    if annotation is float:
        if _is_number(value):
            return value  # ints stay ints: some float fields (save_steps) mean a count when whole
        raise ValueError(f"{key} must be a number, got {value!r}")
    if annotation is str:
        if isinstance(value, str):
            return value
        if _is_number(value):  # e.g. --run_name 42
            return str(value)
        raise ValueError(f"{key} must be a string, got {value!r}")
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [m for m in typing.get_args(annotation) if m is not type(None)]
        if value is None and len(members) < len(typing.get_args(annotation)):
            return None
        if len(members) == 1:
            return _check_value(key, members[0], value)
        if set(members) == {bool, str} and isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return _as_bool(key, value)
    return value


def check_value_types(dataclass_types: Sequence[type], config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with every value checked against its field's type (booleans parsed strictly).

    Raises:
        ValueError: a value of the wrong type, naming the key.
    """
    annotations = {}
    for dtype in dataclass_types:
        hints = typing.get_type_hints(dtype)
        annotations.update({f.name: hints[f.name] for f in dataclasses.fields(dtype)})
    return {key: _check_value(key, annotations[key], value) for key, value in config.items()}


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


def parse_config(
    dataclass_types: Sequence[type], argv: Sequence[str] | None = None, defaults: Mapping[str, Any] | None = None
) -> tuple[Any, ...]:
    """Parse ``CONFIG.json [--key value ...]`` into instances of ``dataclass_types``.

    Overrides replace the config's values; ``defaults`` (an entry point's own) fill keys that
    neither sets, in place of the dataclasses' defaults. Unknown keys and values of the wrong type, in the file
    or on the command line, are errors that name the key and where it came from; the dataclasses'
    own validation (e.g. TrainingArguments, the settings' rules) still runs.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("--"):
        raise ConfigError("usage: SCRIPT CONFIG.json [--key value ...]")
    path, overrides = argv[0], parse_overrides(argv[1:])
    from_file = load_config_dict(path)
    try:
        from_file = translate_legacy_keys(from_file, str(path))
        overrides = translate_legacy_keys(overrides, "the command line")
    except ValueError as error:
        raise ConfigError(str(error)) from error
    known = {name for dtype in dataclass_types for name in dtype.__dataclass_fields__}
    for source, values in ((path, from_file), ("the command line", overrides)):
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown key(s) {unknown} in {source}; every key must be a field of "
                f"{', '.join(d.__name__ for d in dataclass_types)} (see docs/configs.md)"
            )
    config = dict(check_value_types(dataclass_types, dict(defaults or {})))
    for source, values in ((path, from_file), ("the command line", overrides)):
        try:
            config.update(check_value_types(dataclass_types, values))
        except ValueError as error:
            raise ConfigError(f"{source}: {error}") from error
    try:
        return tuple(HfArgumentParser(dataclass_types).parse_dict(config, allow_extra_keys=False))
    except (TypeError, ValueError) as error:
        raise ConfigError(f"{path}: {error}") from error
