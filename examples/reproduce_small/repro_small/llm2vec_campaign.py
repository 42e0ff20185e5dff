"""llm2vec's unsupervised recipe on SmolLM2-135M with real text (part ``llm2vec14``, issue 14).

Does each step of llm2vec improve the embeddings here? The untrained model with llm2vec's
settings (bidirectional attention, mean pooling, llm2vec's tokenization), then MNTP on real
text, then unsupervised SimCSE on top, each scored on the whole proxy suite; the untrained
causal model with EOS and with mean pooling are the references. The training text is every
distinct query and document of the proxy suite's training pairs (BBC, Rotten Tomatoes, gensim's
Lee and newsgroup texts), one per line: the suite keeps them disjoint from its evaluation tasks.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from llm2vec.files import staged_folder
from repro_small.plan import Evaluate, Plan, Train, _overrides

PART = "llm2vec14"
SEEDS = (1, 2, 3)
CONFIGS = Path("train_configs/reproduce_small")
MNTP_STEPS = 100
SIMCSE_STEPS = 100
#: llm2vec's four settings, as its published ``llm2vec_config.json`` holds them
LLM2VEC_SETTINGS = {"pooling_mode": "mean", "max_length": 512, "doc_max_length": 400, "skip_instruction": True}


def build_llm2vec_suite(root: Path, proxy_suite: Path, log=print) -> Path:
    """``root/suite``: the training texts (``train/texts.txt``) and the proxy suite's tasks."""
    target = root / "suite"
    source = json.loads((proxy_suite / "manifest.json").read_text())
    manifest_path = target / "manifest.json"
    if manifest_path.is_file() and json.loads(manifest_path.read_text()).get("source") == source["content_sha256"]:
        return target
    texts: dict[str, None] = {}
    for path in sorted((proxy_suite / "train").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            pair = json.loads(line)
            for key in ("query", "positive"):
                texts.setdefault(" ".join(pair[key].split()), None)
    with staged_folder(target, log=log) as staging:
        (staging / "train").mkdir()
        (staging / "train" / "texts.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
        shutil.copytree(proxy_suite / "eval", staging / "eval")
        (staging / "manifest.json").write_text(json.dumps(
            {"source": source["content_sha256"], "texts": len(texts), "spread_texts": source["spread_texts"]},
            indent=2) + "\n")
    log(f"[llm2vec14] {len(texts)} distinct training texts in {target / 'train' / 'texts.txt'}")
    return target


def llm2vec_view(base: Path, target: Path) -> Path:
    """``base`` as llm2vec would publish it: its files (linked) and llm2vec's ``llm2vec_config.json``.

    Loaded, it is an llm2vec checkpoint: bidirectional attention, mean pooling, llm2vec's
    tokenization, without training (the starting point of MNTP).
    """
    config = target / "llm2vec_config.json"
    if config.is_file():
        return target
    with staged_folder(target) as staging:
        for item in base.iterdir():
            if item.is_file() and item.name != "llm2vec_config.json":
                os.symlink(item.resolve(), staging / item.name)
        (staging / "llm2vec_config.json").write_text(json.dumps(LLM2VEC_SETTINGS, indent=2) + "\n")
    return target


def build_llm2vec_plan(seeds: tuple[int, ...] = SEEDS) -> Plan:
    """Untrained references, then per seed: MNTP, its scores, SimCSE on it, its scores."""
    plan = Plan()
    plan.add(Evaluate("l2v-Untrained-EOS", PART, "smollm2", "full", spread=True))
    plan.add(Evaluate("l2v-Untrained-mean", PART, "smollm2", "full", pooling_mode="mean", spread=True))
    plan.add(Evaluate("l2v-Untrained-bidirectional-mean", PART, "smollm2-llm2vec", "full", spread=True))
    for seed in seeds:
        mntp = plan.add(Train(f"l2v-MNTP-s{seed}", PART, "mntp", CONFIGS / "mntp_smollm2.json", "smollm2",
                              MNTP_STEPS, 50, _overrides(seed=seed), seed))
        plan.add(Evaluate(f"{mntp.name}@final", PART, mntp.name, "full", spread=True))
        simcse = plan.add(Train(f"l2v-SimCSE-s{seed}", PART, "simcse", CONFIGS / "simcse_smollm2.json", mntp.name,
                                SIMCSE_STEPS, 50, _overrides(seed=seed), seed))
        plan.add(Evaluate(f"{simcse.name}@final", PART, mntp.name, "full", simcse.name, spread=True))
    return plan
