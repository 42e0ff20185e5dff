"""Training pairs and local evaluation tasks for the CPU demo, from real public text in gensim's wheel.

:func:`build_demo_data` reads small public corpora that gensim ships as test data
(``gensim/test/test_data/``: Lee news articles with human similarity judgements, Pang & Lee
movie-review sentences, a 20-newsgroups sample) and writes under ``output_dir``
(default ``cache/demo/data``)::

    train/*.jsonl   training pairs for the ``jsonl`` dataset, one file per kind of pair
    eval/*.json     local task specs for ``llm2vec.evaluation.local_tasks``, their data beside them
    manifest.json   settings, source checksums and counts; written last (= "complete")

No evaluation text appears in a training pair (:func:`check_no_overlap`). The build is
deterministic given the seed and renamed into place when complete. docs/demo.md ("Data") lists
the sources, how the pairs are made and what each task measures.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import pickle
import random
import re
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from llm2vec.files import staged_folder

__all__ = [
    "DEFAULT_OUTPUT_DIR",
    "DataOverlapError",
    "DemoDataConfig",
    "DemoDataError",
    "DemoSources",
    "EVAL_TASKS",
    "MANIFEST_FILE",
    "NewsgroupPost",
    "build_demo_data",
    "check_no_overlap",
    "default_sources",
    "gensim_test_data_dir",
    "is_complete_build",
    "read_lines_corpus",
    "read_newsgroups",
    "read_polarity",
    "read_similarity_matrix",
    "split_sentences",
    "truncate_words",
]

DEFAULT_OUTPUT_DIR = Path("cache/demo/data")
MANIFEST_FILE = "manifest.json"
TRAIN_DIR = "train"
EVAL_DIR = "eval"
_FORMAT_VERSION = 1

EVAL_TASKS = ("DemoLeeSTS", "DemoMovieReviewPolarity", "DemoNewsgroupsClustering", "DemoLeeNewsRetrieval")
"""Names of the evaluation tasks (each written when its source is given)."""

TRAIN_INSTRUCTIONS = {
    "lee_news_lead": "Given the first sentence of a news article, retrieve the rest of the article",
    "lee_news_sentence": "Given a sentence from a news article, retrieve the rest of the article",
    "newsgroups_subject": "Given the subject line of a newsgroup post, retrieve the post",
}
EVAL_INSTRUCTIONS = {
    "DemoLeeSTS": "Retrieve semantically similar text:",
    "DemoMovieReviewPolarity": "Classify the sentiment of a given movie review sentence as positive or negative:",
    "DemoNewsgroupsClustering": "Identify the topic or theme of the given newsgroup post:",
    "DemoLeeNewsRetrieval": TRAIN_INSTRUCTIONS["lee_news_lead"] + ":",
}

_LONG_SENTENCE_WORDS = 8  # sentences this long identify a text (near-duplicate / leak checks)
_MIN_SUBSTRING_WORDS = 5  # evaluation texts this long are also searched as substrings

Log = Callable[[str], None]


class DemoDataError(RuntimeError):
    """A source file is malformed, or the sources are too small for the requested sizes."""


class DataOverlapError(DemoDataError):
    """An evaluation text (or a long sentence of one) appears in the training pairs."""


def _print(message: str) -> None:
    print(f"[demo-data] {message}", flush=True)


# --------------------------------------------------------------------------- sources
@dataclass(frozen=True)
class DemoSources:
    """Paths of the source files (gensim's, see :func:`default_sources`); ``None`` skips that source's task."""

    lee_background: Path
    lee_eval: Path
    lee_similarities: Path
    polarity: Path | None = None
    newsgroups: Path | None = None

    def items(self) -> list[tuple[str, Path]]:
        """``(name, path)`` of the sources that are set, in a fixed order."""
        names = ("lee_background", "lee_eval", "lee_similarities", "polarity", "newsgroups")
        return [(name, Path(getattr(self, name))) for name in names if getattr(self, name) is not None]


_SOURCE_FILES = {
    "lee_background": "lee_background.cor",
    "lee_eval": "lee.cor",
    "lee_similarities": "similarities0-1.txt",
    "polarity": "pang_lee_polarity.cor",
    "newsgroups": "mini_newsgroup",
}


def gensim_test_data_dir() -> Path:
    """``gensim/test/test_data`` of the installed gensim (found without importing gensim).

    Raises:
        FileNotFoundError: gensim is not installed, or its wheel has no test data folder.
    """
    spec = importlib.util.find_spec("gensim")
    if spec is None or spec.origin is None:
        raise FileNotFoundError("gensim is not installed; the demo data comes from its wheel: pip install gensim")
    folder = Path(spec.origin).parent / "test" / "test_data"
    if not folder.is_dir():
        raise FileNotFoundError(f"gensim's test data folder is missing: {folder}; reinstall gensim")
    return folder


def default_sources(test_data_dir: str | os.PathLike[str] | None = None) -> DemoSources:
    """The five source files in gensim's test data folder (or in ``test_data_dir``)."""
    folder = Path(test_data_dir) if test_data_dir is not None else gensim_test_data_dir()
    return DemoSources(**{name: folder / filename for name, filename in _SOURCE_FILES.items()})


def _check_sources(sources: DemoSources) -> None:
    for name, path in sources.items():
        if not path.is_file():
            raise FileNotFoundError(
                f"demo data source {name!r} not found: {path} (it ships in gensim's wheel as "
                f"gensim/test/test_data/{_SOURCE_FILES[name]}; pip install gensim)"
            )


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class DemoDataConfig:
    """Sizes and seed of the demo data (defaults suit a 25-minute CPU demo with a 135M model)."""

    seed: int = 0
    retrieval_queries: int = 60
    """background articles held out for the retrieval task (one query and one document each)"""
    sentence_pair_files: int = 4
    """number of ``lee_news_sentence_<k>`` training files"""
    max_query_words: int = 64
    max_doc_words: int = 120
    negative_pool: int = 10
    """a hard negative is drawn among this many most word-overlapping other documents"""
    sts_max_pairs: int | None = 100
    """STS pairs kept (None: all 1225); each pair costs two embeddings unless the encoder caches texts"""
    polarity_train_per_label: int = 50
    """classification training texts per label (the rest is the test split)"""
    classification_samples_per_label: int = 32
    classification_experiments: int = 5
    clustering_per_label: int = 40
    """newsgroup posts per group in the clustering task (the other posts give training pairs)"""
    min_post_words: int = 20

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if name in ("seed",) or (name == "sts_max_pairs" and value is None):
                continue
            smallest = 0 if name == "sentence_pair_files" else 1
            if isinstance(value, bool) or not isinstance(value, int) or value < smallest:
                raise ValueError(f"DemoDataConfig.{name} must be a positive integer, got {value!r}")


# --------------------------------------------------------------------------- text helpers
def _decode(data: bytes) -> str:
    """UTF-8, else Windows-1252 (``lee.cor`` and the polarity file are not UTF-8), else Latin-1."""
    for encoding in ("utf-8", "cp1252"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _squash(text: str) -> str:
    return " ".join(text.split())


def _norm(text: str) -> str:
    return _squash(text).lower()


_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "prof", "gen", "sen", "rep", "lt", "col", "capt", "sgt",
    "no", "vs", "inc", "ltd", "co", "corp", "mt", "ft", "gov", "pres", "dept", "est", "approx", "e.g", "i.e",
}
_SENTENCE_BREAK = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])|(?<=[.!?][\"')\]])\s+(?=[\"'(\[]?[A-Z0-9])")


def _ends_with_abbreviation(piece: str) -> bool:
    last = piece.rsplit(None, 1)[-1] if piece.split() else ""
    if not last.endswith("."):
        return False
    word = last[:-1].lstrip("\"'([").lower()
    if word in _ABBREVIATIONS:
        return True
    # initials and dotted abbreviations: "J.", "U.S.", "U.N."
    return bool(re.fullmatch(r"(?:[a-z]\.)*[a-z]", word))


def split_sentences(text: str) -> list[str]:
    """Split running text into sentences (punctuation + space + capital; common abbreviations kept)."""
    pieces = [piece for piece in _SENTENCE_BREAK.split(_squash(text)) if piece]
    sentences: list[str] = []
    for piece in pieces:
        if sentences and _ends_with_abbreviation(sentences[-1]):
            sentences[-1] = f"{sentences[-1]} {piece}"
        else:
            sentences.append(piece)
    return sentences


def truncate_words(text: str, max_words: int) -> str:
    """``text`` cut to at most ``max_words`` words, at a sentence end when that keeps half of them."""
    words = text.split()
    if len(words) <= max_words:
        return _squash(text)
    kept: list[str] = []
    count = 0
    for sentence in split_sentences(text):
        n = len(sentence.split())
        if count + n > max_words:
            break
        kept.append(sentence)
        count += n
    if count >= max_words // 2:
        return " ".join(kept)
    return " ".join(words[:max_words])


def _long_sentences(text: str) -> set[str]:
    return {_norm(s) for s in split_sentences(text) if len(s.split()) >= _LONG_SENTENCE_WORDS}


_WORD = re.compile(r"[a-z][a-z']+")
_STOPWORDS = frozenset(
    "the a an and or but of to in on at for with by from as is are was were be been being it its this that "
    "these those he she they we you i his her their our your him them us not no have has had do does did "
    "will would can could should may might must said says say also than then there here who which what "
    "when where why how all any some more most other into over after before about up down out new one two".split()
)


def _content_words(text: str) -> frozenset[str]:
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 2)


