"""The Stage I benchmark's written-out release computation and the memory model it checks."""

from __future__ import annotations

import sys

import pytest
import torch

from tests.helpers import REPO, load_script


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        yield load_script(REPO / "benchmarks" / "bench_stage_I.py")
    finally:
        sys.path.remove(str(REPO / "benchmarks"))


@pytest.fixture(scope="module")
def estimate():
    return load_script(REPO / "scripts" / "estimate_memory.py")


def test_release_reference_is_our_loss_without_padding(bench) -> None:
    """Without padding the release's computation and ours are the same function (float32)."""
    causal_lm, tokenizer = bench.build_model(torch.float32)
    q, d = bench.make_batch([12, 12], tokenizer.bos_token_id, tokenizer.eos_token_id, seed=3), bench.make_batch(
        [30, 30], tokenizer.bos_token_id, tokenizer.eos_token_id, seed=4
    )
    with torch.no_grad():
        released = float(bench.released_loss(causal_lm, q, d, tokenizer.eos_token_id))
        ours = float(bench.ours_model(causal_lm, tokenizer, bench.VARIANTS["ours"])(q, d).loss)
    assert released == pytest.approx(ours, abs=1e-5)
    assert 11.0 < released < 12.5  # about ln(128,256) = 11.76 for a random model


def test_checkpointing_variants_run_the_body_forward_twice(bench) -> None:
    q, d = bench.spaced(18, 55, 8), bench.spaced(140, 512, 8)
    useful = bench.useful_flops(q, d)
    body_forward = (useful["encoder"] + useful["decoder"]) / 3
    extra = bench.executed_flops("ours_ckpt", q, d) - bench.executed_flops("ours", q, d)
    assert extra == pytest.approx(body_forward, rel=1e-9)


def test_memory_model_follows_the_library_and_the_release(estimate) -> None:
    from llm2vec.loss.fused_cross_entropy import DEFAULT_ROW_BLOCK, WEIGHT_GRADIENT_SLICE

    assert estimate.FUSED_ROW_BLOCK == DEFAULT_ROW_BLOCK
    assert estimate.WEIGHT_GRADIENT_SLICE == WEIGHT_GRADIENT_SLICE
    model = estimate.MODELS[0]
    queries, documents = [20, 40], [100, 300]
    release = estimate.one_process_step(model, queries, documents, release=True)
    # D2Q's logits and log-softmax, then Q2D's logits, shifted copy and log-softmax, all bf16.
    assert release["cross_entropy"] == (2 * 2 * 41 + 3 * 2 * 301) * model.vocab * 2
    ours = estimate.one_process_step(model, queries, documents, release=False, chunk=256)
    assert ours["checkpoints"] == model.layers * 2 * 460 * model.hidden * 2
    assert ours["gradients"] == release["gradients"] == 2 * model.parameters
    # The fused cross-entropy's weight gradient costs memory of its own (float32 accumulation over
    # chunks), so tiny batches need more than the release; the configs' 32 pairs of 512 far less.
    one_chunk = estimate.one_process_step(model, queries, documents, release=False, chunk=None)
    assert ours["cross_entropy"] - one_chunk["cross_entropy"] > 4 * model.vocab * model.hidden
    full = [512] * 32
    assert 2 * estimate.one_process_step(model, full, full, release=False)["total"] < estimate.one_process_step(
        model, full, full, release=True
    )["total"]
