"""Tests of ``anchor_demo.demo_data`` on small fake corpora shaped like gensim's test data files.

Nothing here reads gensim's own files: each test writes a Lee-like background corpus, a Lee-like
evaluation corpus with its similarity matrix (Latin-1, as ``lee.cor``), a polarity file (cp1252,
as ``pang_lee_polarity.cor``) and a zlib-compressed pickle of a scikit-learn-like ``Bunch`` of
newsgroup posts (as ``mini_newsgroup``) into ``tmp_path``.
"""

from __future__ import annotations

import json
import pickle
import random
import sys
import types
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from anchor_demo import demo_data
from anchor_demo.demo_data import (
    MANIFEST_FILE,
    DataOverlapError,
    DemoDataConfig,
    DemoDataError,
    DemoSources,
    build_demo_data,
    check_no_overlap,
    is_complete_build,
    read_newsgroups,
    read_polarity,
    read_similarity_matrix,
    split_sentences,
    truncate_words,
)

WORDS = (
    "river mountain council budget police minister farmer election storm harbour school hospital "
    "airline cricket bushfire drought train court union senator market factory village border "
    "festival museum research vaccine satellite rocket coast island bridge highway refugee soldier "
    "tourist teacher student doctor nurse engineer pilot driver judge lawyer reporter scientist "
    "winter summer morning evening yesterday today announced reported warned agreed rejected "
    "increased reduced opened closed travelled protested celebrated investigated approved"
).split()

SMALL = DemoDataConfig(
    seed=0,
    retrieval_queries=8,
    sentence_pair_files=2,
    max_query_words=30,
    max_doc_words=40,
    negative_pool=3,
    sts_max_pairs=None,
    polarity_train_per_label=3,
    classification_samples_per_label=2,
    classification_experiments=2,
    clustering_per_label=4,
    min_post_words=5,
)


def _sentence(rng: random.Random, tag: str) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 13))]
    words.insert(rng.randrange(len(words)), tag)
    return " ".join(words).capitalize() + "."


def _doc(rng: random.Random, tag: str, n_sentences: int) -> str:
    return " ".join(_sentence(rng, f"{tag}w{k}") for k in range(n_sentences))


class Bunch(dict):
    """Stands in for scikit-learn's ``Bunch`` (pickled under sklearn's module name)."""


def write_fake_sources(folder: Path, n_background: int = 30, n_eval: int = 6, n_posts: int = 10) -> DemoSources:
    rng = random.Random(7)
    folder.mkdir(parents=True, exist_ok=True)

    background = [_doc(rng, f"bg{i}", rng.randint(4, 6)) for i in range(n_background)]
    background.append(background[3])  # an exact duplicate
    near = split_sentences(background[5])
    background.append(" ".join([_sentence(rng, "nearA"), near[1], _sentence(rng, "nearB")]))  # shares a sentence
    (folder / "lee_background.cor").write_text("\n".join(background) + "\n", encoding="utf-8")

    lee = [_doc(rng, f"ev{i}", 3) for i in range(n_eval)]
    lee[0] = lee[0].replace(".", " costing £3,000.", 1)
    (folder / "lee.cor").write_bytes("\n".join(lee).encode("latin-1"))  # no final newline, as lee.cor

    matrix = [[0.0] * n_eval for _ in range(n_eval)]
    for i in range(n_eval):
        for j in range(i, n_eval):
            matrix[i][j] = 1.0 if i == j else round(rng.uniform(0.2, 0.9), 2)
    (folder / "similarities0-1.txt").write_text(
        "\n".join("\t".join(f"{v:g}" for v in row) for row in matrix) + "\n", encoding="utf-8"
    )

    polarity = [f"__label__{label} {'an awful' if label == 'neg' else 'a lovely'} film number {k} \x97 scene {k} ."
                for k in range(6) for label in ("neg", "pos")]
    (folder / "pang_lee_polarity.cor").write_bytes(("\n".join(polarity) + "\n").encode("latin-1"))

    data, target = [], []
    for k in range(n_posts):
        for group in (0, 1):
            topic = ("god faith bible church belief" if group == 0 else "orbit shuttle launch nasa moon").split()
            body = " ".join(rng.choice(topic + WORDS[:10]) for _ in range(25))
            data.append(
                f"From: user{k}@example.org\nSubject: Re: thread {k} of group {group}\nLines: 9\n\n"
                f"In article <{k}@x> someone@example.org writes:\n> quoted words that must vanish {k}\n"
                f"{body.capitalize()}.\nSecond line of post {k} {group}.\n-- \nsignature {k} that must vanish\n"
            )
            target.append(group)
    bunch = Bunch(data=data, target=np.array(target), target_names=["alt.atheism", "sci.space"], DESCR=None)
    module = types.ModuleType("sklearn.datasets.base")
    module.Bunch = Bunch
    saved = (Bunch.__module__, sys.modules.get("sklearn.datasets.base"))
    Bunch.__module__ = "sklearn.datasets.base"
    sys.modules["sklearn.datasets.base"] = module
    try:
        payload = pickle.dumps(bunch, protocol=2)
    finally:
        Bunch.__module__ = saved[0]
        if saved[1] is None:
            del sys.modules["sklearn.datasets.base"]
        else:
            sys.modules["sklearn.datasets.base"] = saved[1]
    (folder / "mini_newsgroup").write_bytes(zlib.compress(payload))
    return demo_data.default_sources(folder)


