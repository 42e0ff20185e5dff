"""Shared fixtures: tiny offline checkpoints of every model family and a tiny E5 data folder.

The Hugging Face hub is switched off for the whole test session (set before transformers is
imported by any test), so a test that would need the network fails instead of downloading.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402
import torch  # noqa: E402

from llm2vec.testing.tiny_data import write_tiny_pairs_dir  # noqa: E402
from llm2vec.testing.tiny_models import FAMILIES, save_tiny_checkpoint  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "slow: end-to-end runs of entry points or scripts in subprocesses, torchrun (deselect with -m 'not slow')",
    )


@pytest.fixture(scope="session")
def tiny_checkpoint_dir(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Factory ``family -> Path`` of a saved tiny checkpoint (seed 0), built once per session.

    The folders are shared by all tests: do not write into them (save to ``tmp_path`` instead).
    """
    root = tmp_path_factory.mktemp("tiny_models")
    built: dict[str, Path] = {}

    def get(family: str) -> Path:
        if family not in FAMILIES:
            raise ValueError(f"unknown tiny model family {family!r}; expected one of {FAMILIES}")
        if family not in built:
            built[family] = save_tiny_checkpoint(family, root / family, seed=0)
        return built[family]

    return get


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_checkpoint_dir: Callable[[str], Path]) -> Path:
    """Tiny Llama-3-Instruct-like checkpoint (BOS prepended, eos ``<|eot_id|>``, no pad)."""
    return tiny_checkpoint_dir("llama3")


@pytest.fixture(scope="session")
def tiny_qwen_dir(tiny_checkpoint_dir: Callable[[str], Path]) -> Path:
    """Tiny Qwen2.5-Instruct-like checkpoint (no BOS, eos ``<|im_end|>``, pad ``<|endoftext|>``)."""
    return tiny_checkpoint_dir("qwen2")


@pytest.fixture(scope="session")
def tiny_mistral_dir(tiny_checkpoint_dir: Callable[[str], Path]) -> Path:
    """Tiny Mistral-7B-v0.1-like checkpoint (``<s>`` prepended, eos ``</s>``, no pad)."""
    return tiny_checkpoint_dir("mistral")


@pytest.fixture(scope="session")
def tiny_chatml_dir(tiny_checkpoint_dir: Callable[[str], Path]) -> Path:
    """Tiny SmolLM2-Instruct-like checkpoint (Llama model, ChatML tokens, no BOS added)."""
    return tiny_checkpoint_dir("chatml")


@pytest.fixture(scope="session")
def tiny_checkpoints(tiny_checkpoint_dir: Callable[[str], Path]) -> dict[str, Path]:
    """All tiny checkpoints: ``{"llama3": ..., "qwen2": ..., "mistral": ..., "chatml": ...}``."""
    return {family: tiny_checkpoint_dir(family) for family in FAMILIES}


@pytest.fixture(scope="session", params=FAMILIES)
def tiny_family_dir(request: pytest.FixtureRequest, tiny_checkpoint_dir: Callable[[str], Path]) -> tuple[str, Path]:
    """Parametrized over every family: ``(family, checkpoint_dir)``."""
    return request.param, tiny_checkpoint_dir(request.param)


@pytest.fixture(scope="session")
def tiny_data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """E5-format folder (allnli, nq, quora_duplicates, squad; 64 lines each, with negatives)."""
    return write_tiny_pairs_dir(tmp_path_factory.mktemp("tiny_data") / "e5", seed=0)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module: tiny matrices gain nothing from threads, and spinning threads
    are very slow on a busy machine. Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
