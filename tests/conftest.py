"""Shared fixtures: the LFW dataset (real images, never copied into the repo) and one loaded
pipeline per session (the model loads once)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("FACEID_DATASETS", ROOT.parent / "shared" / "datasets"))
LFW = Path(os.environ.get("FACEID_LFW", DATASETS / "lfw"))
# network exports (faceid/netrun.py) go to this run's own cache, inherited by the commands
# the tests start: no test depends on what an earlier run left in the user's cache
_OWN_CACHE = None if os.environ.get("FACEID_CACHE") else tempfile.mkdtemp(prefix="faceid-cache-")
if _OWN_CACHE:
    os.environ["FACEID_CACHE"] = _OWN_CACHE


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWN_CACHE:
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture(scope="module")
def one_thread():
    """The test machine is shared: keep torch to one core in a module that asks for it
    (``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def lfw_root() -> Path:
    assert (LFW / "pairs.txt").is_file(), f"LFW not found at {LFW} (set FACEID_LFW)"
    return LFW


@pytest.fixture(scope="session")
def lfw_images(lfw_root: Path) -> Path:
    return lfw_root / "lfw-deepfunneled"


def lfw(images: Path, name: str, n: int) -> Path:
    return images / name / f"{name}_{n:04d}.jpg"


@pytest.fixture(scope="session")
def fid():
    from faceid.pipeline import FaceID

    return FaceID()


@pytest.fixture(scope="session")
def two_face_image(lfw_images: Path) -> np.ndarray:
    """Two real LFW portraits side by side: an image with (at least) two faces."""
    from faceid.imageio import load_image

    a = load_image(lfw(lfw_images, "Aaron_Peirsol", 1))
    b = load_image(lfw(lfw_images, "George_W_Bush", 1))
    return np.ascontiguousarray(np.hstack([a, b]))


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for this test session (see tests/pg.py)."""
    from tests.pg import TempPostgres

    server = TempPostgres().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path: Path) -> str:
    """A fresh, empty database URL: an SQLite file, or a new database on the test server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'faceid.db'}"
    return request.getfixturevalue("postgres").new_database()
