"""The FAISS gallery index: a cache of one model's templates, kept beside the database.

The database is the source of truth. The index file stores, with the serialised FAISS index
in one atomically replaced file, the model key, the database revision it reflects, the
template count and a checksum of template ids. On open those are compared with the database
and the index is rebuilt when anything differs, or when the file is missing or unreadable;
it is never trusted stale.

Small galleries use exact search (flat inner product on unit vectors). Past
``ann_threshold`` templates the index is IVF-Flat: unlike HNSW it supports removing vectors in
place (people are deleted), and at 1M templates it meets the latency and recall targets in
``bench/search_scale.py`` (see docs/BENCHMARKS.md).
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from db.crypto import Sealer
from faceid.atomic import replacing
from faceid.config import env_int, thread_count
from faceid.errors import StoreError

FORMAT = "faceid-index/1"
def default_ann_threshold() -> int:
    """Templates at which the index turns approximate (``FACEID_ANN_THRESHOLD``, 50,000)."""
    return env_int("FACEID_ANN_THRESHOLD", 50_000, minimum=1)
DEFAULT_NPROBE = 48
VECTOR_TOLERANCE = 1e-5  # float32 rounding of a re-normalised vector, far below any forgery


def unit(vectors: np.ndarray) -> np.ndarray:
    """Float32, C-contiguous, L2-normalised copy (FAISS inner product = cosine)."""
    x = np.ascontiguousarray(vectors, dtype=np.float32).copy()
    if len(x):
        faiss.normalize_L2(x)
    return x


def ivf_lists(n: int) -> int:
    """IVF list count: about 4 sqrt(n), a common FAISS rule, clamped to sane bounds."""
    return int(min(65536, max(16, 4 * math.sqrt(max(n, 1)))))


def build_index(vectors: np.ndarray, ids: np.ndarray, dim: int, *,
                ann_threshold: int | None = None, nprobe: int = DEFAULT_NPROBE,
                seed: int = 1234) -> faiss.Index:
    """Exact (flat) index below ``ann_threshold`` vectors (default
    :func:`default_ann_threshold`), IVF-Flat at or above it."""
    if ann_threshold is None:
        ann_threshold = default_ann_threshold()
    x = unit(vectors.reshape(-1, dim))
    ids = np.ascontiguousarray(ids, dtype=np.int64)
    if len(x) < ann_threshold:
        index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
    else:
        nlist = ivf_lists(len(x))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist,
                                   faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(seed)
        sample = x[rng.choice(len(x), min(len(x), nlist * 64), replace=False)]
        index.cp.seed = seed
        index.train(sample)
        index.nprobe = min(nprobe, nlist)
    if len(x):
        index.add_with_ids(x, ids)
    return index


def index_kind(index: faiss.Index) -> str:
    ivf = faiss.try_extract_index_ivf(index)
    return f"ivf{ivf.nlist}" if ivf is not None else "flat"


def to_distance(similarity: np.ndarray) -> np.ndarray:
    """Euclidean distance between unit vectors from their inner product."""
    return np.sqrt(np.clip(2.0 - 2.0 * similarity, 0.0, 4.0))


def stored_vectors(index: faiss.Index) -> tuple[np.ndarray, np.ndarray]:
    """(ids, unit vectors) that ``index`` actually holds, sorted by id: what a search can
    return, read back from the flat or IVF storage itself."""
    ivf = faiss.try_extract_index_ivf(index)
    if ivf is None:
        ids = faiss.vector_to_array(index.id_map).astype(np.int64)
        vectors = index.index.reconstruct_n(0, index.ntotal) if index.ntotal else \
            np.zeros((0, index.d), np.float32)
    else:
        lists = ivf.invlists
        parts = [(faiss.rev_swig_ptr(lists.get_ids(k), n).copy(),
                  faiss.rev_swig_ptr(lists.get_codes(k), n * ivf.code_size).copy()
                  .view(np.float32).reshape(n, -1))
                 for k in range(ivf.nlist) if (n := lists.list_size(k))]
        ids = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, np.int64)
        vectors = (np.concatenate([p[1] for p in parts]) if parts
                   else np.zeros((0, index.d), np.float32))
    order = np.argsort(ids, kind="stable")
    return ids[order], vectors[order]


def id_checksum(ids: Any) -> int:
    """Order-free checksum of a set of template ids (sum and xor folded together)."""
    a = np.fromiter(ids, dtype=np.int64) if not isinstance(ids, np.ndarray) else ids
    return int((int(a.sum()) * 1_000_003) ^ int(np.bitwise_xor.reduce(a)) if len(a) else 0)


def write_index_file(path: Path, index: faiss.Index, meta: dict[str, Any],
                     sealer: Sealer | None = None) -> None:
    """Write index + metadata to one file, replaced atomically (a crash leaves the old
    file or the new one, never half of one); sealed whole when ``sealer`` has a key (the
    vectors are templates)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("meta.json", json.dumps(meta))
        z.writestr("index.faiss", faiss.serialize_index(index).tobytes())
    data = buf.getvalue()
    with replacing(path, "wb", private=True) as fh:
        fh.write(sealer.seal(data, "index") if sealer is not None else data)


