"""Every bad input of docs/reliability.md ends in one line that names what is wrong and where.

In process and fast: config values (booleans, numbers), model and adapter locations, weight
files, adapters of another base or size, and local evaluation tasks whose scores cannot be right.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from llm2vec import LLM2Vec
from llm2vec.evaluation.local_tasks import LocalTaskError, load_local_tasks
from llm2vec.llm2vec_contrastive import LLM2VecContrastive, LoraSettings
from llm2vec.model_sources import ModelSourceError
from llm2vec.testing.tiny_models import save_tiny_checkpoint
from llm2vec.training.arguments import STAGE_I_CONFIG_TYPES, STAGE_II_CONFIG_TYPES
from llm2vec.training.config_parsing import ConfigError, parse_config

REPO = Path(__file__).resolve().parents[2]
TINY_STAGE_I = REPO / "train_configs" / "tiny" / "stage_I_tiny.json"
TINY_STAGE_II = REPO / "train_configs" / "tiny" / "stage_II_tiny.json"
LOCAL_TASKS = REPO / "tests" / "data" / "local_tasks"


def _one_line(error: pytest.ExceptionInfo) -> str:
    text = str(error.value)
    assert "\n" not in text, text
    return text


# ---------------------------------------------------------------------------- config values
@pytest.mark.parametrize("spelling", ["False", "false", "0", "no", "NO"])
def test_false_on_the_command_line_means_false(spelling):
    *_, loss, training = parse_config(STAGE_I_CONFIG_TYPES, [str(TINY_STAGE_I), "--packing", spelling])
    _, _, stage, *_ = parse_config(STAGE_I_CONFIG_TYPES, [str(TINY_STAGE_I), "--release_compat", spelling])
    assert loss.packing is False and stage.release_compat is False


@pytest.mark.parametrize("spelling", ["True", "yes", "1"])
def test_true_spellings_mean_true(spelling):
    _, _, stage, *_ = parse_config(STAGE_I_CONFIG_TYPES, [str(TINY_STAGE_I), "--release_compat", spelling])
    assert stage.release_compat is True


def test_a_false_string_in_the_json_config_means_false(tmp_path):
    config = json.loads(TINY_STAGE_II.read_text())
    config.update({"save_merged_model": "false", "full_parameter": "No"})
    path = tmp_path / "strings.json"
    path.write_text(json.dumps(config))
    _, _, stage, *_ = parse_config(STAGE_II_CONFIG_TYPES, [str(path)])
    assert stage.save_merged_model is False and stage.full_parameter is False


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("bf16", "maybe", r"bf16 must be true or false .*'maybe'"),
        ("learning_rate", "fast", r"learning_rate must be a number, got 'fast'"),
        ("per_device_train_batch_size", "8", r"per_device_train_batch_size must be a whole number, got '8'"),
        ("per_device_train_batch_size", 2.5, r"per_device_train_batch_size must be a whole number, got 2.5"),
        ("alpha", "0.2", r"alpha must be a number, got '0.2'"),
    ],
)
def test_a_value_of_the_wrong_type_names_key_and_file(tmp_path, key, value, message):
    config = json.loads(TINY_STAGE_I.read_text())
    config[key] = value
    path = tmp_path / "typed.json"
    path.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=rf"typed\.json: {message}") as error:
        parse_config(STAGE_I_CONFIG_TYPES, [str(path)])
    _one_line(error)


def test_a_bad_override_names_the_command_line():
    with pytest.raises(ConfigError, match=r"^the command line: learning_rate must be a number, got 'fast'$"):
        parse_config(STAGE_I_CONFIG_TYPES, [str(TINY_STAGE_I), "--learning_rate", "fast"])


# ---------------------------------------------------------------------------- model sources
@pytest.mark.parametrize("name", ["/no/such/folder", "./missing_model", "runs/a/model", "~/nothing-here-xyz"])
def test_a_missing_model_folder_is_not_taken_for_a_hub_id(name):
    with pytest.raises(ModelSourceError, match="does not exist .*not taken for a hub id") as error:
        LLM2Vec.from_pretrained(name)
    _one_line(error)


def test_a_missing_adapter_folder_is_named(tiny_llama_dir, tmp_path):
    with pytest.raises(ModelSourceError, match=f"adapter folder {tmp_path / 'gone'} does not exist"):
        LLM2Vec.from_pretrained(tiny_llama_dir, peft_model_name_or_path=tmp_path / "gone")


def test_a_truncated_weight_file_is_named(tiny_llama_dir, tmp_path):
    copy = Path(shutil.copytree(tiny_llama_dir, tmp_path / "model"))
    weights = copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ModelSourceError, match=f"{weights} cannot be read as safetensors.*truncated") as error:
        LLM2Vec.from_pretrained(copy, dtype=torch.float32)
    _one_line(error)


def _adapter(base: Path, output: Path) -> Path:
    model = LLM2VecContrastive.from_pretrained(base, dtype=torch.float32)
    model.add_lora(LoraSettings(lora_r=4))
    model.save(output)
    return output


def test_an_adapter_on_another_base_of_the_same_shape_is_refused(tiny_llama_dir, tmp_path):
    other_base = save_tiny_checkpoint("llama3", tmp_path / "other_base", seed=1)
    adapter = _adapter(tiny_llama_dir, tmp_path / "adapter")
    assert (adapter / "adapter_base.json").is_file()
    LLM2Vec.from_pretrained(tiny_llama_dir, peft_model_name_or_path=adapter)  # its own base: fine
    with pytest.raises(ModelSourceError, match=f"trained on {tiny_llama_dir}, not on {other_base}") as error:
        LLM2Vec.from_pretrained(other_base, peft_model_name_or_path=adapter)
    _one_line(error)
    # a copy of the right base elsewhere is the same base (compared by content)
    LLM2Vec.from_pretrained(shutil.copytree(tiny_llama_dir, tmp_path / "copy"), peft_model_name_or_path=adapter)
    # a deliberate transfer
    transferred = LLM2Vec.from_pretrained(other_base, peft_model_name_or_path=adapter, allow_base_mismatch=True)
    assert transferred.loaded_from == [str(other_base), str(adapter)]


def test_an_adapter_of_another_hidden_size_gets_one_line(tiny_llama_dir, tmp_path):
    wider = save_tiny_checkpoint("llama3", tmp_path / "wider", seed=0, hidden_size=48, head_dim=12)
    adapter = _adapter(tiny_llama_dir, tmp_path / "adapter")
    (adapter / "adapter_base.json").unlink()  # an adapter from elsewhere: only its shapes can tell
    with pytest.raises(ModelSourceError, match="adapter does not fit the base model .*size mismatch") as error:
        LLM2Vec.from_pretrained(wider, peft_model_name_or_path=adapter)
    _one_line(error)


# ---------------------------------------------------------------------------- local tasks
def _task(tmp_path: Path, spec: dict, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    spec_path = tmp_path / "spec.json"
    spec_path.write_text(json.dumps(spec))
    return spec_path


def _lines(*rows: dict) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def test_a_spec_with_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "spec.json"
    path.write_text('{\n  "name": "X",\n  "type": "STS"\n  "path": "x.jsonl"\n}\n')
    with pytest.raises(LocalTaskError, match=rf"{path}:4: not valid JSON"):
        load_local_tasks(path)


def test_an_sts_score_outside_the_declared_range_names_file_and_line(tmp_path):
    rows = [{"sentence1": "a", "sentence2": "b", "score": s} for s in (1, 4, 7, 2)]
    spec = _task(tmp_path, {"name": "RangeSTS", "type": "STS", "path": "sts.jsonl", "min_score": 0, "max_score": 5},
                 {"sts.jsonl": _lines(*rows)})
    with pytest.raises(LocalTaskError, match=r"sts\.jsonl:3: score 7 lies outside the declared range \[0, 5\]"):
        load_local_tasks(spec)


def test_a_classification_with_one_label_is_refused(tmp_path):
    train = _lines(*({"text": f"t{i}", "label": "sports"} for i in range(6)))
    test = _lines({"text": "x", "label": "sports"}, {"text": "y", "label": "news"})
    spec = _task(tmp_path, {"name": "OneLabel", "type": "Classification", "path": "data"},
                 {"data/train.jsonl": train, "data/test.jsonl": test})
    with pytest.raises(LocalTaskError, match=r"train\.jsonl: every line has the label 'sports'; .*at least two"):
        load_local_tasks(spec)


@pytest.mark.parametrize(
    "qrel, message",
    [
        ({"query-id": "q1", "corpus-id": "d9", "score": 1}, r"qrels\.jsonl:2: corpus id 'd9' is not in the corpus"),
        ({"query-id": "q7", "corpus-id": "d1", "score": 1}, r"qrels\.jsonl:2: query id 'q7' is not in the queries"),
    ],
)
def test_qrels_that_name_absent_documents_or_queries_are_refused(tmp_path, qrel, message):
    files = {
        "data/corpus.jsonl": _lines({"id": "d1", "text": "one"}, {"id": "d2", "text": "two"}),
        "data/queries.jsonl": _lines({"id": "q1", "text": "first?"}),
        "data/qrels.jsonl": _lines({"query-id": "q1", "corpus-id": "d1", "score": 1}, qrel),
    }
    spec = _task(tmp_path, {"name": "Qrels", "type": "Retrieval", "path": "data"}, files)
    with pytest.raises(LocalTaskError, match=message):
        load_local_tasks(spec)
