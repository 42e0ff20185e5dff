"""LLM2VecMTEBEncoder: instructions for queries and symmetric tasks, none for documents."""

from __future__ import annotations

from pathlib import Path

import mteb
import numpy as np
import pytest
from datasets import Dataset
from mteb._create_dataloaders import create_dataloader
from mteb.models import EncoderProtocol
from mteb.types import PromptType

from llm2vec import LLM2Vec
from llm2vec.evaluation.instructions import MissingInstructionError, format_instruction, load_task_instructions
from llm2vec.evaluation.mteb_encoder import (
    LLM2VecMTEBEncoder,
    batch_texts,
    build_model_meta,
    model_name_from_paths,
)

QUERIES = ["what is a whale and a coral?", "how does the orbit affect the comet?", "recipe?"]
TITLES = ["Ocean", "", "Kitchen notes"]
BODIES = [
    "The whale swims near the coral reef and the tide.",
    "A comet has an orbit around the star, often very long and slow.",
    "Butter and flour.",
]


@pytest.fixture(scope="module")
def model(tiny_llama_dir: Path) -> LLM2Vec:
    return LLM2Vec.from_pretrained(tiny_llama_dir)


@pytest.fixture(scope="module")
def instructions() -> dict[str, str]:
    return load_task_instructions()


@pytest.fixture(scope="module")
def encoder(model: LLM2Vec, instructions: dict[str, str]) -> LLM2VecMTEBEncoder:
    return LLM2VecMTEBEncoder(model, instructions, batch_size=2, show_progress_bar=False)


def encode(encoder, dataset, task_name, prompt_type):
    """Encode ``dataset`` the way mteb does: its dataloader, then ``encoder.encode``."""
    metadata = mteb.get_task(task_name).metadata
    if prompt_type is None:  # symmetric tasks: a plain text column
        loader = create_dataloader(dataset, task_metadata=metadata, input_column="text", batch_size=2)
    else:
        loader = create_dataloader(dataset, task_metadata=metadata, prompt_type=prompt_type, batch_size=2)
    return encoder.encode(loader, task_metadata=metadata, hf_split="test", hf_subset="default", prompt_type=prompt_type)


def reference(model, pairs):
    return model.encode(pairs, batch_size=8, show_progress_bar=False, convert_to_numpy=True)


def test_is_an_mteb_encoder(encoder):
    assert isinstance(encoder, EncoderProtocol)
    assert encoder.mteb_model_meta.name.count("/") == 1
    assert encoder.mteb_model_meta.similarity_fn_name == "cosine"


def test_retrieval_queries_get_the_instruction_and_documents_do_not(encoder, model, instructions):
    instruction = instructions["SciFact"]
    queries = Dataset.from_dict({"id": ["q0", "q1", "q2"], "text": QUERIES})
    corpus = Dataset.from_dict({"id": ["d0", "d1", "d2"], "title": TITLES, "text": BODIES})

    query_embeddings = encode(encoder, queries, "SciFact", PromptType.query)
    doc_embeddings = encode(encoder, corpus, "SciFact", PromptType.document)

    assert query_embeddings.dtype == np.float32 and query_embeddings.shape == (3, 32)
    np.testing.assert_allclose(query_embeddings, reference(model, [[instruction, q] for q in QUERIES]), atol=1e-5)
    # documents: "title text" (as mteb joins them), no instruction
    documents = [f"{t} {b}".strip() for t, b in zip(TITLES, BODIES)]
    np.testing.assert_allclose(doc_embeddings, reference(model, [["", d] for d in documents]), atol=1e-5)
    # the instruction matters: without it the query embeddings differ
    assert not np.allclose(query_embeddings, reference(model, [["", q] for q in QUERIES]), atol=1e-3)


@pytest.mark.parametrize("task_name", ["STS12", "Banking77Classification", "TwentyNewsgroupsClustering"])
def test_symmetric_tasks_get_the_instruction(encoder, model, instructions, task_name):
    texts = BODIES + QUERIES
    embeddings = encode(encoder, Dataset.from_dict({"text": texts}), task_name, None)
    expected = reference(model, [[instructions[task_name], t] for t in texts])
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)


