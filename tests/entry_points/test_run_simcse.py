"""experiments/run_simcse.py (llm2vec's unsupervised SimCSE) end to end on a tiny MNTP chain:
dropout makes the two copies of a sentence differ, the loss falls, and the result reloads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from llm2vec import LLM2Vec
from llm2vec.model_config import CONFIG_NAME
from llm2vec.testing.tiny_models import tiny_corpus
from tests.helpers import TINY_STAGE_II_CONFIG, logged_steps, run_entry_point
from tests.llm2vec_checkpoints import write_mntp_repo

STEPS = 16
#: the tiny Stage II config's run settings; the data, pooling and rank come from run_simcse's defaults
RUN_KEYS = ("model_name_or_path", "max_seq_length", "torch_dtype", "attn_implementation", "output_dir",
            "per_device_train_batch_size", "learning_rate", "warmup_steps", "logging_steps", "seed", "bf16",
            "report_to", "use_cpu", "dataloader_num_workers")


@pytest.fixture(scope="module")
def simcse(tmp_path_factory: pytest.TempPathFactory, tiny_llama_dir: Path):
    root = tmp_path_factory.mktemp("simcse")
    mntp = write_mntp_repo(tiny_llama_dir, root / "mntp", name_or_path="meta-llama/Meta-Llama-3-8B-Instruct", seed=6)
    sentences = root / "wiki1m_tiny.txt"
    sentences.write_text("\n".join(tiny_corpus(400, seed=7)) + "\n", encoding="utf-8")
    config = {k: v for k, v in json.loads(TINY_STAGE_II_CONFIG.read_text()).items() if k in RUN_KEYS}
    config_path = root / "simcse_tiny.json"
    config_path.write_text(json.dumps({**config, "bidirectional": True, "loss_scale": 20.0}))

    def run(name: str, *overrides: str) -> Path:
        output = root / name
        if not output.exists():
            run_entry_point("run_simcse.py", config_path, "--model_name_or_path", str(tiny_llama_dir),
                            "--peft_model_name_or_path", str(mntp), "--dataset_file_path", str(sentences),
                            "--output_dir", str(output), "--stop_after_n_steps", str(STEPS), "--save_steps", str(STEPS),
                            "--logging_steps", "1", "--disable_tqdm", "true", *overrides)
        return output

    return {"run": run, "mntp": mntp}


def _losses(output: Path) -> list[float]:
    steps = logged_steps(output / f"checkpoint-{STEPS}" / "trainer_state.json")
    return [entry["loss"] for _, entry in sorted(steps.items()) if "loss" in entry]


@pytest.mark.slow
def test_simcse_trains_with_llm2vecs_defaults(simcse) -> None:
    output = simcse["run"]("default")
    stored = json.loads((output / CONFIG_NAME).read_text())
    assert (stored["pooling_mode"], stored["tokenization"], stored["enable_bidirectional"]) == ("mean", "llm2vec", True)
    assert json.loads((output / "adapter_config.json").read_text())["r"] == 8
    losses = _losses(output)
    assert sum(losses[-4:]) < 0.8 * sum(losses[:4]), losses
    # without dropout the two copies are the same text: the loss starts elsewhere
    no_dropout = _losses(simcse["run"]("no-dropout", "--simcse_dropout", "0"))
    assert abs(no_dropout[0] - losses[0]) > 1e-3, (no_dropout[0], losses[0])
    texts = ["whales sleep with half of the brain", "the market fell on monday"]
    with torch.no_grad():
        trained = LLM2Vec.from_pretrained(simcse["mntp"], peft_model_name_or_path=output).encode(texts, show_progress_bar=False)
        before = LLM2Vec.from_pretrained(simcse["mntp"]).encode(texts, show_progress_bar=False)
    assert (trained - before).abs().max() > 1e-3, "training must have changed the embeddings"
