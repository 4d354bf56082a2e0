"""Running a network: an ONNX export of the torch network, run by OpenCV's DNN module or by
ONNX Runtime, or torch itself.

Why: importing torch costs about 2 s of CPU in every process, more than `faceid compare`
may spend in all (issue 14). OpenCV, which faceid imports anyway, runs the small networks
(MTCNN's stages, the liveness nets) faster than torch and faster than ONNX Runtime; ONNX
Runtime runs the encoder's 150-px ResNet about a third faster than OpenCV
(``python -m bench.runtimes``), and the encoder is the largest part of every decision's
CPU (issue 15).
So each network names the engine that runs it fastest (``prefer``), and
``FACEID_RUNTIME`` can hold every network to one: ``auto`` (the default: each its
preferred engine), ``opencv`` or ``torch``. ``tests/test_netrun.py`` holds every engine to
torch's arithmetic.

Each network is exported once, by torch, into the user's cache (``FACEID_CACHE``, else
``$XDG_CACHE_HOME/faceid``, else ``~/.cache/faceid``), keyed by a digest of what defines it
(architecture, weights hash, this exporter's version, the engine and its version), and later
processes load the export without importing torch. An export is checked against torch on a
fixed input, by the engine that will run it, before it is used or kept; a cache file is
checked against the hash on its first line before it is loaded.
Where no export can be made (no ``onnx`` package, an unwritable cache, a GPU device,
``FACEID_RUNTIME=torch``) the network runs in torch, as before.

Nets are callables from one float32 NCHW array to a tuple of float32 arrays. OpenCV nets
are not safe to call from two threads at once, so concurrent calls take copies from a
pool; an ONNX Runtime session serves concurrent calls itself.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import cv2
import numpy as np

from faceid.atomic import replacing
from faceid.config import apply_threads, thread_count
from faceid.errors import UsageError, WriteFailed

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

EXPORT_VERSION = 1  # bump when the export itself changes, so old cache files are not used
RUNTIMES = ("auto", "opencv", "torch")
ENGINES = ("opencv", "onnxruntime")
ENGINE_NAMES = {"opencv": "OpenCV", "onnxruntime": "ONNX Runtime"}
TOLERANCE = 1e-3  # largest |engine - torch| accepted on the check input
CACHE_SUFFIX = "onnx-cache"  # an ONNX file behind one header line: not for other tools
CACHE_HEADER = b"faceid-onnx-export/1 sha256="

Outputs = tuple[np.ndarray, ...]


class Net(Protocol):
    """A network: (N, C, H, W) array (any real dtype; made float32 once, inside) -> its
    outputs, float32, in the torch module's order."""

    def __call__(self, x: np.ndarray) -> Outputs: ...


