"""llm2vec's word-level probing tasks: a linear classifier on the frozen model's token states.

    python experiments/run_word_task.py train_configs/word_task/MetaLlama3-bi-mntp.json
    python experiments/run_word_task.py CONFIG.json --train_file train.txt --validation_file dev.txt

Tags (``task``: CoNLL-2003's ``pos_tags``, ``chunk_tags``, ``ner_tags``; a column of any CoNLL or
``.conllu`` file) are predicted from the final hidden states of a model loaded as
``LLM2Vec.from_pretrained(model_name_or_path, peft_model_name_or_path)`` (llm2vec's ``peft_addr``
also works), bidirectional unless ``bidirectional: false``. The model stays frozen and its states
are computed once; only the classifier trains. Writes ``word_probe.safetensors`` (the classifier)
and ``word_task.json`` (labels, settings, losses, validation and test scores) to ``output_dir``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import torch
from safetensors.torch import save_file

from llm2vec import LLM2Vec
from llm2vec.files import write_atomically, write_text_atomically
from llm2vec.training.arguments import WORD_TASK_CONFIG_TYPES
from llm2vec.training.config_parsing import ConfigError, parse_config
from llm2vec.training.run_folder import claim_output_dir
from llm2vec.training.setup_run import encoder_loading_kwargs, run_main
from llm2vec.word_task.features import word_features
from llm2vec.word_task.probe import ProbeSchedule, train_probe
from llm2vec.word_task.report import word_task_record
from llm2vec.word_task.scoring import score_probe
from llm2vec.word_task.splits import load_word_task

logger = logging.getLogger(__name__)

#: llm2vec's run_word_task.py defaults where they differ from this project's
LLM2VEC_WORD_TASK_DEFAULTS = {"bidirectional": True}


def main(argv: Sequence[str] | None = None) -> None:
    model_args, task_args, training_args = parse_config(WORD_TASK_CONFIG_TYPES, argv, defaults=LLM2VEC_WORD_TASK_DEFAULTS)
    if task_args.peft_addr is not None:
        if model_args.peft_model_name_or_path not in (None, task_args.peft_addr):
            raise ConfigError("peft_addr and peft_model_name_or_path name different adapters; keep one")
        model_args.peft_model_name_or_path = task_args.peft_addr
    data = load_word_task(task_args)
    with claim_output_dir(training_args) as run:
        if run.finished:
            return
        encoder = LLM2Vec.from_pretrained(
            model_args.model_name_or_path, peft_model_name_or_path=model_args.peft_model_name_or_path,
            **encoder_loading_kwargs(model_args),
        )
        features = {}
        for split, sentences in data.sentences.items():
            start = time.perf_counter()
            features[split] = word_features(
                encoder, sentences, data.label_ids[split], task_args.retroactive_labels, task_args.merge_subwords,
                model_args.max_seq_length, task_args.feature_batch_size,
            )
            print(f"{split}: {len(sentences)} sentences, {len(features[split].labels)} labelled tokens, "
                  f"states in {time.perf_counter() - start:.1f} s", flush=True)
        del encoder
        validation = features.get("validation")
        probe, history = train_probe(
            features["train"], len(data.labels), task_args.classifier_dropout,
            ProbeSchedule.from_training_arguments(training_args),
            evaluate=None if validation is None else (lambda p: score_probe(p, validation, data.labels)),
        )
        scores = {split: score_probe(probe, rows, data.labels) for split, rows in features.items()}
        for split, values in scores.items():
            print(f"{split}: " + ", ".join(f"{k} {100 * v:.2f}" for k, v in values.items()), flush=True)
        output = run.output_dir
        output.mkdir(parents=True, exist_ok=True)
        weights = {name: tensor.detach().contiguous() for name, tensor in probe.state_dict().items()}
        write_atomically(output / "word_probe.safetensors", lambda path: save_file(weights, str(path)))
        record = word_task_record(model_args, task_args, data.labels, history, scores, features)
        write_text_atomically(output / "word_task.json", record)
        run.global_step = history.steps


if __name__ == "__main__":
    torch.set_grad_enabled(True)
    run_main(main)
