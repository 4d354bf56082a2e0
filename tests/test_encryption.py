"""Biometric data at rest with a site key: templates, face crops, event snapshots and the
index file are sealed (AES-GCM); without the key, or with another, nothing opens."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import numpy as np
import pytest

from db.crypto import load_key
from db.index import GalleryIndex
from db.store import NewTemplate, Store
from faceid.errors import StoreError, UsageError

KEY = bytes(range(32))


def _raw(folder: Path) -> bytes:
    return b"".join(f.read_bytes() for f in sorted(folder.glob("faceid.db*")))


def test_templates_crops_and_snapshots_are_sealed(tmp_path):
    url = f"sqlite:///{tmp_path / 'faceid.db'}"
    store = Store(url, key=KEY)
    mid = store.model_record("m", "sha", "std", 128, 0.5).id
    vector = np.random.default_rng(3).standard_normal(128).astype(np.float32)
    crop = os.urandom(3000)
    snapshot = os.urandom(2000)
    result = store.enroll("Ada", [NewTemplate(vector, "ada.jpg", "h1", 1.0, 90.0, 50.0, crop)],
                          mid)
    store.add_event(source="door", decision="grant", reason="match",
                    person_id=result.person_id, snapshot_jpeg=snapshot)
    raw = _raw(tmp_path)
    assert vector.tobytes() not in raw and crop[:64] not in raw and snapshot[:64] not in raw
    _, _, _, vectors = store.gallery(mid)
    assert np.array_equal(vectors[0], vector)
    assert next(store.face_crops(mid))[3] == crop
    assert store.verify_chain().ok
    with pytest.raises(StoreError, match="encrypted"):
        Store(url, key=None).gallery(mid)
    with pytest.raises(StoreError, match="does not open"):
        Store(url, key=bytes(32)).gallery(mid)


def test_the_index_file_is_sealed_too(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'faceid.db'}", key=KEY)
    vectors = np.random.default_rng(4).standard_normal((5, 128)).astype(np.float32)
    index = GalleryIndex(tmp_path / "index", "m", 128, sealer=store.sealer)
    index.rebuild(1, np.arange(1, 6), np.arange(1, 6), vectors)
    data = index.path.read_bytes()
    assert data.startswith(b"fid1") and b"meta.json" not in data
    owners = dict(zip(range(1, 6), range(1, 6)))
    again = GalleryIndex(tmp_path / "index", "m", 128, sealer=store.sealer)
    assert again.check(1, owners, vectors) is None
    clear = GalleryIndex(tmp_path / "index", "m", 128)
    assert "unreadable" in clear.check(1, owners, vectors)


@pytest.mark.parametrize("value,why", [("not base64!", "base64"),
                                       (base64.b64encode(b"short").decode(), "32")])
def test_a_bad_key_is_a_usage_error(monkeypatch, value, why):
    monkeypatch.setenv("FACEID_KEY", value)
    with pytest.raises(UsageError, match=why):
        load_key()


def test_the_key_comes_from_a_file(monkeypatch, tmp_path):
    (tmp_path / "key").write_text(base64.b64encode(KEY).decode() + "\n")
    monkeypatch.delenv("FACEID_KEY", raising=False)
    monkeypatch.setenv("FACEID_KEY_FILE", str(tmp_path / "key"))
    assert load_key() == KEY
