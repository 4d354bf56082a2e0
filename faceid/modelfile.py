"""Model files: a JSON document that says everything about an encoder that a decision
depends on (architecture, weights and their hash, chip and landmark template, embedding size,
training data, measured metrics) and its *view presets*: how many aligned views of a face are
encoded and averaged (test-time augmentation), each preset with its own calibrated tau and
probability fit, since averaging views changes the distance distribution.

Weights are never downloaded: they come from an installed package (``weights.package`` +
``weights.resource``) or a file beside the JSON (``weights.path``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from faceid.atomic import write_text
from faceid.errors import FaceIDError, FileMissing, InputError, ModelError
from faceid.files import open_regular, read_limited

DEFAULT_MODEL = Path(__file__).parent / "models" / "dlib_resnet_v1.json"
FORMAT = "faceid-model/1"
MAX_MODEL_FILE = 16 << 20  # a model description is a few kB of JSON


@dataclass
class Views:
    """A view preset: the face is aligned at each template ``scale`` (about the template's
    centre), optionally also mirrored, and the unit embeddings are averaged. ``tau`` and the
    logistic ``probability`` fit belong to the preset."""

    scales: tuple[float, ...]
    flip: bool
    tau: float
    probability: dict[str, float]
    calibration: dict[str, Any] = field(default_factory=dict)
    # how near a threshold a one-view distance must be for the mirror to be computed
    # (decisions on photos; None: always computed). bench.mirror_band chooses it.
    mirror_band: float | None = None

    @property
    def count(self) -> int:
        return len(self.scales) * (2 if self.flip else 1)

    def probability_same(self, distance: np.ndarray | float) -> np.ndarray | float:
        """P(same person | distance) from the preset's logistic fit."""
        z = self.probability["slope"] * np.asarray(distance) + self.probability["intercept"]
        return 1.0 / (1.0 + np.exp(-z))

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"scales": list(self.scales), "flip": self.flip, "tau": self.tau,
                               "probability": self.probability}
        if self.calibration:
            doc["calibration"] = self.calibration
        if self.mirror_band is not None:
            doc["mirror_band"] = self.mirror_band
        return doc


@dataclass
class ModelInfo:
    """The parsed model file. ``path`` is where it was read from (None when built in code)."""

    name: str
    architecture: str
    embedding_size: int
    weights: dict[str, Any]
    chip_size: int
    template: np.ndarray
    views: dict[str, Views]
    default_views: str
    architecture_kwargs: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def view_preset(self, name: str | None = None) -> Views:
        """The named preset (default: the model's ``default_views``)."""
        name = name or self.default_views
        if name not in self.views:
            raise ModelError(f"{self.path}: no view preset {name!r} "
                             f"(has: {', '.join(sorted(self.views))})")
        return self.views[name]

    def to_json(self) -> dict[str, Any]:
        doc = dict(self.extra)
        doc.update({
            "format": FORMAT, "name": self.name, "architecture": self.architecture,
            "architecture_kwargs": self.architecture_kwargs,
            "embedding_size": self.embedding_size, "weights": self.weights,
            "chip": {**doc.get("chip", {}), "size": self.chip_size,
                     "template": np.round(self.template, 3).tolist()},
            "default_views": self.default_views,
            "views": {k: v.to_json() for k, v in self.views.items()},
        })
        return doc


