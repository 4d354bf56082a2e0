"""Load any image the user hands us as an (H, W, 3) uint8 RGB array, or fail with one clear
error naming the file.

Why not ``cv2.imread``: it ignores EXIF orientation, silently returns ``None`` on bad input
and decodes before we can check the size. Pillow reads the header first, so a 20000x20000
image is refused before a byte of pixel data is decoded.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceid.config import env_int
from faceid.errors import (CorruptImage, EmptyFile, ImageTooLarge, InputError, NotAnImage,
                           describe)
from faceid.files import open_regular

DEFAULT_MAX_PIXELS = 50_000_000  # ~8K x 6K; override with FACEID_MAX_PIXELS
# Our own limit is checked on the header, before decoding, with a message that names the
# size. Pillow's decompression-bomb guard stays on for the whole process (other code in it
# may rely on it); it can only be stricter than ours above its own error limit, so that is
# the highest FACEID_MAX_PIXELS accepts, and its warning (ours already decided) is muted
# around our own opens only.
PILLOW_LIMIT = 2 * (Image.MAX_IMAGE_PIXELS or 89_478_485)


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif",
                            ".pgm", ".ppm", ".pbm", ".pnm"})


def is_image_file(path: Path) -> bool:
    """Whether a folder walk should treat ``path`` as a photo: an image suffix (then a
    broken or special file is reported by the load, never skipped in silence), or, under
    any other name, content Pillow recognises (ORL's ``.pgm`` was always read by the
    decoder; extensionless exports too). The one check every folder walk uses."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return True
    try:
        with open_regular(path) as fh, Image.open(fh):
            return True
    except (InputError, OSError, UnidentifiedImageError, ValueError, SyntaxError):
        return False


def image_files(folder: Path, recursive: bool = False) -> list[Path]:
    """The photos in ``folder`` (and its sub-folders when ``recursive``), in name order."""
    entries = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(p for p in entries if not (recursive and p.is_dir()) and is_image_file(p))


def max_pixels() -> int:
    """The pixel limit in force (``FACEID_MAX_PIXELS`` or the default 50 MP)."""
    return env_int("FACEID_MAX_PIXELS", DEFAULT_MAX_PIXELS, minimum=1, maximum=PILLOW_LIMIT)


ImageSource = str | Path | np.ndarray | Image.Image | bytes | BinaryIO


def source_name(source: object) -> str:
    """How messages name an image source: its path, or its kind in angle brackets."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, np.ndarray):
        return "<array>"
    if isinstance(source, Image.Image):
        return "<image>"
    if isinstance(source, (bytes, bytearray, memoryview)):
        return "<bytes>"
    name = getattr(source, "name", None)  # a file object: the file it reads, or an upload's
    return name if isinstance(name, str) and name else f"<{type(source).__name__}>"


def load_image(source: ImageSource, *, limit: int | None = None) -> np.ndarray:
    """Return ``source`` as a C-contiguous (H, W, 3) uint8 RGB array.

    ``source`` may be a path, encoded bytes, a binary file object, a PIL image or an array
    (grey (H, W), RGB, RGBA; uint8, uint16, or float in 0..1). EXIF orientation is applied;
    grey, palette, RGBA, 16-bit and CMYK images are converted. ``limit`` caps width x height
    (default :func:`max_pixels`). Anything else, or anything unusable, raises an
    :class:`InputError` naming the source, never another exception.
    """
    limit = max_pixels() if limit is None else limit
    name = source_name(source)
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, name, limit)
    if isinstance(source, Image.Image):
        return _decoding(name, lambda: _pil_to_rgb(source, name, limit))
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise EmptyFile(describe(name, "no bytes"))
        return _decoding(name, lambda: _open_pil(io.BytesIO(source), name, limit))
    if hasattr(source, "read"):
        return _decoding(name, lambda: _open_pil(source, name, limit))
    if not isinstance(source, (str, Path)):
        raise NotAnImage(describe(name, f"cannot read an image from a {type(source).__name__} object"
                                        " (give a path, bytes, a file, a PIL image or an "
                                        "array)"))
    path = Path(source)
    with open_regular(path) as fh:
        if os.fstat(fh.fileno()).st_size == 0:
            raise EmptyFile(describe(path, "empty file (0 bytes)"))
        return _decoding(str(path), lambda: _open_pil(fh, str(path), limit))


def _open_pil(fh: BinaryIO, name: str, limit: int) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(fh) as img:
            _check_size(img.size, name, limit)
            return _pil_to_rgb(img, name, limit)


def _decoding(name: str, decode: Callable[[], np.ndarray]) -> np.ndarray:
    """Run ``decode`` with Pillow's failures turned into one-line errors naming ``name``."""
    try:
        return decode()
    except UnidentifiedImageError:
        raise NotAnImage(describe(name, "not an image (unrecognised format)")) from None
    except Image.DecompressionBombError as exc:  # above Pillow's limit, so above ours too
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size = f"image of {int(found.group(1)):,} pixels" if found else "image"
        raise ImageTooLarge(describe(name, f"{size} exceeds the {max_pixels():,}-pixel limit"
                                           " (set FACEID_MAX_PIXELS to raise it)")) from None
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError, AttributeError, EOFError) as exc:
        # AttributeError: a PIL image that was closed ("'NoneType' has no attribute ...")
        raise CorruptImage(describe(name, f"corrupt, truncated or closed image ({exc})")) from None


def _check_size(size: tuple[int, int], name: object, limit: int) -> None:
    w, h = size
    if w * h > limit:
        raise ImageTooLarge(describe(name, f"{w}x{h} image exceeds the {limit:,}-pixel limit "
                                           "(set FACEID_MAX_PIXELS to raise it)"))
    if w == 0 or h == 0:
        raise CorruptImage(describe(name, f"image has no pixels ({w}x{h})"))


def _pil_to_rgb(img: Image.Image, name: str, limit: int) -> np.ndarray:
    _check_size(img.size, name, limit)
    img.load()  # decode now so truncation surfaces here, inside our error mapping
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _array_to_rgb(np.asarray(img), name, limit)
    return np.ascontiguousarray(np.asarray(img.convert("RGB")))


def _array_to_rgb(arr: np.ndarray, name: str, limit: int) -> np.ndarray:
    if arr.dtype.kind not in "uifb":
        raise NotAnImage(describe(name, f"array of {arr.dtype} values is not an image"))
    if arr.dtype.kind == "b":
        arr = arr.astype(np.uint8) * 255
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise NotAnImage(describe(name, f"array of shape {arr.shape} is not an image"))
    _check_size((arr.shape[1], arr.shape[0]), name, limit)
    if arr.dtype != np.uint8:
        arr = _to_uint8(arr)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    return np.ascontiguousarray(arr[:, :, :3])


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale 16-bit (or wider int) data by its type's range and 0..1 floats by 255."""
    if np.issubdtype(arr.dtype, np.floating):
        top = 1.0 if float(np.nanmax(arr)) <= 1.0 else 255.0
        return np.clip(np.nan_to_num(arr) * (255.0 / top), 0, 255).round().astype(np.uint8)
    top = 65535 if arr.max(initial=0) > 255 else 255
    return (arr.astype(np.float64) * (255.0 / top)).round().clip(0, 255).astype(np.uint8)