@pytest.fixture
def sources(tmp_path: Path) -> DemoSources:
    return write_fake_sources(tmp_path / "test_data")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _all_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _training_texts(out: Path) -> list[str]:
    return [row[k] for path in sorted((out / "train").glob("*.jsonl")) for row in _jsonl(path) for k in ("query", "positive", "negative")]


def _eval_texts(out: Path) -> list[str]:
    ev = out / "eval"
    texts = [r[k] for r in _jsonl(ev / "lee_sts.jsonl") for k in ("sentence1", "sentence2")]
    texts += [r["text"] for name in ("train", "test") for r in _jsonl(ev / "movie_polarity" / f"{name}.jsonl")]
    texts += [r["text"] for r in _jsonl(ev / "newsgroups_clustering.jsonl")]
    texts += [r["text"] for name in ("queries", "corpus") for r in _jsonl(ev / "lee_retrieval" / f"{name}.jsonl")]
    return texts


# --------------------------------------------------------------------------- the build
def test_build_writes_expected_files(sources: DemoSources, tmp_path: Path) -> None:
    out = build_demo_data(tmp_path / "data", sources=sources, config=SMALL, log=None)
    assert is_complete_build(out)
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".data.")]  # no temp folder left
    manifest = json.loads((out / MANIFEST_FILE).read_text())

    train_files = sorted(p.stem for p in (out / "train").glob("*.jsonl"))
    assert train_files == ["lee_news_lead", "lee_news_sentence_1", "lee_news_sentence_2", "newsgroups_subject"]
    for name in train_files:
        rows = _jsonl(out / "train" / f"{name}.jsonl")
        assert len(rows) == manifest["train"][name] > 0
        for row in rows:
            assert list(row) == ["query", "positive", "negative", "instruction"]
            assert all(isinstance(v, str) and v.strip() for v in row.values())
            assert row["positive"] != row["negative"]
            assert len(row["positive"].split()) <= SMALL.max_doc_words
            assert len(row["query"].split()) <= SMALL.max_query_words
    assert manifest["train_pairs"] == sum(manifest["train"].values())

    # 30 distinct background articles + 1 duplicate + 1 near-duplicate of article 5:
    # 8 held out for retrieval, 22 left for training (the near-duplicate group gives one article)
    notes = manifest["notes"]["lee_background"]
    assert notes == {"articles": 32, "duplicates_dropped": 1, "near_duplicate_groups": 1, "near_duplicates_dropped": 1}
    assert manifest["train"]["lee_news_lead"] == 30 - SMALL.retrieval_queries
    for k in (1, 2):  # at most one pair per article per file
        queries = _jsonl(out / "train" / f"lee_news_sentence_{k}.jsonl")
        assert len(queries) <= manifest["train"]["lee_news_lead"]

    ev = out / "eval"
    assert sorted(p.name for p in ev.glob("*.json")) == sorted(f"{t}.json" for t in demo_data.EVAL_TASKS)
    sts = _jsonl(ev / "lee_sts.jsonl")
    assert len(sts) == 15  # all pairs of 6 documents
    assert all(set(r) == {"sentence1", "sentence2", "score"} and 0 <= r["score"] <= 1 for r in sts)
    assert any("£3,000" in r["sentence1"] for r in sts)  # Latin-1 decoded
    train = _jsonl(ev / "movie_polarity" / "train.jsonl")
    test = _jsonl(ev / "movie_polarity" / "test.jsonl")
    assert len(train) == 6 and len(test) == 6
    assert sorted(r["label"] for r in train) == ["negative"] * 3 + ["positive"] * 3
    assert any("\u2014" in r["text"] for r in train + test)  # cp1252 em dash decoded
    clustering = _jsonl(ev / "newsgroups_clustering.jsonl")
    assert len(clustering) == 8 and sorted({r["label"] for r in clustering}) == ["alt.atheism", "sci.space"]
    assert not any("vanish" in r["text"] for r in clustering)  # quotes and signatures removed
    queries = _jsonl(ev / "lee_retrieval" / "queries.jsonl")
    corpus = _jsonl(ev / "lee_retrieval" / "corpus.jsonl")
    qrels = _jsonl(ev / "lee_retrieval" / "qrels.jsonl")
    assert len(queries) == len(corpus) == len(qrels) == SMALL.retrieval_queries
    assert {q["query-id"] for q in qrels} == {q["id"] for q in queries}
    assert {q["corpus-id"] for q in qrels} == {d["id"] for d in corpus}

    specs = {p.stem: json.loads(p.read_text()) for p in ev.glob("*.json")}
    assert specs["DemoLeeSTS"]["type"] == "STS" and specs["DemoLeeSTS"]["path"] == "lee_sts.jsonl"
    assert specs["DemoMovieReviewPolarity"]["samples_per_label"] == 2
    assert specs["DemoNewsgroupsClustering"]["type"] == "Clustering"
    assert specs["DemoLeeNewsRetrieval"]["type"] == "Retrieval"
    allowed = {"name", "type", "path", "instruction", "main_score", "description", "eval_split", "languages",
               "min_score", "max_score", "samples_per_label", "n_experiments"}
    for spec in specs.values():
        assert set(spec) <= allowed
        assert spec["instruction"].endswith(":")


