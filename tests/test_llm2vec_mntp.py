"""MNTP: the loss against a hand computation, the mask token, and the saved layout (McGill-NLP's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from peft import PeftModel
from transformers import AutoModel

from llm2vec import LLM2Vec
from llm2vec.llm2vec import is_bidirectional
from llm2vec.llm2vec_contrastive import LoraSettings
from llm2vec.llm2vec_mntp import LLM2VecMNTP, set_mask_token
from llm2vec.model_config import CONFIG_NAME

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_loss_predicts_each_masked_token_from_the_position_before(tiny_llama_dir: Path) -> None:
    mntp = LLM2VecMNTP.from_pretrained(tiny_llama_dir, dtype="float32").eval()
    assert is_bidirectional(mntp.model)
    torch.manual_seed(0)
    ids = torch.randint(10, 500, (2, 12))
    labels = torch.full_like(ids, -100)
    masked = [(0, 3), (0, 7), (1, 1), (1, 11)]
    inputs = ids.clone()
    for row, col in masked:
        labels[row, col] = ids[row, col]
        inputs[row, col] = mntp.tokenizer.mask_token_id
    with torch.no_grad():
        loss = mntp(input_ids=inputs, labels=labels)["loss"]
        logits = mntp.model(input_ids=inputs).logits
    by_hand = torch.stack([F.cross_entropy(logits[row, col - 1], ids[row, col]) for row, col in masked]).mean()
    torch.testing.assert_close(loss, by_hand, rtol=0, atol=1e-5)
    # the same as transformers' causal-LM loss, which runs the head at every position
    with torch.no_grad():
        torch.testing.assert_close(loss, mntp.model(input_ids=inputs, labels=labels).loss, rtol=0, atol=1e-5)


def test_mask_tokens_follow_llm2vecs_choices(tiny_llama_dir: Path) -> None:
    from transformers import AutoTokenizer

    for kind, token in (("blank", "_"), ("eos", None), ("mask", "<mask>")):
        tokenizer = AutoTokenizer.from_pretrained(tiny_llama_dir)
        mask_id = set_mask_token(tokenizer, kind)
        assert tokenizer.convert_ids_to_tokens(mask_id) == (token or tokenizer.eos_token)
    with pytest.raises(ValueError, match="mask_token_type must be one of"):
        set_mask_token(AutoTokenizer.from_pretrained(tiny_llama_dir), "random")


def test_the_saved_adapter_is_an_mntp_repository(tiny_llama_dir: Path, tmp_path: Path) -> None:
    mntp = LLM2VecMNTP.from_pretrained(tiny_llama_dir, dtype="float32")
    mntp.add_lora(LoraSettings(lora_r=4))
    trainable = [name for name, p in mntp.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in name for name in trainable)  # the head and the body stay frozen
    with torch.no_grad():
        for name, parameter in mntp.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.1)  # as if trained
    mntp.save(tmp_path / "mntp")
    assert {"adapter_config.json", "adapter_model.safetensors", "config.json", "tokenizer.json"} <= {
        p.name for p in (tmp_path / "mntp").iterdir()}
    assert not (tmp_path / "mntp" / CONFIG_NAME).exists()
    assert json.loads((tmp_path / "mntp" / "config.json").read_text())["_name_or_path"] == str(tiny_llama_dir)
    # the adapter's keys are the body's: it loads onto AutoModel with nothing missing
    body = PeftModel.from_pretrained(AutoModel.from_pretrained(tiny_llama_dir), tmp_path / "mntp")
    loaded = {k for k in body.state_dict() if "lora_" in k}
    assert loaded and all(torch.equal(body.state_dict()[k], mntp.body.state_dict()[k]) for k in loaded)
    # and LLM2Vec reads the folder as llm2vec's: bidirectional, mean pooling, its tokenization
    encoder = LLM2Vec.from_pretrained(tmp_path / "mntp")
    assert (encoder.llm2vec_config.enable_bidirectional, encoder.pooling_mode, encoder.llm2vec_config.tokenization) == (
        True, "mean", "llm2vec")
    mntp.load_checkpoint_weights(tmp_path / "mntp")  # resuming reads the same tensors back
