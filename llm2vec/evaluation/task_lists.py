"""The MTEB task lists of the paper and how each task is evaluated.

``MTEB56`` is the English MTEB v1 benchmark of the paper's main tables (56 tasks): 15 retrieval,
4 reranking, 11 clustering, 3 pair classification, 12 classification, 10 STS and 1 summarization.
CQADupstack is *one* retrieval task in the paper but twelve tasks in mteb (one per StackExchange
forum, :data:`CQADUPSTACK_SUBSETS`): ``MTEB56`` lists the twelve, and the paper's CQADupstack score
is their mean (``paper_task_name`` maps each of them to ``CQADupstackRetrieval``). ``SUBSET15`` is
the 15-task ablation subset of Table 8.

Every task runs on the split and subsets of MTEB v1 English (``MTEB(eng, v1)`` in mteb): the
``test`` split (``dev`` for MSMARCO), and for the multilingual datasets only their English subset
(``en``, ``en-en`` for STS17). :func:`build_mteb_task` applies these settings; it only reads mteb's
task registry (no data is downloaded until a task is evaluated). ``test_configs/mteb/task_lists.json``
is a copy of both lists for tools outside Python (a test keeps it in sync; nothing here reads it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mteb import AbsTask

__all__ = [
    "CATEGORIES",
    "CQADUPSTACK_AGGREGATE",
    "CQADUPSTACK_SUBSETS",
    "MTEB56",
    "SUBSET15",
    "NAMED_LISTS",
    "EVAL_SETTINGS",
    "resolve_task_names",
    "paper_task_name",
    "category_counts",
    "eval_settings",
    "build_mteb_task",
    "build_mteb_tasks",
]

#: task categories in the order of the paper's tables
CATEGORIES: tuple[str, ...] = (
    "Retrieval",
    "Reranking",
    "Clustering",
    "PairClassification",
    "Classification",
    "STS",
    "Summarization",
)

CQADUPSTACK_AGGREGATE = "CQADupstackRetrieval"

#: the twelve mteb tasks that together form the paper's single CQADupstack retrieval task
CQADUPSTACK_SUBSETS: tuple[str, ...] = tuple(
    f"CQADupstack{forum}Retrieval"
    for forum in (
        "Android",
        "English",
        "Gaming",
        "Gis",
        "Mathematica",
        "Physics",
        "Programmers",
        "Stats",
        "Tex",
        "Unix",
        "Webmasters",
        "Wordpress",
    )
)


def _with_category(category: str, names: Iterable[str]) -> dict[str, str]:
    return {name: category for name in names}


#: mteb task name -> category, for the 56 English MTEB v1 tasks (67 mteb names: CQADupstack x 12)
MTEB56: dict[str, str] = {
    **_with_category(
        "Retrieval",
        (
            "ArguAna",
            "ClimateFEVER",
            *CQADUPSTACK_SUBSETS,
            "DBPedia",
            "FEVER",
            "FiQA2018",
            "HotpotQA",
            "MSMARCO",
            "NFCorpus",
            "NQ",
            "QuoraRetrieval",
            "SCIDOCS",
            "SciFact",
            "Touche2020",
            "TRECCOVID",
        ),
    ),
    **_with_category(
        "Reranking",
        ("AskUbuntuDupQuestions", "MindSmallReranking", "SciDocsRR", "StackOverflowDupQuestions"),
    ),
    **_with_category(
        "Clustering",
        (
            "ArxivClusteringP2P",
            "ArxivClusteringS2S",
            "BiorxivClusteringP2P",
            "BiorxivClusteringS2S",
            "MedrxivClusteringP2P",
            "MedrxivClusteringS2S",
            "RedditClustering",
            "RedditClusteringP2P",
            "StackExchangeClustering",
            "StackExchangeClusteringP2P",
            "TwentyNewsgroupsClustering",
        ),
    ),
    **_with_category(
        "PairClassification", ("SprintDuplicateQuestions", "TwitterSemEval2015", "TwitterURLCorpus")
    ),
    **_with_category(
        "Classification",
        (
            "AmazonCounterfactualClassification",
            "AmazonPolarityClassification",
            "AmazonReviewsClassification",
            "Banking77Classification",
            "EmotionClassification",
            "ImdbClassification",
            "MassiveIntentClassification",
            "MassiveScenarioClassification",
            "MTOPDomainClassification",
            "MTOPIntentClassification",
            "ToxicConversationsClassification",
            "TweetSentimentExtractionClassification",
        ),
    ),
    **_with_category(
        "STS",
        ("BIOSSES", "SICK-R", "STS12", "STS13", "STS14", "STS15", "STS16", "STS17", "STS22", "STSBenchmark"),
    ),
    **_with_category("Summarization", ("SummEval",)),
}

#: mteb task name -> category, for the ablation subset of Table 8 (15 tasks)
SUBSET15: dict[str, str] = {
    name: MTEB56[name]
    for name in (
        "SciFact",
        "ArguAna",
        "NFCorpus",
        "StackOverflowDupQuestions",
        "SciDocsRR",
        "BiorxivClusteringS2S",
        "MedrxivClusteringS2S",
        "TwentyNewsgroupsClustering",
        "SprintDuplicateQuestions",
        "Banking77Classification",
        "EmotionClassification",
        "MassiveIntentClassification",
        "STS17",
        "SICK-R",
        "STSBenchmark",
    )
}

#: names accepted by :func:`resolve_task_names` for whole lists (case-insensitive)
NAMED_LISTS: dict[str, dict[str, str]] = {"mteb56": MTEB56, "subset15": SUBSET15}

#: the split and subsets of MTEB v1 English for tasks that differ from ``test`` / all subsets
EVAL_SETTINGS: dict[str, dict[str, list[str]]] = {
    "MSMARCO": {"eval_splits": ["dev"]},
    "AmazonCounterfactualClassification": {"eval_splits": ["test"], "hf_subsets": ["en"]},
    "AmazonReviewsClassification": {"eval_splits": ["test"], "hf_subsets": ["en"]},
    "MassiveIntentClassification": {"eval_splits": ["test"], "hf_subsets": ["en"]},
    "MassiveScenarioClassification": {"eval_splits": ["test"], "hf_subsets": ["en"]},
    "MTOPDomainClassification": {"eval_splits": ["test"], "hf_subsets": ["en"]},
    "MTOPIntentClassification": {"eval_splits": ["test"], "hf_subsets": ["en"]},
    "STS17": {"eval_splits": ["test"], "hf_subsets": ["en-en"]},
    "STS22": {"eval_splits": ["test"], "hf_subsets": ["en"]},
}


def _split_names(spec: str | Sequence[str]) -> list[str]:
    items = [spec] if isinstance(spec, str) else list(spec)
    names: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"task names must be strings, got {item!r}")
        names.extend(part.strip() for part in item.split(","))
    return [name for name in names if name]


def resolve_task_names(spec: str | Sequence[str]) -> list[str]:
    """mteb task names from a name, a comma-separated list, a list, or ``mteb56`` / ``subset15``.

    Named lists are matched case-insensitively and may be mixed with single names
    (``"subset15,SummEval"``). ``CQADupstackRetrieval`` expands to its twelve forums. Duplicates
    are dropped, keeping the first occurrence. Names are not checked against mteb here.
    """
    resolved: list[str] = []
    for name in _split_names(spec):
        named = NAMED_LISTS.get(name.lower())
        if named is not None:
            expanded: Iterable[str] = named
        elif name == CQADUPSTACK_AGGREGATE:
            expanded = CQADUPSTACK_SUBSETS
        else:
            expanded = [name]
        for task_name in expanded:
            if task_name not in resolved:
                resolved.append(task_name)
    if not resolved:
        raise ValueError(f"no task names in {spec!r}")
    return resolved


def paper_task_name(name: str) -> str:
    """The task as the paper counts it: a CQADupstack forum is ``CQADupstackRetrieval``."""
    return CQADUPSTACK_AGGREGATE if name in CQADUPSTACK_SUBSETS else name


def category_counts(names: Iterable[str], categories: dict[str, str] = MTEB56) -> dict[str, int]:
    """Tasks per category as the paper counts them (the CQADupstack forums count once)."""
    counts = Counter(categories[name] for name in {paper_task_name(n): n for n in names}.values())
    return {category: counts.get(category, 0) for category in CATEGORIES}


def eval_settings(name: str) -> dict[str, list[str]]:
    """``eval_splits`` / ``hf_subsets`` of MTEB v1 English for ``name`` (empty if mteb's defaults)."""
    return {key: list(value) for key, value in EVAL_SETTINGS.get(name, {}).items()}


def build_mteb_task(name: str, **overrides: Any) -> AbsTask:
    """The mteb task ``name`` restricted to the split and subsets of MTEB v1 English.

    Only mteb's registry is read; ``overrides`` (``eval_splits``, ``hf_subsets``, ...) go to
    ``mteb.get_task``. Raises ``KeyError`` for a name mteb does not know.
    """
    import mteb

    return mteb.get_task(name, **{**eval_settings(name), **overrides})


def build_mteb_tasks(names: Iterable[str]) -> list[AbsTask]:
    """:func:`build_mteb_task` for each name."""
    return [build_mteb_task(name) for name in names]