def test_training_data_loads_with_jsonl_dataset(sources: DemoSources, tmp_path: Path) -> None:
    from llm2vec.dataset.loading import load_train_dataset

    out = build_demo_data(tmp_path / "data", sources=sources, config=SMALL, log=None)
    dataset = load_train_dataset("jsonl", out / "train", per_device_batch_size=2, world_size=1, seed=0, require_negatives=True)
    assert len(dataset) > 0
    sample = dataset[0]
    assert sample.negative and "; " in sample.query  # the line's instruction was applied
    subset = load_train_dataset("jsonl", out / "train", per_device_batch_size=2, world_size=1, seed=0, files=["lee_news_lead"])
    assert {subset[i].task for i in range(len(subset))} == {"lee_news_lead"}


def test_eval_specs_load_with_local_tasks(sources: DemoSources, tmp_path: Path) -> None:
    pytest.importorskip("mteb")
    from llm2vec.evaluation.local_tasks import load_local_task_specs, make_local_task

    out = build_demo_data(tmp_path / "data", sources=sources, config=SMALL, log=None)
    specs = load_local_task_specs(out / "eval")
    assert sorted(s.name for s in specs) == sorted(demo_data.EVAL_TASKS)
    for spec in specs:
        task = make_local_task(spec)
        task.load_data()
        assert task.data_loaded