def read_json_document(path: Path, fmt: str, error: type[FaceIDError],
                       what: str = "model") -> dict[str, Any]:
    """The JSON object of a faceid model file of format ``fmt``; ``error`` (one line naming
    the file) when it is missing, unreadable, or of another kind. Shared by every kind of
    model file (encoders here, liveness classifiers)."""
    try:
        doc = json.loads(read_limited(path, MAX_MODEL_FILE, f"{what} file"))
    except FileMissing:
        raise error(f"{path}: {what} file not found") from None
    except InputError as exc:
        raise error(exc.message) from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise error(f"{path}: not a readable {what} file ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        found = doc.get("format") if isinstance(doc, dict) else None
        raise error(f"{path}: not a faceid {what} file (format {found!r})")
    return doc


def _mirror_band(preset: dict[str, Any]) -> float | None:
    if "mirror_band" not in preset:
        return None
    band = float(preset["mirror_band"])
    if not 0.0 <= band <= 2.0:  # distances of unit vectors lie in [0, 2]
        raise ValueError(f"mirror_band {band} is not in [0, 2]")
    return band


def load_model_info(path: str | Path | None = None) -> ModelInfo:
    """Read a model file (default: the bundled dlib ResNet v1 description)."""
    path = Path(path) if path is not None else DEFAULT_MODEL
    doc = read_json_document(path, FORMAT, ModelError)
    try:
        chip = doc["chip"]
        template = np.asarray(chip["template"], np.float64)
        if template.shape != (5, 2):
            raise ValueError("chip.template must be 5 (x, y) points")
        known = {"format", "name", "architecture", "architecture_kwargs", "embedding_size",
                 "weights", "views", "default_views"}
        views = {name: Views(tuple(float(x) for x in v["scales"]), bool(v["flip"]),
                             float(v["tau"]),
                             {k: float(v["probability"][k]) for k in ("slope", "intercept")},
                             v.get("calibration", {}),
                             _mirror_band(v))
                 for name, v in doc["views"].items()}
        if doc["default_views"] not in views:
            raise ValueError(f"default_views {doc['default_views']!r} is not a preset")
        return ModelInfo(
            name=doc["name"], architecture=doc["architecture"],
            embedding_size=int(doc["embedding_size"]), weights=doc["weights"],
            chip_size=int(chip["size"]), template=template, views=views,
            default_views=doc["default_views"],
            architecture_kwargs=doc.get("architecture_kwargs", {}),
            extra={k: v for k, v in doc.items() if k not in known}, path=path)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{path}: incomplete model file ({exc})") from None


def save_model_info(info: ModelInfo, path: str | Path) -> None:
    """Write ``info`` as JSON, atomically (a crash never leaves half a model file)."""
    write_text(Path(path), json.dumps(info.to_json(), indent=2) + "\n")


def weights_path(info: ModelInfo) -> Path:
    """Locate the weights file named by the model file, without importing its package
    (``face_recognition_models`` imports ``pkg_resources`` on import)."""
    w = info.weights
    if "path" in w:
        base = info.path.parent if info.path else Path.cwd()
        found = (base / w["path"]).resolve()
    else:
        spec = importlib.util.find_spec(w["package"])
        if spec is None or not spec.submodule_search_locations:
            raise ModelError(f"weights package {w['package']!r} is not installed "
                             "(run scripts/setup.sh)")
        found = Path(next(iter(spec.submodule_search_locations))) / w["resource"]
    if not found.is_file():
        raise ModelError(f"{found}: weights file not found")
    return found


def mtcnn_weights_dir() -> Path:
    """facenet-pytorch's ``data`` folder (MTCNN's ``pnet.pt`` and friends), located without
    importing the package (its detection module imports torchvision)."""
    spec = importlib.util.find_spec("facenet_pytorch")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("facenet-pytorch is not installed: its wheel carries the MTCNN "
                         "weights (scripts/setup.sh installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def read_checked(path: Path, sha256: str, error: type[FaceIDError], what: str) -> bytes:
    """The bytes of ``path`` after checking them against ``sha256`` (the check and the
    caller's load use the same bytes); ``error`` naming the file when it is missing,
    unreadable or not those bytes. For the weights model files point at."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: {what} file not found") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what} ({exc})") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise error(f"{path}: weights hash {digest[:12]}... does not match the model file's "
                    f"{sha256[:12]}... (damaged or replaced file)")
    return data


def verify_weights(info: ModelInfo, path: Path) -> None:
    """Refuse weights whose SHA-256 differs from the model file's (wrong or damaged file)."""
    want = info.weights.get("sha256")
    if not want:
        return
    try:
        with open_regular(path) as fh:
            digest = hashlib.file_digest(fh, "sha256").hexdigest()
    except InputError as exc:
        raise ModelError(exc.message) from None
    if digest != want:
        raise ModelError(f"{path}: weights hash {digest[:12]}... does not match the model "
                         f"file's {want[:12]}...")
