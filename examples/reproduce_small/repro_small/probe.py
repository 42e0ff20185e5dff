"""One probe job: does a model's reconstruction use its anchor (``llm2vec.evaluation.anchor_probe``)?

The pairs are the suite's BBC headline -> article retrieval pairs: held out from training (the
suite checks that no evaluation text is a training text), and of the kind of the ``bbc_headline``
training file, whose instruction they get, so that the model sees them as it saw its training
pairs. The model is loaded in float32 with the Stage I config's pooling, length and prompt template.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from repro_small.plan import CONFIGS, Probe

if TYPE_CHECKING:
    from repro_small.jobs import Executor

PROBE_TASK = "SmallBBCHeadlineRetrieval"
#: the training file of the same kind of pair, whose instruction the probe's queries get
TRAIN_FILE = "bbc_headline.jsonl"
STAGE_I_CONFIG = CONFIGS / "stage_I_smollm2.json"


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def probe_pairs(suite: Path) -> tuple[list[str], list[str]]:
    """The queries and documents of the probe's pairs, as training texts (instruction and separator applied)."""
    from llm2vec.dataset.task_chunked import TaskSamples

    spec = json.loads((suite / "eval" / f"{PROBE_TASK}.json").read_text())
    folder = suite / "eval" / spec["path"]
    queries = {row["id"]: row["text"] for row in _jsonl(folder / "queries.jsonl")}
    corpus = {row["id"]: row["text"] for row in _jsonl(folder / "corpus.jsonl")}
    training = _jsonl(suite / "train" / TRAIN_FILE)
    instruction = training[0].get("instruction")
    samples = TaskSamples("probe")
    for row in _jsonl(folder / "qrels.jsonl"):
        samples.append(queries[row["query-id"]], corpus[row["corpus-id"]], None, instruction)
    pairs = [samples.sample(i) for i in range(len(samples))]
    return [p.query for p in pairs], [p.positive for p in pairs]


def check_model_step(executor: Executor, job: Probe) -> None:
    """A run folder that several runs continue holds the model of the last one that finished: a
    probe of an earlier run must not read a later run's model."""
    from llm2vec.training.run_folder import finished_step
    from repro_small.jobs import ReproductionError
    from repro_small.plan import Train

    run = executor.by_name.get(job.base)
    if not isinstance(run, Train):
        return
    folder = executor.settings.runs_dir / run.folder
    expected, found = (executor.state(run.name) or {}).get("steps", run.stop), finished_step(folder)
    if found != expected:
        raise ReproductionError(
            f"{job.name} probes {run.name}, which finished at step {expected}, but {folder} holds the model of "
            f"step {found}: a later run of the folder trained on. Probe it before that run, or train the folder "
            f"again up to step {expected} in another place")


def probe_job(executor: Executor, job: Probe) -> dict[str, Any]:
    import torch

    from llm2vec import LLM2Vec_q2d_d2q
    from llm2vec.evaluation.anchor_probe import probe_anchors
    from repro_small.jobs import REPO

    check_model_step(executor, job)
    config = json.loads((REPO / STAGE_I_CONFIG).read_text())
    model = LLM2Vec_q2d_d2q.from_pretrained(
        executor.model_path(job.base), dtype=torch.float32, attn_implementation="eager",
        pooling_mode=config["pooling_mode"], max_length=config["max_seq_length"], prompt_template=config["prompt_template"],
    )
    queries, documents = probe_pairs(executor.settings.suite)
    started = time.time()
    probe = probe_anchors(model, queries, documents, seed=job.seed).as_dict()
    q2d, d2q = probe["q2d"], probe["d2q"]
    return {
        "kind": "probe", "probe": probe, "probe_seconds": round(time.time() - started, 1),
        "summary": (f"{probe['pairs']} pairs; Q2D own {q2d['own']:.3f} vs other {q2d['other']:.3f} nats/token "
                    f"(gap {q2d['gap']:+.3f}), D2Q own {d2q['own']:.3f} vs other {d2q['other']:.3f} "
                    f"(gap {d2q['gap']:+.3f}); anchor cosine q {probe['query_anchor_cosine']:.3f}, "
                    f"d {probe['document_anchor_cosine']:.3f}"),
    }