def test_reranking_documents_get_no_instruction(encoder, model, instructions):
    queries = Dataset.from_dict({"id": ["q0"], "text": QUERIES[:1]})
    corpus = Dataset.from_dict({"id": ["d0", "d1"], "text": BODIES[:2]})
    np.testing.assert_allclose(
        encode(encoder, queries, "SciDocsRR", PromptType.query),
        reference(model, [[instructions["SciDocsRR"], QUERIES[0]]]),
        atol=1e-5,
    )
    np.testing.assert_allclose(
        encode(encoder, corpus, "SciDocsRR", PromptType.document), reference(model, [["", b] for b in BODIES[:2]]), atol=1e-5
    )


def test_output_is_in_input_order_whatever_the_batching(encoder, model):
    texts = ["a", "a much longer text about whales and coral reefs and tides", "mid length text", "b c"]
    embeddings = encoder.encode_texts(texts, "Retrieve semantically similar text:", batch_size=3, show_progress_bar=False)
    one_by_one = np.stack(
        [reference(model, [["Retrieve semantically similar text:", t]])[0] for t in texts]
    )
    np.testing.assert_allclose(embeddings, one_by_one, atol=1e-5)
    assert encoder.encode_texts([], "x").shape == (0, 32)


def test_missing_instruction_is_an_error_or_empty(model):
    metadata = mteb.get_task("STS12").metadata
    strict = LLM2VecMTEBEncoder(model, {}, instructions_source="my_instructions.json", show_progress_bar=False)
    with pytest.raises(MissingInstructionError, match=r"my_instructions\.json for task STS12"):
        strict.instruction_for(metadata, None)
    assert strict.instruction_for(metadata, PromptType.document) == ""  # documents never need one
    lenient = LLM2VecMTEBEncoder(model, {}, missing_instruction="empty", show_progress_bar=False)
    loader = create_dataloader(Dataset.from_dict({"text": BODIES}), task_metadata=metadata, input_column="text")
    embeddings = lenient.encode(loader, task_metadata=metadata, hf_split="test", hf_subset="default")
    np.testing.assert_allclose(embeddings, reference(model, [["", b] for b in BODIES]), atol=1e-5)


def test_instructions_are_formatted_with_a_colon():
    assert format_instruction("Retrieve semantically similar text.") == "Retrieve semantically similar text:"
    assert format_instruction("  Given a claim, find documents:  ") == "Given a claim, find documents:"
    assert format_instruction("") == ""


def test_batch_texts_joins_a_title_only_when_mteb_has_not():
    assert batch_texts({"text": ["Ocean The whale.", "b"], "body": ["The whale.", "b"], "title": ["Ocean", ""]}) == [
        "Ocean The whale.",
        "b",
    ]
    assert batch_texts({"text": ["The whale.", "b"], "title": ["Ocean", ""]}) == ["Ocean The whale.", "b"]
    with pytest.raises(ValueError):
        batch_texts({"image": [None]})


def test_model_names_for_results_folders(tmp_path):
    run = tmp_path / "stage_II_llama1b" / "checkpoint-1000"
    run.mkdir(parents=True)
    assert model_name_from_paths("meta-llama/Llama-3.2-1B-Instruct") == "meta-llama/Llama-3.2-1B-Instruct"
    assert model_name_from_paths("meta-llama/Llama-3.2-1B-Instruct", run) == "stage_II_llama1b/checkpoint-1000"
    assert model_name_from_paths(tmp_path / "stage_II_llama1b") == f"{tmp_path.name}/stage_II_llama1b"
    assert model_name_from_paths("base", ["adapter_a", str(run)]) == "stage_II_llama1b/checkpoint-1000"
    meta = build_model_meta("meta-llama/Llama-3.2-1B-Instruct", run)
    assert meta.model_name_as_path() == "stage_II_llama1b__checkpoint-1000"
    assert meta.adapted_from == "meta-llama/Llama-3.2-1B-Instruct"
    assert build_model_meta("x", name="mine").name == "local/mine"
