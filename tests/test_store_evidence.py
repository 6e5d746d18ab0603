"""Content-addressed evidence store."""

from __future__ import annotations

import hashlib
import os

import pytest

from assay.config import Settings
from assay.errors import InputError, NotFoundError
from assay.evidence import (
    EvidenceError,
    artifact_path,
    has_artifact,
    normalise_digest,
    open_artifact,
    store_artifact,
    store_bytes,
    store_file,
    verify_artifact,
)


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings(home=tmp_path / "home", database_url="sqlite://")


def test_bytes_are_stored_by_sha256(settings: Settings) -> None:
    data = b'{"status": "passed"}'
    digest = store_bytes(settings, data)
    hexd = hashlib.sha256(data).hexdigest()
    assert digest == "sha256:" + hexd
    path = artifact_path(settings, digest)
    assert path == settings.home / "evidence" / "sha256" / hexd[:2] / hexd[2:]
    assert path.read_bytes() == data
    assert not os.access(path, os.W_OK) or os.geteuid() == 0  # stored read-only
    assert open_artifact(settings, digest) == data
    assert open_artifact(settings, hexd) == data  # bare hex accepted
    assert store_bytes(settings, data) == digest  # idempotent
    assert has_artifact(settings, digest) and verify_artifact(settings, digest)


def test_files_are_streamed_in(settings: Settings, tmp_path) -> None:
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * (1 << 20) + 17))
    digest = store_file(settings, src)
    assert digest == "sha256:" + hashlib.sha256(src.read_bytes()).hexdigest()
    assert store_artifact(settings, src) == digest == store_artifact(settings, src.read_bytes())
    assert not list((settings.home / "evidence").glob(".incoming-*"))


def test_a_damaged_artifact_is_reported(settings: Settings) -> None:
    digest = store_bytes(settings, b"original")
    path = artifact_path(settings, digest)
    os.chmod(path, 0o644)
    path.write_bytes(b"edited")
    with pytest.raises(EvidenceError, match="corrupted"):
        open_artifact(settings, digest)
    assert not verify_artifact(settings, digest)


def test_bad_digests_and_missing_artifacts(settings: Settings, tmp_path) -> None:
    with pytest.raises(InputError, match="sha256:<64 hex digits>"):
        normalise_digest("md5:abc")
    with pytest.raises(NotFoundError, match="not in the store"):
        open_artifact(settings, "sha256:" + "0" * 64)
    with pytest.raises(InputError, match="not found"):
        store_file(settings, tmp_path / "missing.json")
    with pytest.raises(InputError, match="expected bytes"):
        store_bytes(settings, "text")  # type: ignore[arg-type]


def test_an_unwritable_evidence_directory_is_a_clear_error(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    (settings.home / "evidence").write_text("not a directory")
    with pytest.raises(EvidenceError, match="cannot write to the evidence store"):
        store_bytes(settings, b"x")


def test_an_unusable_home_is_a_clear_error(tmp_path) -> None:
    from assay.store import StoreError, open_store

    home = tmp_path / "home"
    home.write_text("a file, not a directory")
    with pytest.raises(StoreError, match="ASSAY_HOME"):
        open_store(Settings(home=home, database_url=f"sqlite:///{home / 'assay.db'}"))
