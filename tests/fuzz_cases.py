"""Seeded generators of bad inputs for the reliability suite (tests/test_fuzz.py) and its
benchmark (bench/fuzz.py): broken, tiny, huge-by-header and odd files; special files
(FIFO, a link to /dev/zero, a link loop, a folder); odd arrays and objects.

Each case says what may happen: a load that works, or a faceid error whose exit code is
one of the documented ones for that input. Nothing else (a hang, another exception) is
allowed.
"""

from __future__ import annotations

import contextlib
import io
import os
import signal
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

FILE_CODES = {10, 11, 12, 13, 14, 15}  # FileMissing .. ImageTooLarge
FACE_CODES = {21, 22, 23, 24}  # NoFace .. LowQuality
DEADLINE_S = 20  # seconds any one case may take before it counts as a hang
SUFFIXES = (".jpg", ".png", ".jpeg", ".bmp", ".webp", ".gif", ".tif")


@dataclass
class Case:
    kind: str
    source: Any  # a path, an array or another object handed to load_image
    name: str  # what the error message must contain


def _png_header(width: int, height: int) -> bytes:
    """A PNG declaring width x height in its header, with almost no pixel data: what a
    decompression bomb looks like before it is decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


def file_cases(folder: Path, good: Path, n: int, seed: int = 0) -> list[Case]:
    """``n`` bad or odd image files written under ``folder`` (plus the special files),
    made from the real photo ``good``; file names are unique and kept short."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    raw = good.read_bytes()
    png = io.BytesIO()
    Image.open(good).save(png, "PNG")
    png_raw = png.getvalue()
    cases: list[Case] = []

    def add(kind: str, data: bytes, suffix: str | None = None) -> None:
        suffix = suffix or SUFFIXES[rng.integers(len(SUFFIXES))]
        path = folder / f"{len(cases):04d}-{kind}{suffix}"
        path.write_bytes(data)
        cases.append(Case(kind, path, path.name))

    makers = ["random", "truncated_jpeg", "truncated_png", "flipped_jpeg", "huge_header",
              "tiny", "text", "empty", "odd_mode"]
    for i in range(n):
        kind = makers[i % len(makers)]
        if kind == "random":
            add(kind, rng.integers(0, 256, int(rng.integers(1, 4096)), np.uint8).tobytes())
        elif kind == "truncated_jpeg":
            add(kind, raw[:int(rng.integers(1, len(raw) - 1))], ".jpg")
        elif kind == "truncated_png":
            add(kind, png_raw[:int(rng.integers(1, len(png_raw) - 1))], ".png")
        elif kind == "flipped_jpeg":
            data = bytearray(raw)
            for at in rng.integers(2, len(data), int(rng.integers(1, 64))):
                data[at] = int(rng.integers(256))
            add(kind, bytes(data), ".jpg")
        elif kind == "huge_header":
            side = int(rng.integers(20_000, 200_000))
            add(kind, _png_header(side, int(rng.integers(20_000, 200_000))), ".png")
        elif kind == "tiny":
            h, w = int(rng.integers(1, 16)), int(rng.integers(1, 3000))
            if rng.random() < 0.5:
                h, w = w, h
            buf = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(buf, "PNG")
            add(kind, buf.getvalue(), ".png")
        elif kind == "text":
            add(kind, f"not an image {i}\n".encode() * int(rng.integers(1, 50)))
        elif kind == "empty":
            add(kind, b"")
        else:
            mode = ["L", "P", "CMYK", "RGBA", "I;16", "1", "LA"][i % 7]
            img = Image.open(good).convert("RGB")
            img = img.resize((img.width - i // 7, img.height))  # each file its own bytes
            img = img.convert(mode) if mode != "I;16" else Image.fromarray(
                (np.asarray(img.convert("L"), np.uint16) * 257))
            buf = io.BytesIO()
            img.save(buf, "TIFF" if mode in ("CMYK", "I;16") else "PNG")
            add(kind, buf.getvalue(), ".tif" if mode in ("CMYK", "I;16") else ".png")
    cases.extend(special_cases(folder))
    return cases


def special_cases(folder: Path) -> list[Case]:
    """Files that are not regular files: each must be refused before anything reads it."""
    out = []
    fifo = folder / "fifo.jpg"
    os.mkfifo(fifo)
    out.append(Case("fifo", fifo, fifo.name))
    zero = folder / "zero-device.jpg"
    zero.symlink_to("/dev/zero")
    out.append(Case("dev_zero", zero, zero.name))
    loop = folder / "loop.jpg"
    loop.symlink_to(loop)
    out.append(Case("link_loop", loop, loop.name))
    (folder / "a-folder.jpg").mkdir()
    out.append(Case("folder", folder / "a-folder.jpg", "a-folder.jpg"))
    dangling = folder / "dangling.jpg"
    dangling.symlink_to(folder / "nowhere.jpg")
    out.append(Case("dangling", dangling, dangling.name))
    long_path = folder / ("x" * 5000 + ".jpg")
    out.append(Case("long_path", long_path, "xxxxxxxx"))
    return out


def object_cases(n: int, seed: int = 0) -> list[Case]:
    """``n`` arrays of odd shapes and types, and objects that are not images at all."""
    rng = np.random.default_rng(seed)
    cases = [Case("object", v, f"<{type(v).__name__}>" if not isinstance(v, (bytes, bytearray))
                  else "<bytes>")
             for v in (None, 5, 3.5, b"", b"GIF89a", bytearray(b"\x89PNG"), object(),
                       io.BytesIO(b"not an image"), io.BytesIO(b""))]
    dtypes = [np.uint8, np.uint16, np.int8, np.int64, np.float32, np.float64, bool,
              np.complex64, object]
    for i in range(n):
        ndim = int(rng.integers(0, 5))
        shape = tuple(int(rng.integers(0, 40)) for _ in range(ndim))
        if ndim == 3 and rng.random() < 0.7:
            shape = shape[:2] + (int(rng.integers(1, 6)),)
        dtype = dtypes[i % len(dtypes)]
        if dtype is object:
            arr = np.empty(shape, object)
        else:
            arr = np.asarray(rng.random(shape) * 300 - 20).astype(dtype)
            if np.issubdtype(arr.dtype, np.floating) and arr.size:
                arr.flat[0] = np.nan
        cases.append(Case("array", arr, "<array>"))
    return cases


@contextlib.contextmanager
def deadline(seconds: int = DEADLINE_S) -> Iterator[None]:
    """Fail the case (not the whole run) when it takes longer than ``seconds``: a hang."""
    def expired(*_):
        raise TimeoutError(f"no answer within {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_cli(*args: object, env: dict | None = None,
            timeout: int = DEADLINE_S) -> tuple[int, str, str]:
    """Run one faceid command in this process (the ``faceid`` script's entry point, so
    errors map to exit codes as in a shell); (exit code, stdout, stderr)."""
    import cli

    saved = dict(os.environ)
    os.environ.update(env or {})
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        with deadline(timeout), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.app(args=[str(a) for a in args], prog_name="faceid")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return code, out.getvalue(), err.getvalue()