def cache_dir() -> Path:
    """Where exports are kept (see the module docstring)."""
    if os.environ.get("FACEID_CACHE", "").strip():
        return Path(os.environ["FACEID_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache"
    return Path(base) / "faceid"


def runtime() -> str:
    """``FACEID_RUNTIME``: ``auto`` (the default), ``opencv`` or ``torch``."""
    value = os.environ.get("FACEID_RUNTIME", "").strip().lower() or "auto"
    if value not in RUNTIMES:
        raise UsageError(f"FACEID_RUNTIME={value[:40]!r} is not one of {', '.join(RUNTIMES)}")
    return value


class OpenCVNet:
    """An ONNX export run by OpenCV's DNN module. A parsed net serves one call at a time, so
    concurrent callers each take one from a pool (parsed on demand, kept for reuse): as
    many copies as calls ever overlapped, not one per thread that ever called (the server's
    request threads are many). The first copy is parsed here, so an export OpenCV cannot
    read fails at load time, not in a door's loop."""

    def __init__(self, onnx: bytes, outputs: int) -> None:
        self._onnx = np.frombuffer(onnx, np.uint8)
        self._outputs = [f"out{i}" for i in range(outputs)]
        self._lock = threading.Lock()
        self._idle = [cv2.dnn.readNetFromONNX(self._onnx)]

    def __call__(self, x: np.ndarray) -> Outputs:
        with self._lock:
            net = self._idle.pop() if self._idle else None
        if net is None:
            net = cv2.dnn.readNetFromONNX(self._onnx)
        try:
            net.setInput(np.ascontiguousarray(x, np.float32))
            return tuple(net.forward(self._outputs))
        finally:
            with self._lock:
                self._idle.append(net)


class OrtNet:
    """An ONNX export run by ONNX Runtime. One session serves concurrent calls (its ``run``
    is thread-safe). Its threads follow ``FACEID_THREADS`` and never spin while idle: a
    spinning pool takes a core from the other requests on a 2-core machine."""

    def __init__(self, onnx: bytes, outputs: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        threads = thread_count()
        if threads is not None:
            options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3  # errors only: its notes on the graph are not ours
        self._session = ort.InferenceSession(onnx, options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name
        self._outputs = [f"out{i}" for i in range(outputs)]

    def __call__(self, x: np.ndarray) -> Outputs:
        return tuple(self._session.run(self._outputs,
                                       {self._input: np.ascontiguousarray(x, np.float32)}))


class TorchNet:
    """A torch module in eval mode, run in channels-last layout (faster on a CPU, same
    arithmetic) without autograd; outputs come back as numpy arrays."""

    def __init__(self, module: torch.nn.Module, device: str = "cpu") -> None:
        import torch

        apply_threads()
        self.device = torch.device(device)
        self.module = module.eval().to(self.device, memory_format=torch.channels_last)

    def __call__(self, x: np.ndarray) -> Outputs:
        import torch

        with torch.inference_mode():
            t = torch.from_numpy(np.ascontiguousarray(x, np.float32)).to(self.device)
            out = self.module(t.contiguous(memory_format=torch.channels_last))
        out = out if isinstance(out, tuple) else (out,)
        return tuple(o.float().cpu().numpy() for o in out)


def load_net(name: str, identity: dict[str, object] | None, build: Callable[[], torch.nn.Module],
             example: tuple[int, int, int, int], *, outputs: int,
             value_range: tuple[float, float], dynamic_size: bool = False,
             device: str = "cpu", prefer: str = "opencv") -> Net:
    """The network ``build`` makes, run from the cached export when there is one (``build``
    is then never called, and torch never imported); else built, exported, checked and
    cached. ``prefer`` is the engine that runs this network fastest (``ENGINES``; OpenCV
    when ``FACEID_RUNTIME=opencv`` or the preferred one is not installed). ``identity`` is
    everything that defines the weights (hashes included): its digest names the cache file
    (None: nothing can name them, so torch runs them). ``example`` is an input shape for the
    export and its check (uniform noise over ``value_range``, the inputs' range);
    ``dynamic_size`` lets the export take any height and width (MTCNN's P-Net)."""
    apply_threads()
    if identity is None or device != "cpu" or runtime() == "torch":
        return TorchNet(build(), device)
    engine = _engine(prefer)
    defined = {**identity, "export": EXPORT_VERSION, **engine_version(engine)}
    key = hashlib.sha256(json.dumps(defined, sort_keys=True).encode()).hexdigest()[:20]
    try:
        path: Path | None = cache_dir() / f"{name}-{key}.{CACHE_SUFFIX}"
    except RuntimeError:  # no home directory to find a cache in: export in memory only
        path = None
    cached = read_cached(path) if path is not None else None
    if cached is not None:
        try:
            return _run_by(engine, cached, outputs)
        except Exception as exc:  # noqa: BLE001 - each engine has its own parse errors
            log.warning("%s: %s cannot read it (%s); exporting it again", path,
                        ENGINE_NAMES[engine], str(exc).strip().splitlines()[-1])
    torch_net = TorchNet(build())
    onnx = _export(torch_net, engine, example, value_range, outputs, dynamic_size)
    if onnx is None:
        return torch_net
    if path is not None:
        _write_cached(path, onnx)
    return _run_by(engine, onnx, outputs)


def _engine(prefer: str) -> str:
    """The engine that runs a network preferring ``prefer``: OpenCV under
    ``FACEID_RUNTIME=opencv`` or when ONNX Runtime is not installed (logged)."""
    if prefer not in ENGINES:
        raise ValueError(f"unknown engine {prefer!r}")
    if prefer == "onnxruntime" and runtime() == "auto":
        if importlib.util.find_spec("onnxruntime") is not None:
            return prefer
        log.warning("onnxruntime is not installed; OpenCV runs the network (slower)")
    return "opencv"


def engine_version(engine: str) -> dict[str, str]:
    """What names the engine in an export's cache key (an export checked by one version is
    not trusted to another)."""
    if engine == "onnxruntime":
        import onnxruntime

        return {"onnxruntime": onnxruntime.__version__}
    return {"opencv": cv2.__version__}


def _run_by(engine: str, onnx: bytes, outputs: int) -> Net:
    return OrtNet(onnx, outputs) if engine == "onnxruntime" else OpenCVNet(onnx, outputs)


def read_cached(path: Path) -> bytes | None:
    """The export kept at ``path``, if it is there and its bytes match the hash written
    on its first line."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    header, _, onnx = data.partition(b"\n")
    if header != CACHE_HEADER + hashlib.sha256(onnx).hexdigest().encode():
        log.warning("%s: damaged (its hash does not match); exporting it again", path)
        return None
    return onnx


def _write_cached(path: Path, onnx: bytes) -> None:
    """Keep the export for later processes, its hash on a first line, written atomically
    (two processes exporting at once each leave a whole file); a cache that cannot be
    written only costs later processes the export again."""
    try:
        with replacing(path, "wb") as fh:
            fh.write(CACHE_HEADER + hashlib.sha256(onnx).hexdigest().encode() + b"\n")
            fh.write(onnx)
    except WriteFailed as exc:
        log.warning("network export not cached: %s", exc.message)


def _export(net: TorchNet, engine: str, example: tuple[int, int, int, int],
            value_range: tuple[float, float], outputs: int,
            dynamic_size: bool) -> bytes | None:
    """``net`` as ONNX bytes, or None (logged) when it cannot be exported or ``engine``'s
    run of the export differs from torch's on a fixed input."""
    import io
    import warnings

    import torch

    names = [f"out{i}" for i in range(outputs)]
    axes: dict[int, str] = {0: "n", 2: "h", 3: "w"} if dynamic_size else {0: "n"}
    x = np.random.default_rng(0).uniform(*value_range, example).astype(np.float32)
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic
            module = net.module.to(memory_format=torch.contiguous_format)
            torch.onnx.export(module, (torch.from_numpy(x),), buf, dynamo=False,
                              input_names=["x"], output_names=names,
                              dynamic_axes={n: axes for n in ["x", *names]})
            net.module.to(memory_format=torch.channels_last)
        onnx = buf.getvalue()
        got = _run_by(engine, onnx, outputs)(x)
    except Exception as exc:  # noqa: BLE001 - any failure leaves the network on torch
        log.warning("network not exported to %s (%s); running it in torch",
                    ENGINE_NAMES[engine], exc)
        return None
    want = net(x)
    error = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
    if len(got) != len(want) or error > TOLERANCE:
        log.warning("%s's run of the export differs from torch's by %.2g; running it "
                    "in torch", ENGINE_NAMES[engine], error)
        return None
    return onnx