def test_no_overlap_between_training_and_evaluation(sources: DemoSources, tmp_path: Path) -> None:
    out = build_demo_data(tmp_path / "data", sources=sources, config=SMALL, log=None)
    train_texts, eval_texts = _training_texts(out), _eval_texts(out)
    check_no_overlap(train_texts, eval_texts)
    joined = "\n".join(t.lower() for t in train_texts)
    for text in eval_texts:
        assert text.lower() not in joined
    # held-out articles: neither their first sentence nor any of their sentences is in training
    for row in _jsonl(out / "eval" / "lee_retrieval" / "queries.jsonl"):
        assert row["text"].lower() not in joined


def test_eval_text_in_background_is_kept_out_of_training(tmp_path: Path) -> None:
    folder = tmp_path / "test_data"
    sources = write_fake_sources(folder)
    lee = (folder / "lee.cor").read_bytes().decode("latin-1").split("\n")
    with open(folder / "lee_background.cor", "a", encoding="latin-1") as handle:
        handle.write(lee[2] + "\n")  # an evaluation article leaks into the background corpus
    out = build_demo_data(tmp_path / "data", sources=sources, config=SMALL, log=None)
    joined = "\n".join(t.lower() for t in _training_texts(out))
    assert lee[2].lower() not in joined
    assert split_sentences(lee[2])[1].lower() not in joined
    check_no_overlap(_training_texts(out), _eval_texts(out))


def test_check_no_overlap_detects_leaks() -> None:
    long_sentence = "The council approved the new bridge over the river yesterday morning."
    eval_texts = [f"Opening words here. {long_sentence} Closing words.", "short one"]
    check_no_overlap(["Something entirely different about cricket and rain."], eval_texts)
    with pytest.raises(DataOverlapError, match="overlap"):
        check_no_overlap([eval_texts[0].upper()], eval_texts)  # same text, other case
    with pytest.raises(DataOverlapError):
        check_no_overlap([f"Other start. {long_sentence} Other end."], eval_texts)  # shared long sentence
    with pytest.raises(DataOverlapError):
        check_no_overlap([f"prefix {eval_texts[0]} suffix"], eval_texts)  # contains the evaluation text
    with pytest.raises(DataOverlapError):
        check_no_overlap(["Short  One"], eval_texts)  # a short text only matches exactly
    check_no_overlap(["this short one is part of a longer text"], eval_texts)


