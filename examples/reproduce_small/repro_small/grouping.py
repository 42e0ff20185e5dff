"""Duplicate groups, so that one story or one movie never ends up on both sides of a split.

BBC: the release holds exact duplicates (the same article under two file names, sometimes in two
classes) and follow-up stories that repeat a paragraph. Articles are grouped when they share a
sentence of 8+ words (the demo's near-duplicate rule), an identical body or an identical headline;
a group is used whole, on one side. Rotten Tomatoes: a movie can appear under two names (e.g. an
English and an original title) with the same reviews; names that share a plot text or at least
two review texts are one movie. One shared review is not enough: short generic snippets such as
"Nice piece of work." appear under unrelated movies; such a snippet, left under two movies, is
not used at all, since it cannot say which movie it reviews.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

from repro_small.demo_parts import near_duplicate_groups, norm
from repro_small.readers import BBCArticle, ReviewRow

__all__ = ["Movie", "bbc_groups", "movie_groups"]


class _UnionFind:
    """Disjoint sets over 0..n-1; a root is always the smallest index of its set."""

    def __init__(self, size: int) -> None:
        self.parent = list(range(size))

    def root(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.root(a), self.root(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)

    def union_by_key(self, keys: Iterable[tuple[int, Hashable]]) -> None:
        """Join every two indices given the same key."""
        first: dict[Hashable, int] = {}
        for i, key in keys:
            if key in first:
                self.union(first[key], i)
            else:
                first[key] = i

    def groups(self) -> list[list[int]]:
        """The sets, each sorted, ordered by their smallest index."""
        found: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            found.setdefault(self.root(i), []).append(i)
        return sorted(found.values(), key=lambda group: group[0])


def bbc_groups(articles: Sequence[BBCArticle]) -> list[list[int]]:
    """Indices of ``articles`` grouped by shared long sentence, identical body or identical headline."""
    sets = _UnionFind(len(articles))
    for group in near_duplicate_groups([a.body for a in articles]):
        for i in group[1:]:
            sets.union(group[0], i)
    sets.union_by_key((i, ("body", norm(a.body))) for i, a in enumerate(articles))
    sets.union_by_key((i, ("headline", norm(a.headline))) for i, a in enumerate(articles))
    return sets.groups()


@dataclass(frozen=True)
class Movie:
    """One movie after merging its names: plot texts and ``(review, label)`` pairs, each distinct."""

    key: str
    """the alphabetically first of its names"""
    names: tuple[str, ...]
    plots: tuple[str, ...]
    reviews: tuple[tuple[str, str], ...]


def movie_groups(rows: Sequence[ReviewRow], min_plot_words: int, min_shared_reviews: int = 2) -> list[Movie]:
    """The movies of a Rotten Tomatoes CSV, names merged, sorted by key.

    Names are merged when they share a plot or ``min_shared_reviews`` review texts. Plots shorter
    than ``min_plot_words`` are dropped (the full CSV has an empty plot under 14 movies, which must
    not merge them). A review text given two different labels, or found under two movies after
    merging, is dropped.
    """
    names = sorted({row.movie for row in rows})
    index = {name: i for i, name in enumerate(names)}
    sets = _UnionFind(len(names))

    def usable(row: ReviewRow) -> bool:
        return bool(row.text) and (row.category != "plot" or len(row.text.split()) >= min_plot_words)

    kept = [row for row in rows if usable(row)]
    sets.union_by_key((index[row.movie], norm(row.text)) for row in kept if row.category == "plot")

    labels: dict[str, set[str]] = {}
    owners: dict[str, set[int]] = {}
    for row in kept:
        if row.category != "plot":
            labels.setdefault(norm(row.text), set()).add(row.category)
            owners.setdefault(norm(row.text), set()).add(index[row.movie])
    shared = Counter(pair for movies in owners.values() for pair in combinations(sorted(movies), 2))
    for (a, b), count in sorted(shared.items()):
        if count >= min_shared_reviews:
            sets.union(a, b)

    by_root: dict[int, list[ReviewRow]] = {}
    for row in kept:  # file order within each movie, so the first copy of a text is kept
        by_root.setdefault(sets.root(index[row.movie]), []).append(row)
    movies = []
    for group in sets.groups():
        plots: dict[str, str] = {}
        reviews: dict[str, tuple[str, str]] = {}
        for row in by_root.get(group[0], []):
            key = norm(row.text)
            if row.category == "plot":
                plots.setdefault(key, row.text)
            elif len(labels[key]) == 1 and len({sets.root(i) for i in owners[key]}) == 1:
                reviews.setdefault(key, (row.text, row.category))
        ordered = tuple(names[i] for i in group)  # names are sorted, so the group is too
        movies.append(Movie(ordered[0], ordered, tuple(plots.values()), tuple(reviews.values())))
    return sorted(movies, key=lambda movie: movie.key)
