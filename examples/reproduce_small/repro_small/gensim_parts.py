"""The parts built from gensim's test data: the Lee STS task, the newsgroups clustering task, the Lee pairs.

``SmallLeeSTS`` takes all 1,225 pairs of the 50 ``lee.cor`` articles with their averaged human
similarity in [0, 1] (50 distinct texts). ``SmallNewsgroupsClustering`` clusters the newsgroups
sample by group: by default every post (the sample has 200, so none is left for training and the
task is out-of-domain); with ``newsgroups_clustering_per_label`` set, the demo's split draws that
many per group and the other posts give ``newsgroups_subject`` pairs as in the demo. The Lee
background corpus (300 articles, disjoint from ``lee.cor``) gives the demo's training files
(``lee_news_lead``, ``lee_news_sentence_<k>``), made by the demo's own code, from one article per
near-duplicate group and none that overlaps an evaluation text.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro_small.config import SuiteConfig
from repro_small.demo_parts import (
    DemoBuild,
    DemoDataConfig,
    NewsgroupPost,
    OverlapIndex,
    lee_training_pairs,
    near_duplicate_groups,
    newsgroups_training_pairs,
    norm,
    rng,
    split_newsgroups,
    split_sentences,
    truncate_words,
)
from repro_small.records import EvalTask, TrainFile, task_spec

__all__ = ["CLUSTERING_FILE", "EVAL_INSTRUCTIONS", "gensim_training", "lee_sts_task", "newsgroups_task"]

CLUSTERING_FILE = "newsgroups_clustering.jsonl"

EVAL_INSTRUCTIONS = {
    "SmallLeeSTS": "Retrieve semantically similar text:",
    "SmallNewsgroupsClustering": "Identify the topic or theme of the given news articles:",
}


def lee_sts_task(docs: list[str], matrix: list[list[float]]) -> EvalTask:
    """Every pair ``i < j`` of the Lee articles with its similarity ``matrix[i][j]``."""
    rows = [
        {"sentence1": docs[i], "sentence2": docs[j], "score": round(matrix[i][j], 6)}
        for i in range(len(docs)) for j in range(i + 1, len(docs))
    ]  # fmt: skip
    name = "SmallLeeSTS"
    spec = task_spec(
        name, "STS", "lee_sts.jsonl", EVAL_INSTRUCTIONS[name],
        f"Lee news similarity (gensim test data): all {len(rows)} pairs of the {len(docs)} lee.cor articles with "
        "averaged human similarity judgements in [0, 1]; Spearman of cosine similarities.",
        min_score=0.0, max_score=1.0,
    )  # fmt: skip
    return EvalTask(
        name, "lee", spec, {"lee_sts.jsonl": rows}, len(rows), instructed_texts=list(docs),
        notes={"pairs": len(rows), "texts": len(docs)},
    )  # fmt: skip


def _distinct(texts: list[str]) -> list[int]:
    """Indices of the first occurrence of each text (case and whitespace ignored)."""
    seen: set[str] = set()
    kept = []
    for i, text in enumerate(texts):
        if norm(text) not in seen:
            seen.add(norm(text))
            kept.append(i)
    return kept


def _demo_config(config: SuiteConfig, seed: int, **overrides: Any) -> DemoDataConfig:
    return DemoDataConfig(
        seed=seed,
        sentence_pair_files=config.lee_sentence_pair_files,
        max_query_words=config.max_query_words,
        max_doc_words=config.max_doc_words,
        negative_pool=config.negative_pool,
        **overrides,
    )


def newsgroups_task(
    posts: list[NewsgroupPost], config: SuiteConfig, seed: int, path: Path
) -> tuple[EvalTask, list[NewsgroupPost]]:
    """The clustering task and the posts it leaves for training (none by default)."""
    if config.newsgroups_clustering_per_label is None:
        clustered = [posts[i] for i in _distinct([p.text for p in posts])]
        rest: list[NewsgroupPost] = []
    else:
        demo = _demo_config(config, seed, clustering_per_label=config.newsgroups_clustering_per_label, min_post_words=1)
        clustered, rest = split_newsgroups(posts, demo, path)
    rows = [{"text": truncate_words(p.text, config.max_doc_words), "label": p.label} for p in clustered]
    rng(seed, "newsgroups-clustering-order").shuffle(rows)
    labels = sorted({row["label"] for row in rows})
    name = "SmallNewsgroupsClustering"
    spec = task_spec(
        name, "Clustering", CLUSTERING_FILE, EVAL_INSTRUCTIONS[name],
        f"{len(rows)} 20 Newsgroups posts (gensim test data; headers, quotes and signatures removed, first "
        f"{config.max_doc_words} words) clustered by group ({', '.join(labels)}); V-measure.",
    )  # fmt: skip
    task = EvalTask(
        name, "newsgroups", spec, {CLUSTERING_FILE: rows}, len(rows),
        instructed_texts=[r["text"] for r in rows], notes={"texts": len(rows), "labels": labels},
    )  # fmt: skip
    return task, rest


def _one_article_per_group(docs: list[str]) -> tuple[list[int], dict[str, int]]:
    """Indices of training articles: exact duplicates dropped, the first of each near-duplicate group."""
    unique = _distinct(docs)
    groups = [[unique[k] for k in group] for group in near_duplicate_groups([docs[i] for i in unique])]
    chosen = [group[0] for group in groups if len(split_sentences(docs[group[0]])) >= 2]
    counts = {
        "articles": len(docs),
        "duplicates_dropped": len(docs) - len(unique),
        "near_duplicates_dropped": sum(len(g) - 1 for g in groups),
    }
    return chosen, counts


def gensim_training(
    background: list[str], posts: list[NewsgroupPost], overlap: OverlapIndex, config: SuiteConfig, seed: int
) -> tuple[list[TrainFile], dict[str, Any]]:
    """The demo's Lee background pairs (and newsgroups pairs from ``posts``, if any), built by the demo's code."""
    chosen, counts = _one_article_per_group(background)
    demo = _demo_config(config, seed)
    build = DemoBuild()
    lee_training_pairs(background, chosen, overlap, demo, build)
    if posts:
        newsgroups_training_pairs(posts, overlap, demo, build)
    files = [
        TrainFile(name, "newsgroups" if name.startswith("newsgroups") else "lee", rows)
        for name, rows in sorted(build.train.items()) if rows
    ]  # fmt: skip
    return files, {"lee_background": counts, **build.notes}
