"""experiments/run_supervised.py (llm2vec's supervised recipe) end to end on a tiny MNTP chain:
llm2vec's defaults apply, the loss falls, and the result reloads with llm2vec's call."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llm2vec import LLM2Vec
from llm2vec.model_config import CONFIG_NAME
from tests.helpers import TINY_STAGE_II_CONFIG, logged_steps, run_entry_point
from tests.llm2vec_checkpoints import write_mntp_repo

TEXTS = [["Retrieve a passage:", "how do whales sleep"], "Whales rest one half of the brain at a time.",
         "The stock market fell sharply on Monday."]
STEPS = 20


@pytest.fixture(scope="module")
def supervised_run(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path, tiny_data_dir: Path) -> dict:
    root = tmp_path_factory.mktemp("supervised")
    mntp = write_mntp_repo(tiny_llama_dir, root / "mntp", name_or_path="meta-llama/Meta-Llama-3-8B-Instruct", seed=5)
    # the tiny Stage II config without the keys whose llm2vec defaults are under test
    config = {k: v for k, v in json.loads(TINY_STAGE_II_CONFIG.read_text()).items() if k not in ("pooling_mode", "lora_r")}
    config_path = root / "supervised_tiny.json"
    config_path.write_text(json.dumps(config))
    output = root / "out"
    run_entry_point(
        "run_supervised.py", config_path,
        "--model_name_or_path", str(tiny_llama_dir), "--peft_model_name_or_path", str(mntp),
        "--bidirectional", "true", "--dataset_file_path", str(tiny_data_dir), "--output_dir", str(output),
        "--stop_after_n_steps", str(STEPS), "--save_steps", str(STEPS), "--save_merged_model", "true",
        "--disable_tqdm", "true",
    )
    return {"base": tiny_llama_dir, "mntp": mntp, "output": output}


@pytest.mark.slow
def test_llm2vecs_defaults_apply_and_the_loss_falls(supervised_run: dict) -> None:
    output = supervised_run["output"]
    stored = json.loads((output / CONFIG_NAME).read_text())
    assert (stored["pooling_mode"], stored["enable_bidirectional"], stored["tokenization"]) == ("mean", True, "llm2vec")
    assert json.loads((output / "adapter_config.json").read_text())["r"] == 8  # llm2vec's lora_r default
    losses = [entry["loss"] for _, entry in sorted(logged_steps(output / f"checkpoint-{STEPS}" / "trainer_state.json").items())
              if "loss" in entry]
    assert losses[-1] < 0.8 * losses[0], losses


@pytest.mark.slow
def test_the_result_reloads_with_llm2vecs_call(supervised_run: dict) -> None:
    base, mntp, output = supervised_run["base"], supervised_run["mntp"], supervised_run["output"]
    with torch.no_grad():
        chain = LLM2Vec.from_pretrained(mntp, peft_model_name_or_path=output).encode(TEXTS, show_progress_bar=False)
        explicit = LLM2Vec.from_pretrained(base, peft_model_name_or_path=[str(mntp), str(output)]).encode(
            TEXTS, show_progress_bar=False)
        # written from the weights in memory at the end of training, with the model's name kept
        merged = LLM2Vec.from_pretrained(output / "merged").encode(TEXTS, show_progress_bar=False)
        mntp_only = LLM2Vec.from_pretrained(mntp).encode(TEXTS, show_progress_bar=False)
    torch.testing.assert_close(explicit, chain, rtol=0, atol=1e-5)
    torch.testing.assert_close(merged, chain, rtol=0, atol=1e-5)
    assert (chain - mntp_only).abs().max() > 1e-2, "training must have changed the embeddings"
