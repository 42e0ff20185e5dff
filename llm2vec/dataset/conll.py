"""Word-tagged sentences in CoNLL column files: the data of llm2vec's word-level probing tasks.

One token per line, whitespace-separated columns (CoNLL-2003: ``word POS chunk NER``; CoNLL-2000:
``word POS chunk``), a blank line between sentences, ``-DOCSTART-`` lines marking documents (not
sentences). llm2vec reads CoNLL-2003 from the hub (``dataset_name: conll2003``); its three tasks
are columns 1-3 of the same files here. ``.conllu`` files (Universal Dependencies) are read with
their own layout: comment lines start with ``#``, multi-word and empty-node lines (ids ``1-2``,
``1.1``) are not tokens, the word is column 2, UPOS column 4, XPOS column 5.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from llm2vec.dataset.jsonl_reader import DatasetError, DatasetNotFoundError
from llm2vec.dataset.text_lines import iter_text_lines

#: columns of the CoNLL-2003 files (after the word in column 0) for llm2vec's task names
CONLL2003_COLUMNS = {"pos_tags": 1, "chunk_tags": 2, "ner_tags": 3}
#: columns of a .conllu token line for the tags a word task can predict
CONLLU_COLUMNS = {"upos": 3, "xpos": 4, "pos_tags": 4}

#: CoNLL-2003's tag inventories in llm2vec's order (the hub dataset's label ids)
CONLL2003_LABELS: dict[str, tuple[str, ...]] = {
    "pos_tags": (
        '"', "''", "#", "$", "(", ")", ",", ".", ":", "``", "CC", "CD", "DT", "EX", "FW", "IN", "JJ", "JJR",
        "JJS", "LS", "MD", "NN", "NNP", "NNPS", "NNS", "NN|SYM", "PDT", "POS", "PRP", "PRP$", "RB", "RBR", "RBS",
        "RP", "SYM", "TO", "UH", "VB", "VBD", "VBG", "VBN", "VBP", "VBZ", "WDT", "WP", "WP$", "WRB",
    ),
    "chunk_tags": (
        "O", "B-ADJP", "I-ADJP", "B-ADVP", "I-ADVP", "B-CONJP", "I-CONJP", "B-INTJ", "I-INTJ", "B-LST", "I-LST",
        "B-NP", "I-NP", "B-PP", "I-PP", "B-PRT", "I-PRT", "B-SBAR", "I-SBAR", "B-UCP", "I-UCP", "B-VP", "I-VP",
    ),
    "ner_tags": ("O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"),
}


@dataclass(frozen=True)
class TaggedSentence:
    """A sentence's words and one tag per word; ``source`` is ``file:line`` of its first word."""

    words: tuple[str, ...]
    tags: tuple[str, ...]
    source: str


def _is_conllu(path: Path) -> bool:
    return path.suffix == ".conllu"


def read_tagged_sentences(path: str | os.PathLike[str], column: int) -> list[TaggedSentence]:
    """The sentences of a CoNLL (or ``.conllu``) file with the tag of column ``column`` (0 = the word).

    Raises:
        DatasetNotFoundError: the file does not exist.
        DatasetError: a token line without that column (naming file and line), or no sentence.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFoundError(f"word-task data not found: {path} does not exist")
    conllu = _is_conllu(path)
    word_column = 1 if conllu else 0
    sentences: list[TaggedSentence] = []
    words: list[str] = []
    tags: list[str] = []
    first_line = 0

    def close() -> None:
        if words:
            sentences.append(TaggedSentence(tuple(words), tuple(tags), f"{path}:{first_line}"))
            words.clear()
            tags.clear()

    for number, line in iter_text_lines(path):
        if not line:
            close()
            continue
        if conllu and line.startswith("#"):
            continue
        fields = line.split("\t") if conllu else line.split()
        if fields[0] == "-DOCSTART-":
            close()
            continue
        if conllu and not fields[0].isdigit():
            continue  # a multi-word token (1-2) or an empty node (1.1): its words have lines of their own
        if len(fields) <= max(column, word_column):
            raise DatasetError(
                f"{path}:{number}: {len(fields)} column(s), the task needs column {column} "
                f"(0 = the word); set tag_column to the column of the tags, or fix the line"
            )
        if not words:
            first_line = number
        words.append(fields[word_column])
        tags.append(fields[column])
    close()
    if not sentences:
        raise DatasetError(f"{path} holds no sentence (one token per line, a blank line between sentences)")
    return sentences


def tag_column_for(task: str, path: str | os.PathLike[str], tag_column: int | None) -> int:
    """The column of ``task``'s tags: ``tag_column`` if given, else the task's CoNLL-2003 (or UD) column."""
    if tag_column is not None:
        return tag_column
    columns = CONLLU_COLUMNS if _is_conllu(Path(path)) else CONLL2003_COLUMNS
    if task not in columns:
        raise DatasetError(
            f"task {task!r} has no known column in {path}; set tag_column (known tasks: {sorted(columns)})"
        )
    return columns[task]


def label_inventory(task: str, sentences: Sequence[TaggedSentence], dataset_name: str) -> tuple[str, ...]:
    """The labels of ``task``: CoNLL-2003's fixed inventory for that dataset, else the training
    sentences' tags in order of first appearance."""
    if dataset_name == "conll2003" and task in CONLL2003_LABELS:
        return CONLL2003_LABELS[task]
    seen: dict[str, None] = {}
    for sentence in sentences:
        seen.update(dict.fromkeys(sentence.tags))
    return tuple(seen)


def label_ids(sentences: Sequence[TaggedSentence], labels: Sequence[str], split: str) -> list[list[int]]:
    """Each sentence's tags as ids of ``labels``.

    Raises:
        DatasetError: a tag outside the inventory (naming the sentence and the tag).
    """
    index = {label: i for i, label in enumerate(labels)}
    result = []
    for sentence in sentences:
        try:
            result.append([index[tag] for tag in sentence.tags])
        except KeyError as error:
            raise DatasetError(
                f"{sentence.source}: tag {error.args[0]!r} of the {split} split is not among the {len(labels)} "
                f"labels of the training split; every tag must occur in training"
            ) from None
    return result


def hub_tagged_sentences(dataset_name: str, task: str) -> dict[str, list[TaggedSentence]]:
    """The splits of a hub dataset laid out as CoNLL-2003 is there (``tokens`` and one list of
    class ids per task, named by its ``ClassLabel`` feature), as llm2vec loads ``conll2003``.

    Raises:
        DatasetError: the hub cannot be reached or the dataset has no ``tokens``/``task`` column.
    """
    import datasets

    try:
        loaded = datasets.load_dataset(dataset_name)
    except Exception as error:  # noqa: BLE001 - any failure to fetch is the same advice
        raise DatasetError(
            f"cannot load the hub dataset {dataset_name} ({error}); without network, save its splits as CoNLL "
            "files (word and tags per line) and set train_file, validation_file and test_file"
        ) from error
    splits = {}
    for split, rows in loaded.items():
        missing = {"tokens", task} - set(rows.column_names)
        if missing:
            raise DatasetError(f"hub dataset {dataset_name} split {split} has no column(s) {sorted(missing)}")
        names = rows.features[task].feature.names
        splits[split] = [
            TaggedSentence(tuple(row["tokens"]), tuple(names[i] for i in row[task]), f"{dataset_name}/{split}#{n}")
            for n, row in enumerate(rows)
            if row["tokens"]
        ]
    return splits