# --------------------------------------------------------------------------- readers
def read_lines_corpus(path: str | os.PathLike[str]) -> list[str]:
    """One document per non-blank line (``lee_background.cor``, ``lee.cor``), whitespace squashed."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"corpus file not found: {path}")
    docs = [_squash(line) for line in _decode(path.read_bytes()).splitlines() if line.strip()]
    if not docs:
        raise DemoDataError(f"{path}: no document")
    return docs


def read_similarity_matrix(path: str | os.PathLike[str], size: int) -> list[list[float]]:
    """A ``size`` x ``size`` matrix of whitespace-separated numbers (``similarities0-1.txt``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"similarity file not found: {path}")
    rows = [line.split() for line in _decode(path.read_bytes()).splitlines() if line.strip()]
    if len(rows) != size or any(len(row) != size for row in rows):
        shape = f"{len(rows)} rows of {sorted({len(r) for r in rows})} values"
        raise DemoDataError(f"{path}: expected a {size} x {size} matrix (one row per document), got {shape}")
    try:
        matrix = [[float(value) for value in row] for row in rows]
    except ValueError as error:
        raise DemoDataError(f"{path}: not a numeric matrix ({error})") from None
    if any(value != value for row in matrix for value in row):
        raise DemoDataError(f"{path}: NaN in the similarity matrix")
    return matrix


