"""Local JSONL tasks run through mteb on a tiny model; scores checked against hand computations."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import mteb
import numpy as np
import pytest
from scipy.stats import spearmanr

from llm2vec import LLM2Vec
from llm2vec.evaluation.local_tasks import (
    LocalTaskSpec,
    load_local_task_specs,
    load_local_tasks,
    local_task_instructions,
    make_local_task,
)
from llm2vec.evaluation.mteb_encoder import LLM2VecMTEBEncoder, build_model_meta

DATA = Path(__file__).resolve().parents[1] / "data" / "local_tasks"
NAMES = ["TinyClassification", "TinyClustering", "TinyPairClassification", "TinyReranking", "TinyRetrieval", "TinySTS"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=-1, keepdims=True)
    b = b / np.linalg.norm(b, axis=-1, keepdims=True)
    return a @ b.T


@pytest.fixture(scope="module")
def model(tiny_llama_dir: Path) -> LLM2Vec:
    return LLM2Vec.from_pretrained(tiny_llama_dir)


@pytest.fixture(scope="module")
def evaluation(model, tiny_llama_dir, tmp_path_factory):
    """All local tasks evaluated once by mteb; ``(results by task, tasks, cache, model meta)``."""
    tasks = load_local_tasks(DATA)
    meta = build_model_meta(tiny_llama_dir)
    encoder = LLM2VecMTEBEncoder(model, local_task_instructions(tasks), model_meta=meta, show_progress_bar=False)
    cache = mteb.ResultCache(tmp_path_factory.mktemp("local_results"))
    result = mteb.evaluate(
        encoder, tasks, cache=cache, co2_tracker=False, encode_kwargs={"batch_size": 8}, show_progress_bar=False
    )
    return {r.task_name: r for r in result.task_results}, {t.metadata.name: t for t in tasks}, cache, meta


def embed(model: LLM2Vec, instruction: str, texts: list[str]) -> np.ndarray:
    return model.encode([[instruction, t] for t in texts], batch_size=8, show_progress_bar=False, convert_to_numpy=True)


def test_every_local_task_runs_and_is_written_in_mteb_format(evaluation):
    results, tasks, cache, meta = evaluation
    assert sorted(results) == NAMES
    ranges = {
        "TinyClassification": (0.0, 1.0),
        "TinyClustering": (0.0, 1.0),
        "TinyPairClassification": (0.0, 1.0),
        "TinyReranking": (0.0, 1.0),
        "TinyRetrieval": (0.0, 1.0),
        "TinySTS": (-1.0, 1.0),
    }
    for name, result in results.items():
        low, high = ranges[name]
        assert low <= result.get_score() <= high, name
        path = cache.get_task_result_path(name, meta)
        assert path == cache.cache_path / "results" / meta.model_name_as_path() / meta.revision / f"{name}.json"
        on_disk = mteb.TaskResult.from_disk(path)
        assert on_disk.task_name == name
        assert on_disk.dataset_revision == tasks[name].metadata.revision
        assert list(on_disk.scores) == ["test"]
        assert on_disk.get_score() == pytest.approx(result.get_score(), abs=1e-6)
    assert (path.parent / "model_meta.json").exists()
    scores = {name: result.scores["test"][0] for name, result in results.items()}
    assert scores["TinyClassification"]["main_score"] == scores["TinyClassification"]["accuracy"]
    assert len(scores["TinyClassification"]["scores_per_experiment"]) == 3  # n_experiments of the spec
    assert scores["TinyClustering"]["main_score"] == scores["TinyClustering"]["v_measure"]
    assert scores["TinyPairClassification"]["main_score"] == scores["TinyPairClassification"]["cosine_ap"]


def test_sts_score_is_the_spearman_correlation_of_cosines(evaluation, model):
    results, tasks, cache, meta = evaluation
    rows = read_jsonl(DATA / "tiny_sts.jsonl")
    instruction = tasks["TinySTS"].spec.instruction
    similarities = np.diag(
        cosine(embed(model, instruction, [r["sentence1"] for r in rows]), embed(model, instruction, [r["sentence2"] for r in rows]))
    )
    expected = spearmanr(similarities, [r["score"] for r in rows]).statistic
    assert results["TinySTS"].scores["test"][0]["cosine_spearman"] == pytest.approx(expected, abs=1e-6)
    assert results["TinySTS"].get_score() == pytest.approx(expected, abs=1e-6)
    on_disk = mteb.TaskResult.from_disk(cache.get_task_result_path("TinySTS", meta))
    assert on_disk.get_score() == pytest.approx(expected, abs=1e-6)


def ndcg_at_10(ranked: list[str], relevance: dict[str, int]) -> float:
    dcg = sum(relevance.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:10]))
    ideal = sorted(relevance.values(), reverse=True)[:10]
    return dcg / sum(gain / math.log2(rank + 2) for rank, gain in enumerate(ideal))


def test_retrieval_ndcg_at_10_matches_a_hand_computation(evaluation, model):
    results, tasks, cache, meta = evaluation
    folder = DATA / "tiny_retrieval"
    corpus, queries = read_jsonl(folder / "corpus.jsonl"), read_jsonl(folder / "queries.jsonl")
    qrels: dict[str, dict[str, int]] = {}
    for row in read_jsonl(folder / "qrels.jsonl"):
        qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = row["score"]
    # queries carry the instruction; documents are "title text" without one
    query_embeddings = embed(model, tasks["TinyRetrieval"].spec.instruction, [q["text"] for q in queries])
    doc_embeddings = embed(model, "", [f"{d['title']} {d['text']}".strip() for d in corpus])
    similarity = cosine(query_embeddings, doc_embeddings)
    values = []
    for i, query in enumerate(queries):
        ranked = [corpus[j]["id"] for j in np.argsort(-similarity[i], kind="stable")]
        values.append(ndcg_at_10(ranked, qrels[query["id"]]))
    expected = float(np.mean(values))
    assert 0.0 < expected < 1.0
    assert results["TinyRetrieval"].get_score() == pytest.approx(expected, abs=1e-5)  # mteb rounds to 5 digits


def test_reranking_map_matches_a_hand_computation(evaluation, model):
    results, tasks, cache, meta = evaluation
    instruction = tasks["TinyReranking"].spec.instruction
    average_precisions = []
    for row in read_jsonl(DATA / "tiny_reranking.jsonl"):
        candidates = row["positive"] + row["negative"]
        relevant = [1] * len(row["positive"]) + [0] * len(row["negative"])
        scores = cosine(embed(model, instruction, [row["query"]]), embed(model, "", candidates))[0]
        ranked = [relevant[j] for j in np.argsort(-scores, kind="stable")]
        hits = np.cumsum(ranked)
        precisions = [hits[k] / (k + 1) for k, rel in enumerate(ranked) if rel]
        average_precisions.append(float(np.mean(precisions)))
    expected = float(np.mean(average_precisions))
    assert results["TinyReranking"].get_score() == pytest.approx(expected, abs=1e-5)


def test_specs_resolve_paths_and_hash_the_data(tmp_path):
    shutil.copy(DATA / "tiny_sts.jsonl", tmp_path / "pairs.jsonl")
    spec_file = tmp_path / "specs" / "tasks.json"
    spec_file.parent.mkdir()
    spec_file.write_text(
        json.dumps(
            [
                {"name": "A", "type": "STS", "path": "../pairs.jsonl", "instruction": "Retrieve similar text:"},
                {"name": "B", "type": "PairClassification", "path": str(DATA / "tiny_pair_classification.jsonl")},
            ]
        )
    )
    specs = load_local_task_specs(spec_file)
    assert [s.name for s in specs] == ["A", "B"]
    assert specs[0].path == (tmp_path / "pairs.jsonl").resolve()
    assert local_task_instructions(specs) == {"A": "Retrieve similar text:"}
    task = make_local_task(specs[0])
    assert task.metadata.main_score == "cosine_spearman" and task.metadata.type == "STS"
    revision = task.metadata.revision
    with open(tmp_path / "pairs.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"sentence1": "x", "sentence2": "y", "score": 1.0}) + "\n")
    assert make_local_task(load_local_task_specs(spec_file)[0]).metadata.revision != revision


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "A", "type": "Bitext", "path": "x"}, "unknown type"),
        ({"name": "A", "type": "STS", "path": "tiny_sts.jsonl", "colour": "red"}, "unknown key"),
        ({"name": "A", "type": "STS", "path": "tiny_sts.jsonl", "n_experiments": 2}, "unknown key"),
        ({"name": "A/B", "type": "STS", "path": "tiny_sts.jsonl"}, "may only hold"),
        ({"type": "STS", "path": "tiny_sts.jsonl"}, "needs a string 'name'"),
        ({"name": "STS12", "type": "STS", "path": "tiny_sts.jsonl"}, "name of an mteb task"),
    ],
)
def test_invalid_specs_are_rejected(spec, message):
    with pytest.raises(ValueError, match=message):
        make_local_task(spec, base_dir=DATA)


def test_missing_data_files_are_reported(tmp_path):
    with pytest.raises(FileNotFoundError, match="corpus.jsonl"):
        make_local_task({"name": "R", "type": "Retrieval", "path": str(tmp_path)})
    with pytest.raises(FileNotFoundError):
        load_local_task_specs(tmp_path / "nothing.json")


def test_spec_objects_and_classes():
    spec = LocalTaskSpec.from_dict({"name": "Tiny:STS", "type": "STS", "path": "tiny_sts.jsonl"}, DATA)
    task = make_local_task(spec)
    assert task.metadata.name == "Tiny:STS"
    assert task.eval_splits == ["test"] and task.hf_subsets == ["default"]
    task.load_data()
    assert task.dataset["default"]["test"].column_names == ["sentence1", "sentence2", "score"]
