"""Evaluation tasks read from local JSONL files, so evaluation runs with no network.

A local task is an mteb task (a subclass of mteb's ``AbsTaskSTS``, ``AbsTaskRetrieval``,
``AbsTaskClassification``, ``AbsTaskClusteringLegacy`` or ``AbsTaskPairClassification``) whose
``load_data`` reads local files instead of the Hugging Face hub. mteb computes the scores and
writes the results in its own format, exactly as for its own tasks.

A spec (a JSON file holding one spec object or a list of them, or a folder of such files) gives
the task's ``name``, its ``type`` (STS, Retrieval, Reranking, Classification, Clustering or
PairClassification), its data ``path`` relative to the spec file, optional keys and the options of
its type. The data's content hash is recorded as the task's dataset revision. The spec keys and
each type's data format: docs/evaluation.md, "Local tasks"; one example of each type:
``tests/data/local_tasks/``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Dataset, DatasetDict
from mteb.abstasks import (
    AbsTask,
    AbsTaskClassification,
    AbsTaskClusteringLegacy,
    AbsTaskPairClassification,
    AbsTaskRetrieval,
    AbsTaskSTS,
)
from mteb.abstasks.task_metadata import TaskMetadata

__all__ = [
    "LOCAL_TASK_TYPES",
    "LocalTaskSpec",
    "load_local_task_specs",
    "make_local_task",
    "load_local_tasks",
    "local_task_instructions",
]


class LocalTaskError(ValueError):
    """A local task spec or data file that cannot be used; the message names the file (and line)."""


_COMMON_KEYS = {"name", "type", "path", "instruction", "main_score", "description", "eval_split", "languages"}
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+-]*")


@dataclass(frozen=True)
class LocalTaskSpec:
    """One local task: its name, type, data location and options (docs/evaluation.md, "Local tasks")."""

    name: str
    type: str
    path: Path
    instruction: str | None = None
    main_score: str | None = None
    description: str | None = None
    eval_split: str = "test"
    languages: tuple[str, ...] = ("eng-Latn",)
    options: dict[str, Any] = field(default_factory=dict)
    source: Path | None = None  # the spec file

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], base_dir: str | os.PathLike = ".", source: Path | None = None) -> LocalTaskSpec:
        """Validate a spec object; ``path`` is resolved against ``base_dir``."""
        where = f" in {source}" if source is not None else ""
        if not isinstance(data, Mapping):
            raise LocalTaskError(f"a local task spec must be a JSON object{where}, got {data!r}")
        for key in ("name", "type", "path"):
            if not isinstance(data.get(key), str) or not data[key]:
                raise LocalTaskError(f"local task spec{where} needs a string {key!r}: {dict(data)!r}")
        name, task_type = data["name"], data["type"]
        if task_type not in LOCAL_TASK_TYPES:
            raise LocalTaskError(f"local task {name!r}{where}: unknown type {task_type!r}; choose one of {sorted(LOCAL_TASK_TYPES)}")
        if _NAME.fullmatch(name) is None:
            raise LocalTaskError(f"local task name {name!r}{where} may only hold letters, digits and . _ : + -")
        allowed_options = LOCAL_TASK_TYPES[task_type].options
        unknown = set(data) - _COMMON_KEYS - set(allowed_options)
        if unknown:
            raise LocalTaskError(
                f"local task {name!r}{where}: unknown key(s) {sorted(unknown)}; a {task_type} task takes "
                f"{sorted(_COMMON_KEYS | set(allowed_options))}"
            )
        for key in ("instruction", "main_score", "description", "eval_split"):
            if key in data and not isinstance(data[key], str):
                raise LocalTaskError(f"local task {name!r}{where}: {key!r} must be a string")
        languages = data.get("languages", ["eng-Latn"])
        if isinstance(languages, str) or not all(isinstance(lang, str) for lang in languages):
            raise LocalTaskError(f"local task {name!r}{where}: 'languages' must be a list of strings like 'eng-Latn'")
        path = Path(data["path"])
        if not path.is_absolute():
            path = Path(base_dir) / path
        return cls(
            name=name,
            type=task_type,
            path=path.resolve(),
            instruction=data.get("instruction"),
            main_score=data.get("main_score"),
            description=data.get("description"),
            eval_split=data.get("eval_split", "test"),
            languages=tuple(languages),
            options={key: data[key] for key in allowed_options if key in data},
            source=source,
        )

    @property
    def data_files(self) -> list[Path]:
        """The files this task reads (for the content hash)."""
        return LOCAL_TASK_TYPES[self.type].files(self)

    def revision(self) -> str:
        """A content hash of the data files and options, recorded as the dataset revision."""
        digest = hashlib.sha256()
        digest.update(json.dumps([self.type, self.eval_split, self.options], sort_keys=True).encode())
        for path in self.data_files:
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
        return digest.hexdigest()[:16]


# --------------------------------------------------------------------------- reading files
class _Row(dict):
    """One JSON line, remembering where it came from for error messages."""

    line: int = 0


def _read_jsonl(path: Path, required: Iterable[str] = ()) -> list[_Row]:
    if not path.is_file():
        raise FileNotFoundError(f"local task data file not found: {path}")
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                raise LocalTaskError(f"{path}:{number}: not valid JSON ({error})") from None
            if not isinstance(row, dict):
                raise LocalTaskError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
            missing = [key for key in required if key not in row]
            if missing:
                raise LocalTaskError(f"{path}:{number}: missing key(s) {missing}")
            row = _Row(row)
            row.line = number
            rows.append(row)
    if not rows:
        raise LocalTaskError(f"{path}: no data")
    return rows


def _label_ids(labels: list[Any]) -> list[int]:
    """Labels as ids 0..k-1 in sorted order (mteb's scores need numbers for binary tasks)."""
    names = sorted({str(label) for label in labels})
    index = {name: i for i, name in enumerate(names)}
    return [index[str(label)] for label in labels]


def _read_sts(spec: LocalTaskSpec) -> dict[str, DatasetDict]:
    rows = _read_jsonl(spec.path, ("sentence1", "sentence2", "score"))
    low, high = spec.options.get("min_score", -math.inf), spec.options.get("max_score", math.inf)
    for row in rows:
        score = row["score"]
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not math.isfinite(score):
            raise LocalTaskError(f"{spec.path}:{row.line}: score must be a finite number, got {score!r}")
        if not low <= score <= high:
            raise LocalTaskError(
                f"{spec.path}:{row.line}: score {score} lies outside the declared range [{low}, {high}] "
                f"(min_score / max_score of task {spec.name!r})"
            )
    data = {
        "sentence1": [str(r["sentence1"]) for r in rows],
        "sentence2": [str(r["sentence2"]) for r in rows],
        "score": [float(r["score"]) for r in rows],
    }
    return {"default": DatasetDict({spec.eval_split: Dataset.from_dict(data)})}


def _read_pair_classification(spec: LocalTaskSpec) -> dict[str, DatasetDict]:
    rows = _read_jsonl(spec.path, ("sentence1", "sentence2", "label"))
    labels = [int(r["label"]) for r in rows]
    if set(labels) - {0, 1}:
        raise LocalTaskError(f"{spec.path}: pair classification labels must be 0 or 1")
    # mteb's v1 layout: one row holding the lists
    data = {
        "sentence1": [[str(r["sentence1"]) for r in rows]],
        "sentence2": [[str(r["sentence2"]) for r in rows]],
        "labels": [labels],
    }
    return {"default": DatasetDict({spec.eval_split: Dataset.from_dict(data)})}


def _classification_files(spec: LocalTaskSpec) -> list[Path]:
    return [spec.path / "train.jsonl", spec.path / f"{spec.eval_split}.jsonl"]


def _read_classification(spec: LocalTaskSpec) -> dict[str, DatasetDict]:
    train_path, eval_path = _classification_files(spec)
    train = _read_jsonl(train_path, ("text", "label"))
    evaluation = _read_jsonl(eval_path, ("text", "label"))
    if len({str(r["label"]) for r in train}) < 2:
        raise LocalTaskError(
            f"{train_path}: every line has the label {train[0]['label']!r}; a classifier needs at least two labels"
        )
    ids = _label_ids([r["label"] for r in train + evaluation])
    splits = {
        "train": Dataset.from_dict({"text": [str(r["text"]) for r in train], "label": ids[: len(train)]}),
        spec.eval_split: Dataset.from_dict({"text": [str(r["text"]) for r in evaluation], "label": ids[len(train) :]}),
    }
    return {"default": DatasetDict(splits)}


def _read_clustering(spec: LocalTaskSpec) -> dict[str, DatasetDict]:
    rows = _read_jsonl(spec.path)
    if all("sentences" in r and "labels" in r for r in rows):
        sets = [([str(t) for t in r["sentences"]], list(r["labels"])) for r in rows]
    elif all("text" in r and "label" in r for r in rows):
        sets = [([str(r["text"]) for r in rows], [r["label"] for r in rows])]
    else:
        raise LocalTaskError(f"{spec.path}: clustering lines need 'text' and 'label' (or 'sentences' and 'labels')")
    for sentences, labels in sets:
        if len(sentences) != len(labels):
            raise LocalTaskError(f"{spec.path}: a clustering has {len(sentences)} sentences but {len(labels)} labels")
    data = {"sentences": [s for s, _ in sets], "labels": [_label_ids(labels) for _, labels in sets]}
    return {"default": DatasetDict({spec.eval_split: Dataset.from_dict(data)})}


def _row_id(row: Mapping[str, Any], path: Path) -> str:
    for key in ("id", "_id"):
        if key in row:
            return str(row[key])
    raise LocalTaskError(f"{path}: a line has no 'id' (or '_id'): {dict(row)!r}")


def _qrels_path(spec: LocalTaskSpec) -> Path:
    jsonl = spec.path / "qrels.jsonl"
    return jsonl if jsonl.exists() or not (spec.path / "qrels.tsv").exists() else spec.path / "qrels.tsv"


def _retrieval_files(spec: LocalTaskSpec) -> list[Path]:
    return [spec.path / "corpus.jsonl", spec.path / "queries.jsonl", _qrels_path(spec)]


def _read_qrels(path: Path, query_ids: set[str], corpus_ids: set[str]) -> dict[str, dict[str, int]]:
    """Judgements ``{query: {document: score}}``; each must name a known query and document."""
    qrels: dict[str, dict[str, int]] = {}
    if path.suffix == ".tsv":
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.reader(f, delimiter="\t")
            next(reader, None)  # header
            lines = [(number, row[0], row[1], row[2]) for number, row in enumerate(reader, start=2) if row]
    else:
        rows = _read_jsonl(path, ("query-id", "corpus-id", "score"))
        lines = [(r.line, r["query-id"], r["corpus-id"], r["score"]) for r in rows]
    for number, query_id, corpus_id, score in lines:
        query_id, corpus_id = str(query_id), str(corpus_id)
        if query_id not in query_ids:
            raise LocalTaskError(f"{path}:{number}: query id {query_id!r} is not in the queries file")
        if corpus_id not in corpus_ids:
            raise LocalTaskError(f"{path}:{number}: corpus id {corpus_id!r} is not in the corpus file")
        qrels.setdefault(query_id, {})[corpus_id] = int(score)
    return qrels


def _read_retrieval(spec: LocalTaskSpec) -> dict[str, dict[str, Any]]:
    corpus_path, queries_path, qrels_path = _retrieval_files(spec)
    corpus_rows = _read_jsonl(corpus_path, ("text",))
    query_rows = _read_jsonl(queries_path, ("text",))
    corpus = Dataset.from_dict(
        {
            "id": [_row_id(r, corpus_path) for r in corpus_rows],
            "title": [str(r.get("title") or "") for r in corpus_rows],
            "text": [str(r["text"]) for r in corpus_rows],
        }
    )
    queries = Dataset.from_dict(
        {"id": [_row_id(r, queries_path) for r in query_rows], "text": [str(r["text"]) for r in query_rows]}
    )
    qrels = _read_qrels(qrels_path, set(queries["id"]), set(corpus["id"]))
    split = {"corpus": corpus, "queries": queries, "relevant_docs": qrels, "top_ranked": None}
    return {"default": {spec.eval_split: split}}


def _read_reranking(spec: LocalTaskSpec) -> dict[str, dict[str, Any]]:
    rows = _read_jsonl(spec.path, ("query", "positive", "negative"))
    query_ids, query_texts = [], []
    doc_ids, doc_texts = [], []
    qrels: dict[str, dict[str, int]] = {}
    top_ranked: dict[str, list[str]] = {}
    for number, row in enumerate(rows):
        positives, negatives = list(row["positive"]), list(row["negative"])
        if not positives or not negatives:
            continue
        query_id = f"q{number}"
        query_ids.append(query_id)
        query_texts.append(str(row["query"]))
        candidates = [(f"{query_id}-pos{i}", text, 1) for i, text in enumerate(positives)]
        candidates += [(f"{query_id}-neg{i}", text, 0) for i, text in enumerate(negatives)]
        for doc_id, text, relevance in candidates:
            doc_ids.append(doc_id)
            doc_texts.append(str(text))
            qrels.setdefault(query_id, {})[doc_id] = relevance
        top_ranked[query_id] = [doc_id for doc_id, _, _ in candidates]
    if not query_ids:
        raise LocalTaskError(f"{spec.path}: no line has both a positive and a negative")
    split = {
        "corpus": Dataset.from_dict({"id": doc_ids, "title": [""] * len(doc_ids), "text": doc_texts}),
        "queries": Dataset.from_dict({"id": query_ids, "text": query_texts}),
        "relevant_docs": qrels,
        "top_ranked": top_ranked,
    }
    return {"default": {spec.eval_split: split}}


# --------------------------------------------------------------------------- task classes
class _LocalDataMixin:
    """``load_data`` from the spec's files instead of the hub (put first in the bases)."""

    spec: LocalTaskSpec
    dataset: Any
    data_loaded: bool

    def load_data(self, num_proc: int | None = None, *, timer: Any = None, **kwargs: Any) -> None:
        if self.data_loaded:
            return
        self.dataset = LOCAL_TASK_TYPES[self.spec.type].reader(self.spec)
        self.data_loaded = True


class LocalSTSTask(_LocalDataMixin, AbsTaskSTS):
    """STS task read from a local JSONL file."""


class LocalPairClassificationTask(_LocalDataMixin, AbsTaskPairClassification):
    """Pair classification task read from a local JSONL file."""


class LocalClassificationTask(_LocalDataMixin, AbsTaskClassification):
    """Classification task read from local ``train.jsonl`` / ``<split>.jsonl`` files."""


class LocalClusteringTask(_LocalDataMixin, AbsTaskClusteringLegacy):
    """Clustering task read from a local JSONL file."""


class LocalRetrievalTask(_LocalDataMixin, AbsTaskRetrieval):
    """Retrieval task read from local corpus / queries / qrels files."""


class LocalRerankingTask(_LocalDataMixin, AbsTaskRetrieval):
    """Reranking task (retrieval over each query's candidates) read from a local JSONL file."""


def _single_file(spec: LocalTaskSpec) -> list[Path]:
    return [spec.path]


@dataclass(frozen=True)
class _TaskType:
    base: type[AbsTask]
    main_score: str
    reader: Any  # spec -> the task's ``dataset``
    options: tuple[str, ...] = ()  # spec keys of this type
    files: Any = _single_file  # spec -> the data files read


def _sts_attributes(spec: LocalTaskSpec) -> dict[str, Any]:
    if "min_score" in spec.options and "max_score" in spec.options:
        low, high = spec.options["min_score"], spec.options["max_score"]
    else:
        scores = [float(r["score"]) for r in _read_jsonl(spec.path, ("score",))]
        low, high = spec.options.get("min_score", min(scores)), spec.options.get("max_score", max(scores))
    if not high > low:
        raise LocalTaskError(f"local STS task {spec.name!r}: max_score must be larger than min_score ({low}, {high})")
    return {"min_score": low, "max_score": high}


def _classification_attributes(spec: LocalTaskSpec) -> dict[str, Any]:
    attributes: dict[str, Any] = {}
    for key in ("n_experiments", "samples_per_label"):
        if key in spec.options:
            value = spec.options[key]
            if not isinstance(value, int) or value < 1:
                raise LocalTaskError(f"local task {spec.name!r}: {key} must be a positive integer")
            attributes[key] = value
    return attributes


LOCAL_TASK_TYPES: dict[str, _TaskType] = {
    "STS": _TaskType(LocalSTSTask, "cosine_spearman", _read_sts, ("min_score", "max_score")),
    "PairClassification": _TaskType(LocalPairClassificationTask, "cosine_ap", _read_pair_classification),
    "Classification": _TaskType(
        LocalClassificationTask,
        "accuracy",
        _read_classification,
        ("n_experiments", "samples_per_label"),
        _classification_files,
    ),
    "Clustering": _TaskType(LocalClusteringTask, "v_measure", _read_clustering),
    "Retrieval": _TaskType(LocalRetrievalTask, "ndcg_at_10", _read_retrieval, (), _retrieval_files),
    "Reranking": _TaskType(LocalRerankingTask, "map_at_1000", _read_reranking),
}

_ATTRIBUTES = {"STS": _sts_attributes, "Classification": _classification_attributes}


def _check_not_mteb_task(name: str, source: Path | None) -> None:
    import mteb

    try:
        mteb.get_task(name)
    except KeyError:
        return
    where = f" (in {source})" if source is not None else ""
    raise LocalTaskError(f"local task name {name!r}{where} is the name of an mteb task; choose another name")


def make_local_task(spec: LocalTaskSpec | Mapping[str, Any], base_dir: str | os.PathLike = ".") -> AbsTask:
    """An mteb task instance for ``spec`` (a :class:`LocalTaskSpec` or a spec object)."""
    if not isinstance(spec, LocalTaskSpec):
        spec = LocalTaskSpec.from_dict(spec, base_dir)
    _check_not_mteb_task(spec.name, spec.source)
    task_type = LOCAL_TASK_TYPES[spec.type]
    for path in task_type.files(spec):
        if not path.is_file():
            raise FileNotFoundError(f"local task {spec.name!r}: data file not found: {path}")
    metadata = TaskMetadata(
        name=spec.name,
        description=spec.description or f"Local {spec.type} task read from {spec.path}",
        dataset={"path": str(spec.path), "revision": spec.revision()},
        type=spec.type,
        category="t2t",
        modalities=["text"],
        eval_splits=[spec.eval_split],
        eval_langs=list(spec.languages),
        main_score=spec.main_score or task_type.main_score,
        prompt=spec.instruction,
        sample_creation="created",
        bibtex_citation="",
    )
    attributes: dict[str, Any] = {"metadata": metadata, "spec": spec, "__module__": __name__}
    attributes.update(_ATTRIBUTES.get(spec.type, lambda _: {})(spec))
    class_name = "Local" + re.sub(r"\W", "_", spec.name)
    task_class = type(class_name, (task_type.base,), attributes)
    task = task_class()
    task.load_data()  # read and checked now, before any model is loaded
    return task


def load_local_task_specs(path: str | os.PathLike) -> list[LocalTaskSpec]:
    """Specs from a JSON file (one object or a list) or from every ``*.json`` file of a folder."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if p.is_file())
        if not files:
            raise FileNotFoundError(f"no local task spec (*.json) in {path}")
    elif path.is_file():
        files = [path]
    else:
        raise FileNotFoundError(f"local task spec not found: {path}")
    specs: list[LocalTaskSpec] = []
    for file in files:
        try:
            data = json.loads(file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise LocalTaskError(f"{file}:{error.lineno}: not valid JSON ({error.msg})") from None
        for item in data if isinstance(data, list) else [data]:
            specs.append(LocalTaskSpec.from_dict(item, file.parent, source=file))
    names = [spec.name for spec in specs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise LocalTaskError(f"local task names used more than once in {path}: {duplicates}")
    return specs


def load_local_tasks(path: str | os.PathLike) -> list[AbsTask]:
    """mteb task instances for the specs in ``path`` (see :func:`load_local_task_specs`)."""
    return [make_local_task(spec) for spec in load_local_task_specs(path)]


def local_task_instructions(tasks_or_specs: Iterable[AbsTask | LocalTaskSpec]) -> dict[str, str]:
    """``{name: instruction}`` of the local tasks (or specs) that define one."""
    instructions = {}
    for item in tasks_or_specs:
        spec = item if isinstance(item, LocalTaskSpec) else getattr(item, "spec", None)
        if spec is not None and spec.instruction is not None:
            instructions[spec.name] = spec.instruction
    return instructions