_POLARITY_LINE = re.compile(r"^__label__(\S+)\s+(.*\S)\s*$")
_POLARITY_NAMES = {"neg": "negative", "pos": "positive"}


def read_polarity(path: str | os.PathLike[str]) -> list[tuple[str, str]]:
    """``(text, label)`` from ``__label__<neg|pos> text`` lines; labels ``negative`` / ``positive``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"polarity file not found: {path}")
    items = []
    for number, line in enumerate(_decode(path.read_bytes()).splitlines(), start=1):
        if not line.strip():
            continue
        match = _POLARITY_LINE.match(line)
        if match is None:
            raise DemoDataError(f"{path}:{number}: expected '__label__<label> <text>', got {line[:60]!r}")
        label, text = match.group(1), _squash(match.group(2))
        items.append((text, _POLARITY_NAMES.get(label, label)))
    if not items:
        raise DemoDataError(f"{path}: no labelled sentence")
    return items


@dataclass(frozen=True)
class NewsgroupPost:
    """A cleaned newsgroup post: ``index`` in the source, subject line, body text and group."""

    index: int
    subject: str
    text: str
    label: str


class _BunchUnpickler(pickle.Unpickler):
    """Unpickles scikit-learn's ``Bunch`` of the newsgroups sample as a dict; nothing else is allowed."""

    _NUMPY = {
        ("numpy.core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"): ("multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"): ("multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"): ("multiarray", "scalar"),
        ("numpy", "ndarray"): ("numpy", "ndarray"),
        ("numpy", "dtype"): ("numpy", "dtype"),
    }
    # ``_codecs.encode`` is how protocol-2 pickles written by Python 3 store bytes (numpy buffers)
    _BUILTINS = {("copy_reg", "_reconstructor"), ("copyreg", "_reconstructor"), ("_codecs", "encode")} | {
        (module, name) for module in ("__builtin__", "builtins") for name in ("object", "dict", "list", "tuple", "set")
    }

    def find_class(self, module: str, name: str) -> Any:
        if name == "Bunch" and module.startswith("sklearn"):
            return dict
        if (module, name) in self._BUILTINS:
            return super().find_class(module, name)
        target = self._NUMPY.get((module, name))
        if target is not None:
            import numpy

            if target[0] == "numpy":
                return getattr(numpy, target[1])
            try:
                from numpy._core import multiarray
            except ImportError:  # numpy < 2
                from numpy.core import multiarray
            return getattr(multiarray, target[1])
        raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} from the newsgroups file")


_QUOTE_INTRO = re.compile(r"(writes|wrote|said):\s*$|^\s*In (article|message|<)", re.IGNORECASE)


def _clean_post(raw: str) -> tuple[str, str]:
    """``(subject, body)``: headers dropped, quoted lines, attributions and signature removed."""
    raw = raw.replace("\r\n", "\n")
    head, separator, body = raw.partition("\n\n")
    if not separator:
        head, body = "", raw
    match = re.search(r"^Subject:[ \t]*(.*)$", head, re.MULTILINE)
    subject = _squash(match.group(1)) if match else ""
    subject = re.sub(r"^(?:re\s*:\s*)+", "", subject, flags=re.IGNORECASE).strip()
    lines = []
    for line in body.split("\n"):
        if line.rstrip() in ("--", "-- ", "---"):
            break
        stripped = line.lstrip()
        if stripped.startswith((">", "|", ":", "}")) or _QUOTE_INTRO.search(line):
            continue
        lines.append(line)
    return subject, _squash(" ".join(lines))


