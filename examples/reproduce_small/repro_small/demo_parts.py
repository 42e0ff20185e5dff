"""The demo's data helpers that the suite builds on, imported in one place.

The suite reads gensim's test data, splits sentences, checks for leaked evaluation text, groups
near-duplicates, picks hard negatives and makes the Lee / newsgroups training pairs exactly as the
demo does (``examples/demo/anchor_demo/demo_data.py``), so that both agree on what "overlap" and
"near-duplicate" mean. Several of these helpers are private to the demo (a leading underscore);
giving them names here keeps that coupling visible: if the demo renames one, this is the only
file to change. ``anchor_demo`` must be importable (``examples/demo`` on ``sys.path``; the entry
script and the tests arrange that).
"""

from __future__ import annotations

from anchor_demo import demo_data as _demo
from anchor_demo.demo_data import (
    DataOverlapError,
    DemoDataConfig,
    DemoDataError,
    NewsgroupPost,
    check_no_overlap,
    gensim_test_data_dir,
    read_lines_corpus,
    read_newsgroups,
    read_similarity_matrix,
    split_sentences,
    truncate_words,
)
from anchor_demo.run_files import remove_stale_siblings

__all__ = [
    "DataOverlapError",
    "DemoBuild",
    "DemoDataConfig",
    "DemoDataError",
    "NewsgroupPost",
    "OverlapIndex",
    "check_no_overlap",
    "content_words",
    "decode",
    "gensim_test_data_dir",
    "lee_training_pairs",
    "make_pair",
    "near_duplicate_groups",
    "negative_picker",
    "newsgroups_training_pairs",
    "norm",
    "read_lines_corpus",
    "read_newsgroups",
    "read_similarity_matrix",
    "remove_stale_siblings",
    "rng",
    "split_newsgroups",
    "split_sentences",
    "squash",
    "truncate_words",
    "write_json",
    "write_jsonl",
]

OverlapIndex = _demo._OverlapIndex
"""``OverlapIndex(eval_texts).find(text)``: the evaluation text that ``text`` equals, contains or
shares a sentence of 8+ words with (case and whitespace ignored), else None."""

DemoBuild = _demo._Build
"""The demo's container of training files; its pair builders write into ``.train``."""

near_duplicate_groups = _demo._near_duplicate_groups
negative_picker = _demo._negative_picker
content_words = _demo._content_words
decode = _demo._decode
norm = _demo._norm
squash = _demo._squash
make_pair = _demo._pair
rng = _demo._rng
lee_training_pairs = _demo._lee_training
newsgroups_training_pairs = _demo._newsgroups_training
split_newsgroups = _demo._split_newsgroups
write_json = _demo._write_json
write_jsonl = _demo._write_jsonl
