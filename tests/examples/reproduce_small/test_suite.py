"""Tests of ``repro_small.suite.build_suite`` on the small fake sources (no download, no gensim files).

Covered: the files and their formats (specs load with ``load_local_tasks``, training files with
the ``jsonl`` dataset), task sizes as configured, duplicate groups kept out of evaluation,
disjointness (an injected overlap raises), byte-identical rebuilds, skipping, and errors for a
wrong checksum, too-small sources and too-small tasks.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from repro_small import suite
from repro_small.assets import AssetChecksumError, SuiteSources
from repro_small.config import SuiteConfig
from repro_small.demo_parts import DataOverlapError, read_lines_corpus
from repro_small.records import EvalTask, SuiteDataError, TrainFile
from repro_small.suite import MANIFEST_FILE, build_suite, check_disjoint, is_complete_suite

from tests.examples.reproduce_small.fake_sources import CLASSES, write_suite_sources

TINY = SuiteConfig(
    max_query_words=30,
    max_doc_words=40,
    negative_pool=3,
    bbc_retrieval_queries=6,
    bbc_retrieval_distractors=6,
    bbc_classification_train_per_label=2,
    bbc_classification_test_per_label=2,
    bbc_classification_samples_per_label=2,
    bbc_clustering_per_label=2,
    classification_experiments=2,
    lee_sentence_pair_files=2,
    review_min_words=5,
    plot_min_words=5,
    review_retrieval_per_movie=1,
    review_retrieval_corpus=12,
    review_reranking_per_movie=1,
    review_reranking_negatives=3,
    review_reranking_pool=5,
    review_pair_movies=4,
    polarity_train_per_label=3,
    polarity_test_per_label=4,
    polarity_samples_per_label=2,
    polarity_min_words=3,
    min_scored_items=4,
)

TASKS = [
    "SmallBBCHeadlineRetrieval",
    "SmallBBCClassification",
    "SmallBBCClustering",
    "SmallLeeSTS",
    "SmallNewsgroupsClustering",
    "SmallReviewPlotRetrieval",
    "SmallReviewPlotReranking",
    "SmallReviewPairClassification",
    "SmallReviewPolarityClassification",
]


@pytest.fixture
def sources(tmp_path: Path) -> SuiteSources:
    return write_suite_sources(tmp_path / "sources")


def _build(out: Path, sources: SuiteSources, seed: int = 0, config: SuiteConfig = TINY, **kwargs: object) -> Path:
    return build_suite(out, seed, config=config, sources=sources, log=None, **kwargs)


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_build_writes_every_task_with_the_configured_sizes(sources: SuiteSources, tmp_path: Path) -> None:
    out = _build(tmp_path / "suite", sources)
    assert is_complete_suite(out)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".suite.")]  # no temporary folder left
    manifest = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))
    ev = out / "eval"
    assert list(manifest["eval"]) == TASKS
    assert sorted(p.stem for p in ev.glob("*.json")) == sorted(TASKS)
    assert "not MTEB" in manifest["note"]

    assert len(_jsonl(ev / "bbc_headline_retrieval" / "queries.jsonl")) == 6
    assert len(_jsonl(ev / "bbc_headline_retrieval" / "corpus.jsonl")) == 12
    for split, size in (("train", 10), ("test", 10)):
        rows = _jsonl(ev / "bbc_classification" / f"{split}.jsonl")
        assert len(rows) == size and sorted({r["label"] for r in rows}) == sorted(CLASSES)
    assert len(_jsonl(ev / "bbc_clustering.jsonl")) == 10
    assert len(_jsonl(ev / "lee_sts.jsonl")) == 15  # every pair of the 6 fake lee.cor articles
    assert len(_jsonl(ev / "newsgroups_clustering.jsonl")) == 20  # every post
    assert len(_jsonl(ev / "review_plot_retrieval" / "queries.jsonl")) == 8  # one per plot movie
    assert len(_jsonl(ev / "review_plot_retrieval" / "corpus.jsonl")) == 12
    reranking = _jsonl(ev / "review_plot_reranking.jsonl")
    assert len(reranking) == 8 and all(len(r["positive"]) == 1 and len(r["negative"]) == 3 for r in reranking)
    assert all(r["positive"][0] not in r["negative"] for r in reranking)
    pairs = _jsonl(ev / "review_pair_classification.jsonl")
    assert sorted(r["label"] for r in pairs) == [0] * 4 + [1] * 4
    for label in (0, 1):  # every review is in one positive and one negative pair
        firsts = sorted(r["sentence1"] for r in pairs if r["label"] == label)
        assert firsts == sorted(r["sentence1"] for r in pairs if r["label"] == 1 - label)
    assert len(_jsonl(ev / "review_polarity" / "train.jsonl")) == 6
    assert len(_jsonl(ev / "review_polarity" / "test.jsonl")) == 8

    scored = {name: info["scored_items"] for name, info in manifest["eval"].items()}
    assert scored == {
        "SmallBBCHeadlineRetrieval": 6, "SmallBBCClassification": 10, "SmallBBCClustering": 10, "SmallLeeSTS": 15,
        "SmallNewsgroupsClustering": 20, "SmallReviewPlotRetrieval": 8, "SmallReviewPlotReranking": 8,
        "SmallReviewPairClassification": 8, "SmallReviewPolarityClassification": 8,
    }  # fmt: skip
    domains = {name: info["domain"] for name, info in manifest["eval"].items()}
    assert {n for n, d in domains.items() if d == "in-domain"} == {
        "SmallBBCHeadlineRetrieval", "SmallBBCClassification", "SmallBBCClustering", "SmallLeeSTS"
    }  # fmt: skip
    corpora = {name: info["corpus"] for name, info in manifest["eval"].items()}
    assert set(corpora.values()) == {"bbc", "lee", "newsgroups", "rotten_tomatoes"}
    assert manifest["eval"]["SmallReviewPlotRetrieval"]["details"]["documents"] == 12
    allowed = {"name", "type", "path", "instruction", "description", "min_score", "max_score"}
    allowed |= {"samples_per_label", "n_experiments"}
    for name in TASKS:
        spec = json.loads((ev / f"{name}.json").read_text(encoding="utf-8"))
        assert set(spec) <= allowed and spec["name"] == name and spec["instruction"].endswith(":")
    assert manifest["texts"]["embeddings_per_evaluation"] >= manifest["texts"]["distinct_eval_texts"] > 0
    assert (out / manifest["spread_texts"]).is_file()


def test_training_files(sources: SuiteSources, tmp_path: Path) -> None:
    out = _build(tmp_path / "suite", sources)
    manifest = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))
    names = sorted(p.stem for p in (out / "train").glob("*.jsonl"))
    assert names == ["bbc_headline", "bbc_lead", "lee_news_lead", "lee_news_sentence_1", "lee_news_sentence_2"]
    for name in names:
        rows = _jsonl(out / "train" / f"{name}.jsonl")
        assert len(rows) == manifest["train"][name]["pairs"] > 0
        for row in rows:
            assert list(row) == ["query", "positive", "negative", "instruction"]
            assert all(isinstance(v, str) and v.strip() for v in row.values()) and row["positive"] != row["negative"]
            assert len(row["positive"].split()) <= TINY.max_doc_words
            assert len(row["query"].split()) <= TINY.max_query_words
    assert manifest["train_pairs"] == sum(info["pairs"] for info in manifest["train"].values())
    # BBC: a hard negative comes from the same class (tags start with the class's first three letters)
    for row in _jsonl(out / "train" / "bbc_headline.jsonl"):
        assert row["query"].split()[1][:3] in row["negative"].lower()


def test_duplicate_groups_stay_out_of_evaluation(sources: SuiteSources, tmp_path: Path) -> None:
    """No member of a planted group is evaluated; each group gives exactly one training article."""
    out = _build(tmp_path / "suite", sources)
    ev = out / "eval"
    eval_text = " ".join(
        r["text"] for name in ("queries", "corpus") for r in _jsonl(ev / "bbc_headline_retrieval" / f"{name}.jsonl")
    ) + " ".join(r["text"] for s in ("train", "test") for r in _jsonl(ev / "bbc_classification" / f"{s}.jsonl"))
    eval_text += " ".join(r["text"] for r in _jsonl(ev / "bbc_clustering.jsonl"))
    for tag in ("pol03", "spo04", "samehead1", "ent05", "follow1"):  # members of the three planted groups
        assert tag not in eval_text.lower()
    training = _jsonl(out / "train" / "bbc_headline.jsonl")
    for group in (("pol03",), ("spo04", "samehead1"), ("ent05", "follow1")):
        assert sum(any(tag in row["positive"].lower() for tag in group) for row in training) == 1


def test_formats_load_with_the_library(sources: SuiteSources, tmp_path: Path) -> None:
    pytest.importorskip("mteb")
    from llm2vec.dataset import JsonlPairsDataset
    from llm2vec.evaluation.local_tasks import load_local_tasks

    out = _build(tmp_path / "suite", sources)
    tasks = load_local_tasks(out / "eval")
    assert sorted(t.metadata.name for t in tasks) == sorted(TASKS)
    for task in tasks:
        task.load_data()
        assert task.data_loaded
    dataset = JsonlPairsDataset(out / "train", per_device_batch_size=2, require_negatives=True)
    assert len(dataset) > 0 and dataset[0].negative and "; " in dataset[0].query


def test_same_seed_gives_identical_files(sources: SuiteSources, tmp_path: Path) -> None:
    first = _files(_build(tmp_path / "a", sources, seed=3))
    assert _files(_build(tmp_path / "b", sources, seed=3)) == first
    other = _files(_build(tmp_path / "c", sources, seed=4))
    assert other.keys() == first.keys() and other != first


def test_no_evaluation_text_is_in_training(sources: SuiteSources, tmp_path: Path) -> None:
    out = _build(tmp_path / "suite", sources)
    train = " ".join(v.lower() for p in (out / "train").glob("*.jsonl") for r in _jsonl(p) for v in r.values())
    for path in (out / "eval").rglob("*.jsonl"):
        for row in _jsonl(path):
            for key in ("text", "sentence1", "sentence2", "query"):
                if key in row and len(str(row[key]).split()) >= 5:
                    assert str(row[key]).lower() not in train


def test_an_overlapping_training_candidate_is_dropped(sources: SuiteSources, tmp_path: Path) -> None:
    lee_article = read_lines_corpus(sources.lee_eval)[2]  # an STS text, placed in the background corpus
    with open(sources.lee_background, "a", encoding="utf-8") as handle:
        handle.write(lee_article + "\n")
    out = _build(tmp_path / "suite", sources)
    manifest = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["notes"]["gensim"]["lee_dropped_for_overlap"] == 1


def test_check_disjoint_raises_on_an_injected_overlap() -> None:
    sentence = "The minister opened the new bridge over the river today."
    task = EvalTask("T", "x", {"type": "STS"}, {}, 1, instructed_texts=[sentence])
    row = {"query": "q", "positive": "Something else entirely.", "negative": "n", "instruction": "i"}
    clean = TrainFile("f", "x", [row])
    assert check_disjoint([task], [clean]) == 3
    leaked = f"Earlier news. {sentence} More text."
    bad = TrainFile("f", "x", [{"query": "q", "positive": "p", "negative": leaked, "instruction": "i"}])
    with pytest.raises(DataOverlapError, match="minister opened"):
        check_disjoint([task], [bad])


def test_an_overlap_left_in_training_stops_the_build(
    sources: SuiteSources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = suite.bbc_training

    def leaky(articles, split, overlap, config, seed):  # type: ignore[no-untyped-def]
        files, notes = real(articles, split, overlap, config, seed)
        leaked = articles[split.clustering[0]].body
        files[0].rows.append({"query": "q", "positive": leaked, "negative": "n", "instruction": "i"})
        return files, notes

    monkeypatch.setattr(suite, "bbc_training", leaky)
    with pytest.raises(DataOverlapError):
        _build(tmp_path / "suite", sources)
    assert not (tmp_path / "suite").exists()


def test_skips_a_complete_build_and_rebuilds_when_needed(sources: SuiteSources, tmp_path: Path) -> None:
    messages: list[str] = []
    out = _build(tmp_path / "suite", sources)
    manifest = out / MANIFEST_FILE
    stamp = manifest.stat().st_mtime_ns
    build_suite(out, 0, config=TINY, sources=sources, log=messages.append)
    assert manifest.stat().st_mtime_ns == stamp and "skipping" in messages[-1]

    _build(out, sources, force=True)
    assert manifest.stat().st_mtime_ns != stamp
    stamp = manifest.stat().st_mtime_ns
    _build(out, sources, config=replace(TINY, bbc_clustering_per_label=3))
    assert json.loads(manifest.read_text())["eval"]["SmallBBCClustering"]["scored_items"] == 15

    (out / "eval" / "lee_sts.jsonl").write_text("{}\n", encoding="utf-8")  # damaged: the content hash differs
    assert not is_complete_suite(out)
    _build(out, sources, config=replace(TINY, bbc_clustering_per_label=3))
    assert is_complete_suite(out)


def test_a_wrong_source_checksum_stops_the_build(sources: SuiteSources, tmp_path: Path) -> None:
    wrong = replace(sources, expected_sha256={**sources.expected_sha256, "bbc_wheel": "0" * 64})
    with pytest.raises(AssetChecksumError) as error:
        _build(tmp_path / "suite", wrong)
    assert sources.bbc_wheel.name in str(error.value) and "0" * 64 in str(error.value)
    assert not (tmp_path / "suite").exists()


def test_too_small_tasks_and_sources_are_errors(sources: SuiteSources, tmp_path: Path) -> None:
    with pytest.raises(SuiteDataError, match="min_scored_items=12.*SmallBBCHeadlineRetrieval \\(6\\)"):
        _build(tmp_path / "a", sources, config=replace(TINY, min_scored_items=12))
    with pytest.raises(SuiteDataError, match="class 'business'"):
        _build(tmp_path / "b", sources, config=replace(TINY, bbc_clustering_per_label=20))
    with pytest.raises(SuiteDataError, match="review_pair_movies=40"):
        _build(tmp_path / "c", sources, config=replace(TINY, review_pair_movies=40))


def test_a_newsgroups_split_gives_in_domain_pairs(sources: SuiteSources, tmp_path: Path) -> None:
    out = _build(tmp_path / "suite", sources, config=replace(TINY, newsgroups_clustering_per_label=6))
    manifest = json.loads((out / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["eval"]["SmallNewsgroupsClustering"]["scored_items"] == 12
    assert manifest["eval"]["SmallNewsgroupsClustering"]["domain"] == "in-domain"
    assert manifest["train"]["newsgroups_subject"]["pairs"] > 0


def test_entry_script_reports_a_mismatching_wheel(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import build_suite  # examples/reproduce_small/build_suite.py (its folder is on sys.path)

    fake = write_suite_sources(tmp_path / "sources")  # fake wheels under the real file names
    code = build_suite.main(["--output-dir", str(tmp_path / "suite"), "--assets-dir", str(fake.bbc_wheel.parent)])
    assert code == 1
    error = capsys.readouterr().err
    assert fake.bbc_wheel.name in error and "does not match the pinned" in error
    assert not (tmp_path / "suite").exists()


def test_the_anchor_probe_pairs_are_the_held_out_headline_pairs_in_training_format(
        sources: SuiteSources, tmp_path: Path) -> None:
    from llm2vec.tokenization import SEPARATOR
    from repro_small.probe import probe_pairs

    out = _build(tmp_path / "suite", sources)
    queries, documents = probe_pairs(out)
    folder = out / "eval" / "bbc_headline_retrieval"
    qrels = _jsonl(folder / "qrels.jsonl")
    assert len(queries) == len(documents) == len(qrels) > 0
    headline = {row["id"]: row["text"] for row in _jsonl(folder / "queries.jsonl")}[qrels[0]["query-id"]]
    article = {row["id"]: row["text"] for row in _jsonl(folder / "corpus.jsonl")}[qrels[0]["corpus-id"]]
    instruction = _jsonl(out / "train" / "bbc_headline.jsonl")[0]["instruction"]
    assert queries[0] == f"{instruction}; {SEPARATOR}{headline}"
    assert documents[0] == SEPARATOR + article
    training = {SEPARATOR + row["positive"] for row in _jsonl(out / "train" / "bbc_headline.jsonl")}
    assert not training & set(documents)  # held out