def read_newsgroups(path: str | os.PathLike[str]) -> list[NewsgroupPost]:
    """The posts of gensim's ``mini_newsgroup`` (a zlib-compressed pickle of a scikit-learn
    ``Bunch`` with ``data``, ``target`` and ``target_names``), cleaned; posts whose text becomes
    empty are dropped."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"newsgroups file not found: {path}")
    try:
        bunch = _BunchUnpickler(io.BytesIO(zlib.decompress(path.read_bytes())), encoding="latin1").load()
    except (zlib.error, pickle.UnpicklingError, EOFError, ValueError, AttributeError) as error:
        raise DemoDataError(f"{path}: not a zlib-compressed pickle of a newsgroups Bunch ({error})") from None
    if not isinstance(bunch, dict) or not all(key in bunch for key in ("data", "target", "target_names")):
        raise DemoDataError(f"{path}: expected a dict/Bunch with data, target and target_names")
    data = list(bunch["data"])
    targets = [int(t) for t in bunch["target"]]
    names = [str(n) for n in bunch["target_names"]]
    if len(data) != len(targets):
        raise DemoDataError(f"{path}: {len(data)} posts but {len(targets)} targets")
    posts = []
    for index, (raw, target) in enumerate(zip(data, targets)):
        if isinstance(raw, bytes):
            raw = _decode(raw)
        if not 0 <= target < len(names):
            raise DemoDataError(f"{path}: post {index} has target {target} but there are {len(names)} groups")
        subject, text = _clean_post(str(raw))
        if text:
            posts.append(NewsgroupPost(index, subject, text, names[target]))
    if not posts:
        raise DemoDataError(f"{path}: no post with text")
    return posts


# --------------------------------------------------------------------------- overlap
class _OverlapIndex:
    """Finds training text that contains an evaluation text or shares a long sentence with one."""

    def __init__(self, eval_texts: Iterable[str]) -> None:
        self.texts: dict[str, str] = {}
        self.sentences: dict[str, str] = {}
        for text in eval_texts:
            normed = _norm(text)
            self.texts.setdefault(normed, text)
            for sentence in _long_sentences(text):
                self.sentences.setdefault(sentence, text)
        self.searchable = [t for t in self.texts if len(t.split()) >= _MIN_SUBSTRING_WORDS]

    def find(self, text: str) -> str | None:
        """An evaluation text that ``text`` overlaps with, or None."""
        normed = _norm(text)
        if normed in self.texts:
            return self.texts[normed]
        for sentence in _long_sentences(text):
            if sentence in self.sentences:
                return self.sentences[sentence]
        for candidate in self.searchable:
            if candidate in normed:
                return self.texts[candidate]
        return None


def check_no_overlap(train_texts: Iterable[str], eval_texts: Iterable[str]) -> None:
    """Raise :class:`DataOverlapError` if a training text equals or contains an evaluation text,
    or shares a sentence of 8+ words with one (case and whitespace are ignored)."""
    index = _OverlapIndex(eval_texts)
    problems = []
    for text in train_texts:
        hit = index.find(text)
        if hit is not None:
            problems.append((text, hit))
    if problems:
        examples = "; ".join(f"training {t[:60]!r} ~ evaluation {e[:60]!r}" for t, e in problems[:3])
        raise DataOverlapError(f"{len(problems)} training text(s) overlap the evaluation texts: {examples}")


# --------------------------------------------------------------------------- building blocks
def _rng(seed: int, name: str) -> random.Random:
    """An independent, reproducible stream per part (string seeds hash with SHA-512)."""
    return random.Random(f"{seed}:{name}")


def _near_duplicate_groups(docs: Sequence[str]) -> list[list[int]]:
    """Indices grouped by shared long sentences (union-find), each group sorted, groups by first index."""
    parent = list(range(len(docs)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_seen: dict[str, int] = {}
    for i, doc in enumerate(docs):
        for sentence in sorted(_long_sentences(doc)):
            if sentence in first_seen:
                a, b = root(first_seen[sentence]), root(i)
                if a != b:
                    parent[max(a, b)] = min(a, b)
            else:
                first_seen[sentence] = i
    groups: dict[int, list[int]] = {}
    for i in range(len(docs)):
        groups.setdefault(root(i), []).append(i)
    return sorted(groups.values(), key=lambda g: g[0])


def _negative_picker(texts: Sequence[str], pool: int, rng: random.Random) -> Callable[[int], int]:
    """``pick(i)``: a random index among the ``pool`` texts with the most word overlap with text ``i``."""
    words = [_content_words(t) for t in texts]
    nearest: dict[int, list[int]] = {}

    def pick(i: int) -> int:
        if i not in nearest:
            scores = []
            for j, other in enumerate(words):
                if j == i:
                    continue
                union = len(words[i] | other)
                scores.append((-(len(words[i] & other) / union if union else 0.0), j))
            scores.sort()
            nearest[i] = [j for _, j in scores[:pool]]
        return rng.choice(nearest[i])

    return pick


def _pair(query: str, positive: str, negative: str, instruction: str) -> dict[str, str]:
    return {"query": query, "positive": positive, "negative": negative, "instruction": instruction}


@dataclass
class _Build:
    """Everything produced before writing: training files and evaluation tasks."""

    train: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    # task name -> (spec, {relative data path: rows})
    eval: dict[str, tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]] = field(default_factory=dict)
    eval_texts: list[str] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)


def _sts_task(docs: list[str], matrix: list[list[float]], config: DemoDataConfig, build: _Build) -> None:
    pairs = [(i, j, matrix[i][j]) for i in range(len(docs)) for j in range(i + 1, len(docs))]
    total = len(pairs)
    if config.sts_max_pairs is not None and config.sts_max_pairs < total:
        pairs = _stratified_pairs(pairs, config.sts_max_pairs, _rng(config.seed, "sts"))
    rows = [{"sentence1": docs[i], "sentence2": docs[j], "score": round(score, 6)} for i, j, score in pairs]
    spec = {
        "name": "DemoLeeSTS",
        "type": "STS",
        "path": "lee_sts.jsonl",
        "instruction": EVAL_INSTRUCTIONS["DemoLeeSTS"],
        "description": (
            f"Lee news similarity: {len(rows)} of the {total} pairs of the 50 lee.cor articles (gensim test "
            "data) with averaged human similarity judgements in [0, 1]; Spearman of cosine similarities."
        ),
        "min_score": 0.0,
        "max_score": 1.0,
    }
    build.eval["DemoLeeSTS"] = (spec, {"lee_sts.jsonl": rows})
    build.eval_texts.extend(docs)
    build.notes["DemoLeeSTS"] = {"pairs": len(rows), "of_pairs": total, "texts": len(docs)}


def _stratified_pairs(
    pairs: list[tuple[int, int, float]], count: int, rng: random.Random, bins: int = 5
) -> list[tuple[int, int, float]]:
    """``count`` pairs spread evenly over ``bins`` equal-width score bins (small bins taken whole)."""
    low, high = min(p[2] for p in pairs), max(p[2] for p in pairs)
    width = (high - low) / bins or 1.0
    grouped: list[list[tuple[int, int, float]]] = [[] for _ in range(bins)]
    for pair in pairs:
        grouped[min(int((pair[2] - low) / width), bins - 1)].append(pair)
    quotas = [0] * bins
    remaining = count
    open_bins = [b for b in range(bins) if grouped[b]]
    while remaining > 0 and open_bins:  # water-filling: equal shares, leftovers go to larger bins
        share = max(remaining // len(open_bins), 1)
        for b in list(open_bins):
            take = min(share, len(grouped[b]) - quotas[b], remaining)
            quotas[b] += take
            remaining -= take
            if quotas[b] == len(grouped[b]):
                open_bins.remove(b)
            if remaining == 0:
                break
    chosen = [pair for b in range(bins) for pair in rng.sample(grouped[b], quotas[b])]
    return sorted(chosen)


def _polarity_task(items: list[tuple[str, str]], config: DemoDataConfig, build: _Build, path: Path) -> None:
    rng = _rng(config.seed, "polarity")
    seen: set[str] = set()
    by_label: dict[str, list[str]] = {}
    for text, label in items:
        if _norm(text) not in seen:
            seen.add(_norm(text))
            by_label.setdefault(label, []).append(text)
    if len(by_label) < 2:
        raise DemoDataError(f"{path}: the polarity task needs two labels, found {sorted(by_label)}")
    train, test = [], []
    for label in sorted(by_label):
        texts = list(by_label[label])
        if len(texts) <= config.polarity_train_per_label:
            raise DemoDataError(
                f"{path}: label {label!r} has {len(texts)} sentences, not more than "
                f"polarity_train_per_label={config.polarity_train_per_label}"
            )
        rng.shuffle(texts)
        train += [{"text": t, "label": label} for t in texts[: config.polarity_train_per_label]]
        test += [{"text": t, "label": label} for t in texts[config.polarity_train_per_label :]]
    rng.shuffle(train)
    rng.shuffle(test)
    spec = {
        "name": "DemoMovieReviewPolarity",
        "type": "Classification",
        "path": "movie_polarity",
        "instruction": EVAL_INSTRUCTIONS["DemoMovieReviewPolarity"],
        "description": (
            f"Movie-review sentence polarity (Pang & Lee sentences in gensim test data): {len(train)} training "
            f"and {len(test)} test sentences, labels negative/positive; logistic-regression accuracy."
        ),
        "samples_per_label": min(config.classification_samples_per_label, config.polarity_train_per_label),
        "n_experiments": config.classification_experiments,
    }
    build.eval["DemoMovieReviewPolarity"] = (spec, {"movie_polarity/train.jsonl": train, "movie_polarity/test.jsonl": test})
    build.eval_texts.extend(row["text"] for row in train + test)
    build.notes["DemoMovieReviewPolarity"] = {"train": len(train), "test": len(test), "labels": sorted(by_label)}


def _split_newsgroups(
    posts: list[NewsgroupPost], config: DemoDataConfig, path: Path
) -> tuple[list[NewsgroupPost], list[NewsgroupPost]]:
    """(clustering posts, remaining posts), both in source order."""
    rng = _rng(config.seed, "newsgroups")
    usable = [p for p in posts if len(p.text.split()) >= config.min_post_words]
    seen: set[str] = set()
    unique = []
    for post in usable:
        if _norm(post.text) not in seen:
            seen.add(_norm(post.text))
            unique.append(post)
    by_label: dict[str, list[NewsgroupPost]] = {}
    for post in unique:
        by_label.setdefault(post.label, []).append(post)
    if len(by_label) < 2:
        raise DemoDataError(f"{path}: clustering needs posts of two groups, found {sorted(by_label)}")
    chosen: set[int] = set()
    for label in sorted(by_label):
        group = by_label[label]
        if len(group) < config.clustering_per_label:
            raise DemoDataError(
                f"{path}: group {label!r} has {len(group)} posts of {config.min_post_words}+ words, fewer than "
                f"clustering_per_label={config.clustering_per_label}"
            )
        chosen.update(p.index for p in rng.sample(group, config.clustering_per_label))
    clustering = [p for p in unique if p.index in chosen]
    rest = [p for p in unique if p.index not in chosen]
    return clustering, rest


def _clustering_task(posts: list[NewsgroupPost], config: DemoDataConfig, build: _Build) -> None:
    rows = [{"text": truncate_words(p.text, config.max_doc_words), "label": p.label} for p in posts]
    _rng(config.seed, "clustering-order").shuffle(rows)
    labels = sorted({row["label"] for row in rows})
    spec = {
        "name": "DemoNewsgroupsClustering",
        "type": "Clustering",
        "path": "newsgroups_clustering.jsonl",
        "instruction": EVAL_INSTRUCTIONS["DemoNewsgroupsClustering"],
        "description": (
            f"{len(rows)} 20-newsgroups posts (gensim test data; headers, quotes and signatures removed, at most "
            f"{config.max_doc_words} words) clustered by group ({', '.join(labels)}); V-measure."
        ),
    }
    build.eval["DemoNewsgroupsClustering"] = (spec, {"newsgroups_clustering.jsonl": rows})
    build.eval_texts.extend(row["text"] for row in rows)
    build.notes["DemoNewsgroupsClustering"] = {"texts": len(rows), "labels": labels}


def _retrieval_task(docs: list[str], held_out: list[int], config: DemoDataConfig, build: _Build) -> None:
    queries, corpus, qrels = [], [], []
    for i in held_out:
        sentences = split_sentences(docs[i])
        query_id, doc_id = f"q{i:03d}", f"d{i:03d}"
        queries.append({"id": query_id, "text": truncate_words(sentences[0], config.max_query_words)})
        corpus.append({"id": doc_id, "text": truncate_words(" ".join(sentences[1:]), config.max_doc_words)})
        qrels.append({"query-id": query_id, "corpus-id": doc_id, "score": 1})
    spec = {
        "name": "DemoLeeNewsRetrieval",
        "type": "Retrieval",
        "path": "lee_retrieval",
        "instruction": EVAL_INSTRUCTIONS["DemoLeeNewsRetrieval"],
        "description": (
            f"First sentence -> rest of the article for {len(held_out)} Lee background articles (gensim test data) "
            "kept out of training, near-duplicates included; nDCG@10."
        ),
    }
    files = {"lee_retrieval/corpus.jsonl": corpus, "lee_retrieval/queries.jsonl": queries, "lee_retrieval/qrels.jsonl": qrels}
    build.eval["DemoLeeNewsRetrieval"] = (spec, files)
    build.eval_texts.extend(row["text"] for row in queries + corpus)
    build.notes["DemoLeeNewsRetrieval"] = {"queries": len(queries), "corpus": len(corpus)}


def _split_background(
    docs: list[str], config: DemoDataConfig, path: Path
) -> tuple[list[int], list[int], dict[str, int]]:
    """(held-out retrieval indices, training indices, counts): duplicates dropped, one article per
    near-duplicate group, held-out articles drawn from groups of one."""
    seen: set[str] = set()
    unique = []
    for i, doc in enumerate(docs):
        if _norm(doc) not in seen:
            seen.add(_norm(doc))
            unique.append(i)
    groups = _near_duplicate_groups([docs[i] for i in unique])
    groups = [[unique[k] for k in group] for group in groups]

    def retrievable(i: int) -> bool:
        sentences = split_sentences(docs[i])
        return len(sentences) >= 3 and len(sentences[0].split()) >= 6 and len(" ".join(sentences[1:]).split()) >= 30

    candidates = [group[0] for group in groups if len(group) == 1 and retrievable(group[0])]
    if len(candidates) < config.retrieval_queries:
        raise DemoDataError(
            f"{path}: only {len(candidates)} articles qualify for the retrieval task, "
            f"retrieval_queries={config.retrieval_queries}"
        )
    held_out = sorted(_rng(config.seed, "retrieval").sample(candidates, config.retrieval_queries))
    held = set(held_out)
    train = [group[0] for group in groups if group[0] not in held and len(split_sentences(docs[group[0]])) >= 2]
    counts = {
        "articles": len(docs),
        "duplicates_dropped": len(docs) - len(unique),
        "near_duplicate_groups": sum(1 for g in groups if len(g) > 1),
        "near_duplicates_dropped": sum(len(g) - 1 for g in groups),
    }
    return held_out, train, counts


def _lee_training(
    docs: list[str], train_ids: list[int], overlap: _OverlapIndex, config: DemoDataConfig, build: _Build
) -> None:
    kept = [i for i in train_ids if overlap.find(docs[i]) is None]
    build.notes["lee_dropped_for_overlap"] = len(train_ids) - len(kept)
    sentences = {i: split_sentences(docs[i]) for i in kept}
    rests = [truncate_words(" ".join(sentences[i][1:]), config.max_doc_words) for i in kept]
    pick = _negative_picker([docs[i] for i in kept], config.negative_pool, _rng(config.seed, "lee-negatives"))

    lead = []
    for k, i in enumerate(kept):
        query = truncate_words(sentences[i][0], config.max_query_words)
        lead.append(_pair(query, rests[k], rests[pick(k)], TRAIN_INSTRUCTIONS["lee_news_lead"]))
    build.train["lee_news_lead"] = lead

    if config.sentence_pair_files:
        rng = _rng(config.seed, "lee-sentences")
        files: list[list[dict[str, str]]] = [[] for _ in range(config.sentence_pair_files)]
        for k, i in enumerate(kept):
            doc_sentences = sentences[i]
            if len(doc_sentences) < 3:
                continue
            eligible = [s for s in range(1, len(doc_sentences)) if len(doc_sentences[s].split()) >= 6]
            chosen = rng.sample(eligible, min(len(eligible), config.sentence_pair_files))
            for slot, s in enumerate(chosen):
                query = truncate_words(doc_sentences[s], config.max_query_words)
                positive = truncate_words(" ".join(doc_sentences[:s] + doc_sentences[s + 1 :]), config.max_doc_words)
                negative = truncate_words(docs[kept[pick(k)]], config.max_doc_words)
                files[slot].append(_pair(query, positive, negative, TRAIN_INSTRUCTIONS["lee_news_sentence"]))
        for slot, rows in enumerate(files, start=1):
            if rows:
                build.train[f"lee_news_sentence_{slot}"] = rows


def _newsgroups_training(
    posts: list[NewsgroupPost], overlap: _OverlapIndex, config: DemoDataConfig, build: _Build
) -> None:
    seen_subjects: set[str] = set()
    kept = []
    for post in posts:
        subject = _norm(post.subject)
        if len(subject.split()) < 2 or subject in seen_subjects or overlap.find(post.text) is not None:
            continue
        seen_subjects.add(subject)
        kept.append(post)
    build.notes["newsgroups_training_posts"] = len(kept)
    if len(kept) < 2:
        return
    texts = [truncate_words(p.text, config.max_doc_words) for p in kept]
    pick = _negative_picker(texts, config.negative_pool, _rng(config.seed, "newsgroups-negatives"))
    instruction = TRAIN_INSTRUCTIONS["newsgroups_subject"]
    rows = [
        _pair(truncate_words(post.subject, config.max_query_words), texts[k], texts[pick(k)], instruction)
        for k, post in enumerate(kept)
    ]
    build.train["newsgroups_subject"] = rows


def _assemble(sources: DemoSources, config: DemoDataConfig, say: Log) -> _Build:
    build = _Build()

    say(f"reading {sources.lee_eval} and {sources.lee_similarities}")
    lee_eval = read_lines_corpus(sources.lee_eval)
    matrix = read_similarity_matrix(sources.lee_similarities, len(lee_eval))
    _sts_task(lee_eval, matrix, config, build)

    if sources.polarity is not None:
        say(f"reading {sources.polarity}")
        _polarity_task(read_polarity(sources.polarity), config, build, sources.polarity)

    newsgroups_rest: list[NewsgroupPost] = []
    if sources.newsgroups is not None:
        say(f"reading {sources.newsgroups}")
        posts = read_newsgroups(sources.newsgroups)
        clustering, newsgroups_rest = _split_newsgroups(posts, config, sources.newsgroups)
        _clustering_task(clustering, config, build)

    say(f"reading {sources.lee_background}")
    background = read_lines_corpus(sources.lee_background)
    held_out, train_ids, counts = _split_background(background, config, sources.lee_background)
    build.notes["lee_background"] = counts
    _retrieval_task(background, held_out, config, build)

    say("building training pairs")
    overlap = _OverlapIndex(build.eval_texts)
    _lee_training(background, train_ids, overlap, config, build)
    if newsgroups_rest:
        _newsgroups_training(newsgroups_rest, overlap, config, build)

    train_texts = [
        row[key] for rows in build.train.values() for row in rows for key in ("query", "positive", "negative")
    ]
    check_no_overlap(train_texts, build.eval_texts)
    say(f"checked: no evaluation text overlaps the {len(train_texts)} training texts")
    return build


# --------------------------------------------------------------------------- writing
def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", encoding="utf-8", newline="\n") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def _write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _manifest_files(manifest: dict[str, Any]) -> list[str]:
    files = [f"{TRAIN_DIR}/{name}.jsonl" for name in manifest.get("train", {})]
    for task in manifest.get("eval", {}).values():
        files.append(f"{EVAL_DIR}/{task['spec']}")
        files.extend(f"{EVAL_DIR}/{name}" for name in task["files"])
    return files


def _read_manifest(output_dir: Path) -> dict[str, Any] | None:
    path = output_dir / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        files = _manifest_files(manifest)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    if not all((output_dir / name).is_file() for name in files):
        return None
    return manifest


def is_complete_build(output_dir: str | os.PathLike[str]) -> bool:
    """Whether ``output_dir`` holds a finished build (manifest and every file it lists)."""
    return _read_manifest(Path(output_dir)) is not None


def build_demo_data(
    output_dir: str | os.PathLike[str] = DEFAULT_OUTPUT_DIR,
    sources: DemoSources | None = None,
    config: DemoDataConfig | None = None,
    force: bool = False,
    log: Log | None = _print,
) -> Path:
    """Build the demo's training pairs and evaluation tasks into ``output_dir`` (layout in the module docstring).

    Args:
        output_dir: the folder to write (created with its parents).
        sources: the source files (default: :func:`default_sources`, gensim's test data).
        config: sizes and seed (default: :class:`DemoDataConfig`).
        force: rebuild even if ``output_dir`` holds a complete build with the same settings and
            sources.
        log: progress messages (default: printed with a ``[demo-data]`` prefix; None: silent).

    Returns:
        ``output_dir`` as a :class:`~pathlib.Path`.

    Raises:
        FileNotFoundError: a source file is missing (the message names it).
        DemoDataError: a source file is malformed or too small for ``config``.
        DataOverlapError: an evaluation text would appear in the training pairs.
    """
    say: Log = log if log is not None else (lambda message: None)
    output_dir = Path(output_dir)
    sources = sources if sources is not None else default_sources()
    config = config if config is not None else DemoDataConfig()
    _check_sources(sources)
    source_info = {
        name: {"file": path.name, "bytes": path.stat().st_size, "sha256": _sha256(path)} for name, path in sources.items()
    }
    settings = asdict(config)

    existing = _read_manifest(output_dir)
    if existing is not None and not force:
        same = (existing.get("config"), existing.get("sources"), existing.get("format_version"))
        if same == (settings, source_info, _FORMAT_VERSION):
            say(f"{output_dir} already holds a complete build with these settings; skipping (use force to rebuild)")
            return output_dir
        say(f"{output_dir} was built with other settings or sources; rebuilding")
    elif output_dir.exists() and existing is None:
        say(f"{output_dir} exists but is incomplete (no valid {MANIFEST_FILE}); rebuilding")

    start = time.time()
    build = _assemble(sources, config, say)

    with staged_folder(output_dir, log=say) as tmp_dir:
        train_counts = {}
        for name in sorted(build.train):
            train_counts[name] = _write_jsonl(tmp_dir / TRAIN_DIR / f"{name}.jsonl", build.train[name])
            say(f"wrote {TRAIN_DIR}/{name}.jsonl: {train_counts[name]} pairs")
        eval_info = {}
        for task in EVAL_TASKS:
            if task not in build.eval:
                continue
            spec, files = build.eval[task]
            spec_file = f"{task}.json"
            _write_json(tmp_dir / EVAL_DIR / spec_file, spec)
            counts = {name: _write_jsonl(tmp_dir / EVAL_DIR / name, rows) for name, rows in files.items()}
            eval_info[task] = {"type": spec["type"], "spec": spec_file, "files": counts, **build.notes.get(task, {})}
            say(f"wrote {EVAL_DIR}/{spec_file} ({spec['type']}): {', '.join(f'{n} {c}' for n, c in counts.items())}")
        manifest = {
            "format_version": _FORMAT_VERSION,
            "config": settings,
            "sources": source_info,
            "train": train_counts,
            "train_pairs": sum(train_counts.values()),
            "eval": eval_info,
            "eval_texts": len({_norm(t) for t in build.eval_texts}),
            "notes": {k: v for k, v in build.notes.items() if k not in EVAL_TASKS},
            "usage": {
                "train": {"dataset_name": "jsonl", "dataset_file_path": f"{output_dir.as_posix()}/{TRAIN_DIR}"},
                "eval": f"llm2vec.evaluation.local_tasks.load_local_tasks('{output_dir.as_posix()}/{EVAL_DIR}')",
            },
        }
        _write_json(tmp_dir / MANIFEST_FILE, manifest)  # last: marks the build complete
    say(
        f"done in {time.time() - start:.1f}s: {manifest['train_pairs']} training pairs in {len(train_counts)} files, "
        f"{len(eval_info)} evaluation tasks ({manifest['eval_texts']} distinct texts) in {output_dir}"
    )
    return output_dir
