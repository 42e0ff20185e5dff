"""Reading word-tagged sentences from CoNLL and .conllu files, with errors that name the line."""

from __future__ import annotations

import pytest

from llm2vec.dataset.conll import (
    CONLL2003_LABELS,
    hub_tagged_sentences,
    label_ids,
    label_inventory,
    read_tagged_sentences,
    tag_column_for,
)
from llm2vec.dataset.jsonl_reader import DatasetError

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O
. . O O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER
"""

CONLLU = """# sent_id = 1
# text = Don't go.
1-2\tDon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tDo\tdo\tAUX\tVBP\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\tRB\t_\t3\tadvmod\t_\t_
3\tgo\tgo\tVERB\tVB\t_\t0\troot\t_\t_
3.1\tgone\tgo\tVERB\tVBN\t_\t_\t_\t_\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_
"""


def test_conll_columns_give_each_task(tmp_path) -> None:
    path = tmp_path / "train.txt"
    path.write_text(CONLL)
    for task, expected in (("pos_tags", ("NNP", "VBZ", "JJ", "NN", ".")), ("ner_tags", ("B-ORG", "O", "B-MISC", "O", "O"))):
        first, second = read_tagged_sentences(path, tag_column_for(task, path, None))
        assert first.words == ("EU", "rejects", "German", "call", ".")
        assert first.tags == expected
        assert first.source == f"{path}:3"
    assert second.words == ("Peter", "Blackburn") and second.source == f"{path}:9"


def test_conllu_skips_comments_multiword_tokens_and_empty_nodes(tmp_path) -> None:
    path = tmp_path / "dev.conllu"
    path.write_text(CONLLU)
    (sentence,) = read_tagged_sentences(path, tag_column_for("upos", path, None))
    assert sentence.words == ("Do", "n't", "go", ".")
    assert sentence.tags == ("AUX", "PART", "VERB", "PUNCT")
    (sentence,) = read_tagged_sentences(path, tag_column_for("pos_tags", path, None))
    assert sentence.tags == ("VBP", "RB", "VB", ".")


def test_bad_files_name_file_and_line(tmp_path) -> None:
    path = tmp_path / "short.txt"
    path.write_text("EU NNP\nrejects\n")
    with pytest.raises(DatasetError, match=rf"{path}:1: 2 column\(s\), the task needs column 3"):
        read_tagged_sentences(path, 3)
    with pytest.raises(DatasetError, match="does not exist"):
        read_tagged_sentences(tmp_path / "missing.txt", 1)
    empty = tmp_path / "empty.txt"
    empty.write_text("-DOCSTART- -X- O\n\n")
    with pytest.raises(DatasetError, match="holds no sentence"):
        read_tagged_sentences(empty, 1)
    with pytest.raises(DatasetError, match="set tag_column"):
        tag_column_for("supersenses", path, None)


def test_labels_come_from_conll2003_or_from_training(tmp_path) -> None:
    path = tmp_path / "train.txt"
    path.write_text(CONLL)
    sentences = read_tagged_sentences(path, 3)
    assert label_inventory("ner_tags", sentences, "conll2003") == CONLL2003_LABELS["ner_tags"]
    own = label_inventory("ner_tags", sentences, "my-corpus")
    assert own == ("B-ORG", "O", "B-MISC", "B-PER", "I-PER")
    assert label_ids(sentences, own, "train")[1] == [3, 4]
    unseen = tmp_path / "test.txt"
    unseen.write_text("Paris NNP B-NP B-LOC\n")
    with pytest.raises(DatasetError, match=rf"{unseen}:1: tag 'B-LOC' of the test split"):
        label_ids(read_tagged_sentences(unseen, 3), own, "test")


def test_hub_layout_is_read_by_class_names(monkeypatch) -> None:
    import datasets

    features = datasets.Features({
        "tokens": datasets.Sequence(datasets.Value("string")),
        "ner_tags": datasets.Sequence(datasets.ClassLabel(names=list(CONLL2003_LABELS["ner_tags"]))),
    })
    rows = {"tokens": [["EU", "rejects"], []], "ner_tags": [[3, 0], []]}
    loaded = datasets.DatasetDict({"train": datasets.Dataset.from_dict(rows, features=features)})
    monkeypatch.setattr(datasets, "load_dataset", lambda name: loaded)
    splits = hub_tagged_sentences("conll2003", "ner_tags")
    (sentence,) = splits["train"]  # the empty row is not a sentence
    assert sentence.tags == ("B-ORG", "O")
    with pytest.raises(DatasetError, match="no column"):
        hub_tagged_sentences("conll2003", "pos_tags")
