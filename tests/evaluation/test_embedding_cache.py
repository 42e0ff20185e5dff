"""The embedding cache: lossless round trips, other writers' chunks, damaged chunks, and an encoder
that reads what it has and writes what it computes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from llm2vec import LLM2Vec
from llm2vec.evaluation.embedding_cache import EmbeddingCache, embedding_fingerprint, folder_report, text_key
from llm2vec.evaluation.mteb_encoder import LLM2VecMTEBEncoder
from llm2vec.testing.tiny_models import tiny_corpus

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_keys_separate_instruction_and_text() -> None:
    assert text_key("a", "bc") != text_key("ab", "c")
    assert text_key("", "text") != text_key("Query:", "text")
    assert text_key("q", "t") == text_key("q", "t") and len(text_key("q", "t")) == 16


def test_put_get_round_trip_float32_and_bf16(tmp_path) -> None:
    cache = EmbeddingCache(tmp_path / "m", {"weights": "x"})
    rng = np.random.default_rng(0)
    exact = rng.standard_normal((5, 8)).astype(np.float32)
    bf16_values = torch.from_numpy(rng.standard_normal((3, 8)).astype(np.float32)).bfloat16().float().numpy()
    keys_a = [text_key("", f"a{i}") for i in range(5)]
    keys_b = [text_key("", f"b{i}") for i in range(3)]
    path_a = cache.put(keys_a, exact)
    path_b = cache.put(keys_b, bf16_values)
    assert path_a != path_b and path_b.stat().st_size < path_a.stat().st_size  # bf16 stored in half the bytes
    found = cache.get([keys_b[2], text_key("", "absent"), keys_a[1]])
    assert sorted(found) == [0, 2]
    np.testing.assert_array_equal(found[0], bf16_values[2])
    np.testing.assert_array_equal(found[2], exact[1])
    # a new process sees the same
    again = EmbeddingCache(tmp_path / "m")
    assert len(again) == 8
    np.testing.assert_array_equal(again.get(keys_a)[4], exact[4])
    assert "8 embeddings in 2 chunk(s)" in str(again.report())
    assert [r.embeddings for r in folder_report(tmp_path)] == [8]


def test_refresh_sees_chunks_of_another_writer(tmp_path) -> None:
    reader = EmbeddingCache(tmp_path / "m", writer="rank1")
    writer = EmbeddingCache(tmp_path / "m", writer="rank0")
    key = text_key("", "shared")
    writer.put([key], np.ones((1, 4), dtype=np.float32))
    assert key not in reader
    reader.refresh()
    np.testing.assert_array_equal(reader.get([key])[0], np.ones(4))


def test_a_damaged_chunk_is_set_aside_not_trusted(tmp_path, caplog) -> None:
    cache = EmbeddingCache(tmp_path / "m")
    path = cache.put([text_key("", "x")], np.ones((1, 4), dtype=np.float32))
    path.write_bytes(path.read_bytes()[:20])
    reopened = EmbeddingCache(tmp_path / "m")
    assert len(reopened) == 0
    assert path.with_name(path.name + ".corrupt").is_file()
    assert "cannot be read" in caplog.text


def test_fingerprint_ignores_instructions_file_and_paths() -> None:
    parts = {"weights": [{"files": {"model.safetensors": "aa"}}], "dtype": "float32", "instructions": "i1", "sources": ["/a"]}
    same = {**parts, "instructions": "i2", "sources": ["/b"]}
    other = {**parts, "weights": [{"files": {"model.safetensors": "bb"}}]}
    assert embedding_fingerprint(parts) == embedding_fingerprint(same) != embedding_fingerprint(other)


def test_encoder_reads_what_it_has_and_writes_what_it_computes(tmp_path, tiny_llama_dir, monkeypatch) -> None:
    model = LLM2Vec.from_pretrained(tiny_llama_dir, attn_implementation="sdpa")
    texts = tiny_corpus(40, seed=3)
    cache = EmbeddingCache(tmp_path / "m")
    encoder = LLM2VecMTEBEncoder(model, cache=cache, chunk_texts=7, show_progress_bar=False)
    plain = LLM2VecMTEBEncoder(model, show_progress_bar=False).encode_texts(texts, "Find it:")
    first = encoder.encode_texts(texts + texts[:5], "Find it:")  # duplicates embedded once
    np.testing.assert_allclose(first[: len(texts)], plain, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(first[len(texts):], first[:5])
    assert encoder.counts == {"embedded": 40, "cached": 0}
    assert len(list((tmp_path / "m").glob("chunk-*.safetensors"))) == 6  # ceil(40 / 7)

    calls: list[int] = []
    original = model.encode
    monkeypatch.setattr(model, "encode", lambda inputs, **kw: calls.append(len(inputs)) or original(inputs, **kw))
    second = LLM2VecMTEBEncoder(model, cache=EmbeddingCache(tmp_path / "m"), show_progress_bar=False)
    again = second.encode_texts(texts[::-1], "Find it:")
    np.testing.assert_array_equal(again, first[: len(texts)][::-1])
    assert calls == [] and second.counts == {"embedded": 0, "cached": 40}
    # another instruction is another key: embedded, not read
    second.encode_texts(texts[:3], "")
    assert calls == [3]
