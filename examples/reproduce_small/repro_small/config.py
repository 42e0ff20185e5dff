"""Sizes of the suite's tasks and training files (everything but the seed).

The defaults give every task at least 200 scored items (one item moves a score by at most 0.5
point) while keeping the suite near 3,700 embeddings per evaluation, about 3 minutes for a 135M
model on 2 CPU cores; they also leave about 2,900 training pairs. ``min_scored_items`` makes a
smaller task an error rather than a quietly noisier score; the tests lower it with the sizes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["SuiteConfig"]


@dataclass(frozen=True)
class SuiteConfig:
    """Task sizes and text limits of the suite (defaults: the real build)."""

    max_query_words: int = 64
    max_doc_words: int = 120
    """documents (articles, plots, posts) are cut to this many words, at a sentence end where possible"""
    negative_pool: int = 10
    """a training pair's hard negative is drawn among this many most word-overlapping documents"""

    bbc_retrieval_queries: int = 250
    bbc_retrieval_distractors: int = 250
    """articles in the retrieval corpus that no query asks for"""
    bbc_classification_train_per_label: int = 32
    bbc_classification_test_per_label: int = 50
    bbc_classification_samples_per_label: int = 16
    bbc_clustering_per_label: int = 50
    bbc_min_sentences: int = 3
    """evaluation articles need this many sentences (a first sentence and a rest for the pairs)"""
    classification_experiments: int = 10

    lee_sentence_pair_files: int = 4
    newsgroups_clustering_per_label: int | None = None
    """None: every post of the sample is clustered and none gives a training pair"""

    review_min_words: int = 10
    """reviews used as queries or in pairs have at least this many words"""
    plot_min_words: int = 20
    review_retrieval_per_movie: int = 2
    review_retrieval_corpus: int = 500
    """plots in the retrieval corpus (those of the queried movies, then other plots)"""
    review_reranking_per_movie: int = 2
    review_reranking_negatives: int = 9
    review_reranking_pool: int = 30
    """a reranking query's negatives are drawn among this many plots most similar to its movie's plot"""
    review_pair_movies: int = 200
    polarity_train_per_label: int = 64
    polarity_test_per_label: int = 200
    polarity_samples_per_label: int = 32
    polarity_min_words: int = 5

    min_scored_items: int = 200
    """a task with fewer queries / test texts / texts / pairs is an error"""

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name == "newsgroups_clustering_per_label" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"SuiteConfig.{name} must be a positive integer, got {value!r}")
        pairs = [
            ("bbc_classification_samples_per_label", "bbc_classification_train_per_label"),
            ("polarity_samples_per_label", "polarity_train_per_label"),
            ("review_reranking_negatives", "review_reranking_pool"),
        ]
        for small, large in pairs:
            if getattr(self, small) > getattr(self, large):
                raise ValueError(
                    f"SuiteConfig.{small} ({getattr(self, small)}) exceeds {large} ({getattr(self, large)})"
                )
