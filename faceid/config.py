"""Settings read from the environment, validated where they are read: a junk value is a
usage error naming the variable (exit 2), never a bare ``ValueError`` from deep inside."""

from __future__ import annotations

import math
import os

from faceid.errors import UsageError


def env_float(name: str, default: float, *, low: float, high: float,
              low_open: bool = False) -> float:
    """``$name`` as a finite number in [low, high] (``(low, high]`` with ``low_open``), or
    ``default`` when unset or empty."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"{name}={text[:40]!r} is not a number") from None
    below = value <= low if low_open else value < low
    if not math.isfinite(value) or below or value > high:
        bracket = "(" if low_open else "["
        raise UsageError(f"{name}={text[:40]!r} is outside {bracket}{low:g}, {high:g}]")
    return value


def env_int(name: str, default: int, *, minimum: int, maximum: int = 2**62) -> int:
    """``$name`` as a whole number in [minimum, maximum], or ``default`` when unset."""
    text = os.environ.get(name, "").strip().replace("_", "")
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"{name}={text[:40]!r} is not a whole number") from None
    if not minimum <= value <= maximum:
        raise UsageError(f"{name}={text[:40]!r} is outside [{minimum:,}, {maximum:,}]")
    return value


def thread_count() -> int | None:
    """CPU threads the networks may use: ``FACEID_THREADS`` (``faceid --threads``) when
    set, else every core unless ``OMP_NUM_THREADS`` says otherwise (None: leave each
    library's own default). On a busy machine every core oversubscribes (10x slower
    measured on 2 shared cores): set 1 there. Each library applies it where it is loaded
    (torch in the encoder and detector, OpenCV's YuNet, FAISS in the index)."""
    if os.environ.get("FACEID_THREADS", "").strip():
        return env_int("FACEID_THREADS", 1, minimum=1, maximum=1024)
    if "OMP_NUM_THREADS" not in os.environ:
        return os.cpu_count() or 1
    return None


BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")


def pin_blas_threads() -> None:
    """Hold numpy's BLAS to ``FACEID_THREADS`` too. BLAS reads its thread count once, when
    numpy is first imported, so this runs first thing (the command line's settings); an
    environment that already names a count keeps it. Also what keeps a listing command's
    numpy import from starting a thread per core."""
    if os.environ.get("FACEID_THREADS", "").strip():
        n = str(env_int("FACEID_THREADS", 1, minimum=1, maximum=1024))
        for name in BLAS_THREADS:
            os.environ.setdefault(name, n)


def apply_threads() -> None:
    """Apply :func:`thread_count` to OpenCV, which runs the networks (``faceid/netrun.py``),
    and to torch when it is loaded (a network that runs in torch, training). Called where a
    network is loaded; it never imports torch itself (about 2 s of CPU)."""
    n = thread_count()
    if n is not None:
        import sys

        import cv2

        cv2.setNumThreads(n)
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(n)
