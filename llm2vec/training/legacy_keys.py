"""Training keys that transformers 5 removed, as llm2vec's and older configs still write them.

A renamed key becomes its new name (``evaluation_strategy`` -> ``eval_strategy``); a key whose
setting no longer exists is dropped when the value asks for what transformers 5 does anyway, and
refused when it asks for something it cannot do. Each is said once, in a line that names the
file (or the command line), the key and what it now means. Keys that were never training keys
stay errors (the parser's unknown-key message).
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

#: old key -> new key, same meaning
RENAMED = {
    "evaluation_strategy": "eval_strategy",
    "no_cuda": "use_cpu",
    "per_gpu_train_batch_size": "per_device_train_batch_size",
    "per_gpu_eval_batch_size": "per_device_eval_batch_size",
    "push_to_hub_token": "hub_token",
    "push_to_hub_model_id": "hub_model_id",
}
#: old key -> (the values transformers 5 gives anyway, what it means now)
DROPPED: dict[str, tuple[tuple[Any, ...] | None, str]] = {
    "logging_dir": (None, "transformers 5 writes TensorBoard logs into output_dir/runs; the key is ignored"),
    "save_safetensors": ((True,), "transformers 5 always saves safetensors"),
    "fp16_backend": (("auto", "amp"), "transformers 5 uses torch.amp for fp16 and bf16"),
    "half_precision_backend": (("auto", "amp"), "transformers 5 uses torch.amp for fp16 and bf16"),
    "use_mps_device": (None, "transformers 5 uses an MPS device when there is one; the key is ignored"),
    "tpu_num_cores": (None, "TPU cores come from the launcher in transformers 5; the key is ignored"),
    "jit_mode_eval": ((False,), "transformers 5 has no TorchScript evaluation"),
    "use_ipex": ((False,), "transformers 5 has no IPEX integration"),
    "fp16_opt_level": (None, "apex is gone from transformers 5; the key is ignored"),
    "mp_parameters": (None, "SageMaker model parallelism is gone from transformers 5; the key is ignored"),
    "ray_scope": (None, "hyper-parameter search settings are not used by these trainings; the key is ignored"),
    "include_tokens_per_second": ((False,), "transformers 5 reports no tokens per second in its logs"),
}


def translate_legacy_keys(values: dict[str, Any], source: str) -> dict[str, Any]:
    """``values`` with removed transformers keys renamed or dropped (see the module docstring).

    Raises:
        ValueError: an old key given beside its new name, or a removed setting asked to do
            something transformers 5 cannot (naming ``source`` and the key).
    """
    translated = dict(values)
    for old, new in RENAMED.items():
        if old not in translated:
            continue
        if new in translated:
            raise ValueError(f"{source}: {old} and {new} are the same setting (transformers 5 calls it {new}); keep one")
        translated[new] = translated.pop(old)
        logger.warning("%s: %s is called %s in transformers 5; read as %s=%r", source, old, new, new, translated[new])
    for old, (accepted, meaning) in DROPPED.items():
        if old not in translated:
            continue
        value = translated.pop(old)
        if accepted is not None and value not in accepted:
            raise ValueError(f"{source}: {old}={value!r} cannot be honoured: {meaning}; remove the key")
        logger.warning("%s: %s=%r: %s", source, old, value, meaning)
    return translated
