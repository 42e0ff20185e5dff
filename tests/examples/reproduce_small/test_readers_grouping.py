"""Tests of ``repro_small.readers`` and ``repro_small.grouping`` on the fake wheels."""

from __future__ import annotations

import bz2
import zipfile
from pathlib import Path

import pytest

from repro_small import assets
from repro_small.grouping import bbc_groups, movie_groups
from repro_small.readers import ReviewRow, read_bbc, read_review_rows
from repro_small.records import SuiteDataError

from tests.examples.reproduce_small.fake_sources import (
    ARTICLES_PER_CLASS,
    CLASSES,
    PLOT_MOVIES,
    write_bbc_wheel,
    write_reviews_wheel,
)


def test_read_bbc(tmp_path: Path) -> None:
    articles = read_bbc(write_bbc_wheel(tmp_path))
    assert len(articles) == len(CLASSES) * ARTICLES_PER_CLASS + 3
    assert [a.key for a in articles] == sorted(a.key for a in articles)
    first = articles[0]
    assert first.key == "business/001" and first.label == "business"
    assert first.headline.startswith("Headline bus01") and "\n" not in first.body
    assert first.body.endswith("Prices at the café rose.")  # the Windows-1252 file is decoded


def test_read_bbc_rejects_a_file_without_body(tmp_path: Path) -> None:
    path = tmp_path / "bad.whl"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{assets.BBC_DATA_PREFIX}tech/001.txt", "Only a headline\n")
    with pytest.raises(SuiteDataError, match="tech/001.txt"):
        read_bbc(path)


def test_bbc_groups_join_duplicates_headlines_and_shared_sentences(tmp_path: Path) -> None:
    articles = read_bbc(write_bbc_wheel(tmp_path))
    index = {a.key: i for i, a in enumerate(articles)}
    groups = [sorted(articles[i].key for i in g) for g in bbc_groups(articles) if len(g) > 1]
    assert sorted(groups) == [
        ["entertainment/005", "tech/103"],  # a shared 8+ word sentence
        ["politics/003", "tech/101"],  # the same article in two classes
        ["sports/004", "tech/102"],  # the same headline
    ]
    assert sum(len(g) for g in bbc_groups(articles)) == len(index)


def test_read_review_rows(tmp_path: Path) -> None:
    wheel = write_reviews_wheel(tmp_path)
    snippets = read_review_rows(wheel, assets.REVIEWS_SNIPPETS_MEMBER)
    full = read_review_rows(wheel, assets.REVIEWS_FULL_MEMBER)
    assert {r.category for r in snippets} == {"plot", "fresh", "rotten"}
    assert sum(r.category == "plot" for r in snippets) == PLOT_MOVIES
    assert {(r.text, r.movie) for r in snippets} <= {(r.text, r.movie) for r in full}


def test_read_review_rows_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.whl"
    data = bz2.compress(b"category,text,movie_name\nfresh,Good.,a\nrotten-ish,Bad.,b\n")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("member.csv.bz2", data)
    with pytest.raises(SuiteDataError, match=r"member.csv.bz2:3: category 'rotten-ish'"):
        read_review_rows(path, "member.csv.bz2")
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("member.csv.bz2", bz2.compress(b"category,text\nfresh,Good.\n"))
    with pytest.raises(SuiteDataError, match="missing column"):
        read_review_rows(path, "member.csv.bz2")


def test_movie_groups_merge_names_not_empty_plots_nor_generic_snippets() -> None:
    rows = [
        ReviewRow("plot", "A long enough plot about a heist in a small town.", "heist"),
        ReviewRow("fresh", "Shared review text.", "heist"),
        ReviewRow("rotten", "Second shared review.", "heist"),
        ReviewRow("fresh", "Shared review text.", "heist_original_title"),
        ReviewRow("rotten", "Second shared review.", "heist_original_title"),
        ReviewRow("rotten", "Only under the second name.", "heist_original_title"),
        ReviewRow("plot", "", "empty_a"),
        ReviewRow("plot", "", "empty_b"),
        ReviewRow("fresh", "Conflicting label.", "other"),
        ReviewRow("rotten", "Conflicting label.", "other"),
        ReviewRow("fresh", "Nice piece of work.", "documentary_a"),  # a generic snippet under two movies
        ReviewRow("fresh", "Nice piece of work.", "documentary_b"),
        ReviewRow("fresh", "Only about documentary b.", "documentary_b"),
    ]
    movies = {m.key: m for m in movie_groups(rows, min_plot_words=5)}
    assert sorted(movies) == ["documentary_a", "documentary_b", "empty_a", "empty_b", "heist", "other"]
    heist = movies["heist"]
    assert heist.names == ("heist", "heist_original_title")
    assert heist.plots == ("A long enough plot about a heist in a small town.",)
    texts = [text for text, _ in heist.reviews]
    assert texts == ["Shared review text.", "Second shared review.", "Only under the second name."]
    assert movies["empty_a"].plots == () and movies["other"].reviews == ()
    assert movies["documentary_a"].reviews == ()
    assert movies["documentary_b"].reviews == (("Only about documentary b.", "fresh"),)