def test_build_fails_when_overlap_slips_through(sources: DemoSources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    class Blind(demo_data._OverlapIndex):
        def find(self, text: str) -> None:  # the pre-filter sees nothing ...
            return None

    original_split, original_training = demo_data._split_background, demo_data._lee_training

    def leaky_split(docs, config, path):  # ... and a held-out article goes to training as well
        held_out, train, counts = original_split(docs, config, path)
        return held_out, train + held_out[:1], counts

    def blind_training(docs, train_ids, overlap, config, build):
        return original_training(docs, train_ids, Blind([]), config, build)

    monkeypatch.setattr(demo_data, "_split_background", leaky_split)
    monkeypatch.setattr(demo_data, "_lee_training", blind_training)
    with pytest.raises(DataOverlapError):
        build_demo_data(tmp_path / "data", sources=sources, config=SMALL, log=None)
    assert not (tmp_path / "data").exists()


# --------------------------------------------------------------------------- determinism, skip, atomic
def test_deterministic(sources: DemoSources, tmp_path: Path) -> None:
    first = _all_files(build_demo_data(tmp_path / "a", sources=sources, config=SMALL, log=None))
    second = _all_files(build_demo_data(tmp_path / "b", sources=sources, config=SMALL, log=None))
    strip = lambda files: {k: v for k, v in files.items() if k != MANIFEST_FILE}  # noqa: E731
    assert strip(first) == strip(second)
    manifest_a = json.loads(first[MANIFEST_FILE])
    manifest_b = json.loads(second[MANIFEST_FILE])
    manifest_a.pop("usage"), manifest_b.pop("usage")  # names the output folder
    assert manifest_a == manifest_b
    other = _all_files(build_demo_data(tmp_path / "c", sources=sources, config=replace(SMALL, seed=1), log=None))
    assert other["train/lee_news_lead.jsonl"] != first["train/lee_news_lead.jsonl"]


def test_skip_force_and_rebuild_on_new_settings(sources: DemoSources, tmp_path: Path) -> None:
    out = tmp_path / "data"
    build_demo_data(out, sources=sources, config=SMALL, log=None)
    marker = out / MANIFEST_FILE
    stamp = marker.stat().st_mtime_ns

    messages: list[str] = []
    build_demo_data(out, sources=sources, config=SMALL, log=messages.append)
    assert any("skipping" in m for m in messages) and marker.stat().st_mtime_ns == stamp

    messages.clear()
    build_demo_data(out, sources=sources, config=SMALL, force=True, log=messages.append)
    assert not any("skipping" in m for m in messages) and marker.stat().st_mtime_ns != stamp

    messages.clear()
    build_demo_data(out, sources=sources, config=replace(SMALL, retrieval_queries=6), log=messages.append)
    assert any("other settings" in m for m in messages)
    assert len(_jsonl(out / "eval" / "lee_retrieval" / "queries.jsonl")) == 6


def test_incomplete_folder_is_rebuilt(sources: DemoSources, tmp_path: Path) -> None:
    out = tmp_path / "data"
    (out / "train").mkdir(parents=True)
    (out / "train" / "stale.jsonl").write_text("{}\n")
    messages: list[str] = []
    build_demo_data(out, sources=sources, config=SMALL, log=messages.append)
    assert any("incomplete" in m for m in messages)
    assert not (out / "train" / "stale.jsonl").exists() and is_complete_build(out)
    (out / "eval" / "lee_sts.jsonl").unlink()  # a listed file missing: not complete any more
    assert not is_complete_build(out)


def test_interrupted_write_leaves_previous_build(sources: DemoSources, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "data"
    fresh = tmp_path / "fresh"
    build_demo_data(out, sources=sources, config=SMALL, log=None)
    before = _all_files(out)
    original = demo_data._write_json

    def failing(path: Path, data) -> None:
        if path.name == MANIFEST_FILE:
            raise KeyboardInterrupt
        original(path, data)

    monkeypatch.setattr(demo_data, "_write_json", failing)
    with pytest.raises(KeyboardInterrupt):
        build_demo_data(out, sources=sources, config=SMALL, force=True, log=None)
    with pytest.raises(KeyboardInterrupt):
        build_demo_data(fresh, sources=sources, config=SMALL, log=None)
    assert _all_files(out) == before
    assert not fresh.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "test_data"]


def test_progress_messages(sources: DemoSources, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    build_demo_data(tmp_path / "data", sources=sources, config=SMALL)
    out = capsys.readouterr().out
    assert "[demo-data] reading" in out and "[demo-data] wrote train/lee_news_lead.jsonl" in out
    assert "[demo-data] done in" in out


# --------------------------------------------------------------------------- sources and errors
@pytest.mark.parametrize("name", ["lee_background.cor", "lee.cor", "similarities0-1.txt", "pang_lee_polarity.cor", "mini_newsgroup"])
def test_missing_source_file_is_named(sources: DemoSources, tmp_path: Path, name: str) -> None:
    (tmp_path / "test_data" / name).unlink()
    with pytest.raises(FileNotFoundError, match=name.replace(".", r"\.")):
        build_demo_data(tmp_path / "data", sources=sources, config=SMALL, log=None)
    assert not (tmp_path / "data").exists()


def test_optional_sources_can_be_left_out(sources: DemoSources, tmp_path: Path) -> None:
    out = build_demo_data(
        tmp_path / "data", sources=replace(sources, polarity=None, newsgroups=None), config=SMALL, log=None
    )
    assert sorted(p.stem for p in (out / "eval").glob("*.json")) == ["DemoLeeNewsRetrieval", "DemoLeeSTS"]
    assert not (out / "train" / "newsgroups_subject.jsonl").exists()
    assert "lee_news_lead" in json.loads((out / MANIFEST_FILE).read_text())["train"]


def test_sources_too_small_for_the_settings(sources: DemoSources, tmp_path: Path) -> None:
    with pytest.raises(DemoDataError, match="retrieval_queries=100"):
        build_demo_data(tmp_path / "data", sources=sources, config=replace(SMALL, retrieval_queries=100), log=None)
    with pytest.raises(DemoDataError, match="clustering_per_label=50"):
        build_demo_data(tmp_path / "data", sources=sources, config=replace(SMALL, clustering_per_label=50), log=None)
    with pytest.raises(DemoDataError, match="polarity_train_per_label=6"):
        build_demo_data(tmp_path / "data", sources=sources, config=replace(SMALL, polarity_train_per_label=6), log=None)


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="retrieval_queries"):
        DemoDataConfig(retrieval_queries=0)
    DemoDataConfig(sentence_pair_files=0, sts_max_pairs=None)


def test_default_sources_point_into_gensim_test_data(tmp_path: Path) -> None:
    sources = demo_data.default_sources(tmp_path)
    assert [path.name for _, path in sources.items()] == [
        "lee_background.cor", "lee.cor", "similarities0-1.txt", "pang_lee_polarity.cor", "mini_newsgroup"
    ]


def test_gensim_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gensim" else real(name, *a))
    with pytest.raises(FileNotFoundError, match="pip install gensim"):
        demo_data.gensim_test_data_dir()


# --------------------------------------------------------------------------- readers and text helpers
def test_read_newsgroups_cleans_posts(sources: DemoSources) -> None:
    posts = read_newsgroups(sources.newsgroups)
    assert len(posts) == 20
    assert {p.label for p in posts} == {"alt.atheism", "sci.space"}
    first = posts[0]
    assert first.subject == "thread 0 of group 0"  # "Re:" removed
    assert "quoted" not in first.text and "signature" not in first.text and "writes" not in first.text
    assert first.text.endswith("Second line of post 0 0.")


def test_read_newsgroups_refuses_foreign_pickles(tmp_path: Path) -> None:
    path = tmp_path / "mini_newsgroup"
    path.write_bytes(zlib.compress(pickle.dumps({"data": [], "f": random.Random}, protocol=2)))
    with pytest.raises(DemoDataError, match="refusing to unpickle"):
        read_newsgroups(path)
    path.write_bytes(b"not zlib")
    with pytest.raises(DemoDataError, match="zlib"):
        read_newsgroups(path)


def test_read_similarity_matrix_checks_shape(tmp_path: Path) -> None:
    path = tmp_path / "sim.txt"
    path.write_text("1 0.5\n0 1\n")
    assert read_similarity_matrix(path, 2) == [[1.0, 0.5], [0.0, 1.0]]
    with pytest.raises(DemoDataError, match="3 x 3"):
        read_similarity_matrix(path, 3)
    path.write_text("1 x\n0 1\n")
    with pytest.raises(DemoDataError, match="numeric"):
        read_similarity_matrix(path, 2)


def test_read_polarity(tmp_path: Path) -> None:
    path = tmp_path / "pol.cor"
    path.write_text("__label__neg bad  film .\n\n__label__pos good film .\n")
    assert read_polarity(path) == [("bad film .", "negative"), ("good film .", "positive")]
    path.write_text("no label here\n")
    with pytest.raises(DemoDataError, match=r"pol\.cor:1"):
        read_polarity(path)


def test_split_sentences() -> None:
    text = 'Mr. Smith met Dr. Jones in the U.S. yesterday. "It went well," he said. Then 12 people left! Why? No idea.'
    assert split_sentences(text) == [
        "Mr. Smith met Dr. Jones in the U.S. yesterday.",
        '"It went well," he said.',
        "Then 12 people left!",
        "Why?",
        "No idea.",
    ]
    assert split_sentences("  one sentence without end ") == ["one sentence without end"]


def test_truncate_words() -> None:
    text = "One two three four five. Six seven eight nine ten. Eleven twelve."
    assert truncate_words(text, 20) == text
    assert truncate_words(text, 11) == "One two three four five. Six seven eight nine ten."
    assert truncate_words("a b c d e f g h i j", 4) == "a b c d"  # no sentence end: hard cut
    assert truncate_words("Short. " + "word " * 30, 10) == "Short. word word word word word word word word word"
