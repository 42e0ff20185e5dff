"""Streaming reader for JSONL files with precise error locations.

Files are read one line at a time (the E5 mixture is 3.6 GB) and each parsed object is handed
out only long enough for the caller to pick the strings it keeps, so no raw dict outlives its
line.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


# Every data problem raises one of these instead of being skipped: a silently dropped file or
# line would change the training mixture without anyone noticing.
class DatasetError(ValueError):
    """Invalid training data or dataset configuration (the message names the file and line)."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """A data directory or file does not exist (the message says where the data comes from)."""


@dataclass(frozen=True, slots=True)
class JsonlLine:
    """One parsed, non-blank line of a JSONL file.

    Attributes:
        path: the file the line comes from.
        line_number: 1-based physical line number (blank lines are counted), for error messages.
        record: the JSON object on the line.
    """

    path: Path
    line_number: int
    record: dict[str, Any]

    @property
    def location(self) -> str:
        """``"<path>:<line>"``, the prefix of every error about this line."""
        return f"{self.path}:{self.line_number}"

    def text(self, key: str) -> str:
        """Return the required non-empty string under ``key``.

        Raises:
            DatasetError: if the key is missing, its value is not a string, or the string is
                empty or whitespace-only (the message names file, line and key).
        """
        if key not in self.record:
            present = ", ".join(repr(k) for k in self.record) or "none"
            raise DatasetError(
                f"{self.location}: missing key {key!r} (keys present: {present})"
            )
        value = self.record[key]
        if not isinstance(value, str):
            raise DatasetError(
                f"{self.location}: key {key!r} must be a string, got {type(value).__name__}"
            )
        if not value.strip():
            raise DatasetError(f"{self.location}: key {key!r} is empty or whitespace-only")
        return value

    def optional_text(self, key: str) -> str | None:
        """Return the string under ``key``, or ``None`` if the key is absent or JSON ``null``.

        A value that is present must still be a non-empty string: an empty text is a data bug,
        not a way to say "no value".

        Raises:
            DatasetError: if the value is present but not a non-empty string.
        """
        if self.record.get(key) is None:
            return None
        return self.text(key)

    def pair_texts(self, require_negative: bool) -> tuple[str, str, str | None]:
        """The ``query``, ``positive`` and (required or optional) ``negative`` of a pair line."""
        negative = self.text("negative") if require_negative else self.optional_text("negative")
        return self.text("query"), self.text("positive"), negative


def iter_jsonl(path: Path) -> Iterator[JsonlLine]:
    """Yield the JSON object of every non-blank line of ``path``, streaming.

    Whitespace-only lines are skipped wherever they are: they hold no sample, so skipping them
    loses nothing (editors and ``cat``-ed files often leave one at the end).

    Raises:
        DatasetNotFoundError: if ``path`` is not a file.
        DatasetError: if a line is not valid UTF-8, not valid JSON, or not a JSON object; the
            message is ``"<path>:<line>: ..."`` with the 1-based line number.
    """
    if not path.is_file():
        raise DatasetNotFoundError(f"JSONL file not found: {path}")
    # Binary mode and per-line decoding, so that a decoding error can name its line (text mode
    # decodes in blocks and would only say "somewhere in the file").
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            location = f"{path}:{line_number}"
            try:
                # utf-8-sig on the first line so a byte-order mark is not a JSON error.
                line = raw.decode("utf-8-sig" if line_number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise DatasetError(f"{location}: not valid UTF-8 ({error})") from None
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(
                    f"{location}: malformed JSON ({error.msg}, column {error.colno})"
                ) from None
            if not isinstance(record, dict):
                raise DatasetError(
                    f"{location}: expected a JSON object, got {type(record).__name__}"
                )
            yield JsonlLine(path, line_number, record)