def read_index_file(path: Path, sealer: Sealer | None = None) -> tuple[faiss.Index,
                                                                      dict[str, Any]]:
    """Read what :func:`write_index_file` wrote; raises ValueError when it is not that
    (or is sealed with another key, or without ``sealer`` having one)."""
    try:
        data = path.read_bytes()
        data = (sealer or Sealer(None)).open(data, "index")
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            meta = json.loads(z.read("meta.json"))
            blob = np.frombuffer(z.read("index.faiss"), dtype=np.uint8)
        if meta.get("format") != FORMAT:
            raise ValueError(f"unknown format {meta.get('format')!r}")
        return faiss.deserialize_index(blob), meta
    except (zipfile.BadZipFile, KeyError, json.JSONDecodeError, RuntimeError, OSError,
            EOFError, StoreError) as exc:
        raise ValueError(f"unreadable ({type(exc).__name__})") from None


class GalleryIndex:
    """One model's templates in FAISS, plus template id -> person id."""

    def __init__(self, directory: Path, model_key: str, dim: int, *,
                 ann_threshold: int | None = None, nprobe: int = DEFAULT_NPROBE,
                 sealer: Sealer | None = None) -> None:
        self.path = Path(directory) / f"{model_key}.index"
        self.sealer = sealer
        self.model_key = model_key
        self.dim = dim
        self.ann_threshold = ann_threshold
        self.nprobe = nprobe
        threads = thread_count()
        if threads is not None:
            faiss.omp_set_num_threads(threads)  # searches and IVF training, like the networks
        self.index: faiss.Index = build_index(np.zeros((0, dim)), np.zeros(0), dim)
        self.owners: dict[int, int] = {}
        self.revision = -1

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @property
    def kind(self) -> str:
        return index_kind(self.index)

    def check(self, revision: int, owners: dict[int, int],
              vectors: np.ndarray) -> str | None:
        """Load the file and say why it cannot be used for this database state (None: it
        can, and is now loaded). Beside the metadata, the index's own vectors must equal the
        database's ``vectors`` (in the order of ``owners``' ids, sorted): the ids, count
        and revision in the file's metadata say nothing about what a search returns, and
        a file holding a stranger's vector under someone's template id would name them."""
        if not self.path.exists():
            return "missing"
        try:
            index, meta = read_index_file(self.path, self.sealer)
        except ValueError as exc:
            return str(exc)
        if meta.get("model") != self.model_key:
            return f"made by another model ({meta.get('model')})"
        if meta.get("revision") != revision:
            return f"out of step (index revision {meta.get('revision')}, database {revision})"
        if index.ntotal != len(owners) or meta.get("count") != len(owners):
            return f"holds {index.ntotal} templates, database {len(owners)}"
        if meta.get("checksum") != id_checksum(list(owners)):
            return "template ids differ from the database"
        ids, held = stored_vectors(index)
        if not np.array_equal(ids, np.sort(np.fromiter(owners, np.int64, len(owners)))):
            return "template ids differ from the database"
        if len(held) and float(np.abs(held - unit(vectors)).max()) > VECTOR_TOLERANCE:
            return "its vectors differ from the database's templates"
        self.index, self.owners, self.revision = index, owners, revision
        if (ivf := faiss.try_extract_index_ivf(index)) is not None:
            ivf.nprobe = min(self.nprobe, ivf.nlist)
        return None

    def held(self) -> tuple[int, int] | None:
        """(revision, template count) the file on disk says it reflects; None when there
        is no readable file."""
        if not self.path.is_file():
            return None
        try:
            _, meta = read_index_file(self.path, self.sealer)
        except ValueError:
            return None
        return int(meta.get("revision", -1)), int(meta.get("count", 0))

    def rebuild(self, revision: int, ids: np.ndarray, owners: np.ndarray,
                vectors: np.ndarray) -> None:
        self.index = build_index(vectors, ids, self.dim, ann_threshold=self.ann_threshold,
                                 nprobe=self.nprobe)
        self.owners = dict(zip(ids.tolist(), owners.tolist()))
        self.revision = revision
        self.save()

    def add(self, ids: list[int], vectors: np.ndarray, person_id: int) -> None:
        if ids:
            self.index.add_with_ids(unit(vectors), np.asarray(ids, dtype=np.int64))
            self.owners.update(dict.fromkeys(ids, person_id))

    def remove(self, ids: list[int]) -> None:
        if ids:
            self.index.remove_ids(np.asarray(ids, dtype=np.int64))
            for i in ids:
                self.owners.pop(i, None)

    def save(self, revision: int | None = None) -> None:
        if revision is not None:
            self.revision = revision
        write_index_file(self.path, self.index, {
            "format": FORMAT, "model": self.model_key, "revision": self.revision,
            "count": len(self), "checksum": id_checksum(list(self.owners)),
            "kind": self.kind}, self.sealer)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(distances, template ids), each (n, k); missing neighbours have id -1."""
        sims, ids = self.index.search(unit(np.atleast_2d(queries)), max(1, k))
        return to_distance(sims), ids
