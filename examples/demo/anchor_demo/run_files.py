"""Files and small values the demo keeps between runs: fingerprints, JSON state, config keys.

Also the cleanup after an interrupted download of a pinned asset, which is staged in
``.<name>.tmp-<pid>`` beside its file: :func:`remove_stale_siblings` removes such a folder once
its process is gone. (Built folders are staged by :func:`llm2vec.files.staged_folder`.)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from llm2vec.files import pid_alive, write_text_atomically


class DemoError(RuntimeError):
    """A step of the demo failed (the message says which and why)."""


def fingerprint_of(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def folder_fingerprint(folder: Path, patterns: Sequence[str]) -> str:
    """A fingerprint of the files of ``folder`` matching ``patterns``: names, sizes, mtimes."""
    entries = []
    for pattern in patterns:
        for path in sorted(folder.glob(pattern)):
            if path.is_file():
                stat = path.stat()
                entries.append((path.relative_to(folder).as_posix(), stat.st_size, stat.st_mtime_ns))
    if not entries:
        raise DemoError(f"{folder} holds none of {list(patterns)}")
    return fingerprint_of(sorted(set(entries)))


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def config_values(path: Path) -> dict[str, Any]:
    data = read_json(path)
    if not isinstance(data, dict):
        raise DemoError(f"{path}: not a JSON object (or missing)")
    return data


def override_value(overrides: Sequence[str], key: str) -> str | None:
    """The last value given for ``--key`` in ``--key value`` / ``--key=value`` overrides."""
    value = None
    items = list(overrides)
    for index, item in enumerate(items):
        name, sep, inline = item.partition("=")
        if name.replace("-", "_") != f"--{key}":
            continue
        if sep:
            value = inline
        elif index + 1 < len(items):
            value = items[index + 1]
    return value


def effective_value(config: Mapping[str, Any], overrides: Sequence[str], key: str) -> Any:
    raw = override_value(overrides, key)
    if raw is None:
        return config.get(key)
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def remove_stale_siblings(output_dir: Path, log: Callable[[str], None]) -> None:
    """Delete temporary siblings of ``output_dir`` left by interrupted runs whose process is gone."""
    pattern = re.compile(rf"^\.{re.escape(output_dir.name)}\.(?:tmp|old)-(\d+)$")
    if not output_dir.parent.is_dir():
        return
    for path in output_dir.parent.iterdir():
        match = pattern.match(path.name)
        if match and path.is_dir() and int(match.group(1)) != os.getpid() and not pid_alive(int(match.group(1))):
            log(f"removing leftover temporary folder {path}")
            shutil.rmtree(path, ignore_errors=True)
