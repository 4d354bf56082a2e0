"""Load any image the user hands us as an (H, W, 3) uint8 RGB array, or fail with one clear
error naming the file.

Why not ``cv2.imread``: it ignores EXIF orientation, silently returns ``None`` on bad input
and decodes before we can check the size. Pillow reads the header first, so a 20000x20000
image is refused before a byte of pixel data is decoded.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from faceid.errors import (CorruptImage, EmptyFile, FileMissing, ImageTooLarge, InputError,
                           NotAFile, NotAnImage, describe)

DEFAULT_MAX_PIXELS = 50_000_000  # ~8K x 6K; override with FACEID_MAX_PIXELS
# Our own limit (checked on the header, before decoding) replaces Pillow's bomb check, which
# only warns up to 178 MP and reports an error that names no size.
Image.MAX_IMAGE_PIXELS = None


def max_pixels() -> int:
    """The pixel limit in force (``FACEID_MAX_PIXELS`` or the default 50 MP)."""
    return int(os.environ.get("FACEID_MAX_PIXELS", DEFAULT_MAX_PIXELS))


ImageSource = str | Path | np.ndarray | Image.Image


def load_image(source: ImageSource, *, limit: int | None = None) -> np.ndarray:
    """Return ``source`` as a C-contiguous (H, W, 3) uint8 RGB array.

    ``source`` may be a path, a PIL image or an array (grey (H, W), RGB, RGBA; uint8,
    uint16, or float in 0..1). EXIF orientation is applied; grey, palette, RGBA, 16-bit and
    CMYK images are converted. ``limit`` caps width x height (default :func:`max_pixels`).
    """
    limit = max_pixels() if limit is None else limit
    if isinstance(source, np.ndarray):
        return _array_to_rgb(source, "<array>", limit)
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source, "<image>", limit)
    return _load_path(Path(source), limit)


def _load_path(path: Path, limit: int) -> np.ndarray:
    if not path.exists():
        raise FileMissing(describe(path, "no such file"))
    if not path.is_file():
        raise NotAFile(describe(path, "is a directory, not an image file" if path.is_dir()
                                else "is not a regular file"))
    if path.stat().st_size == 0:
        raise EmptyFile(describe(path, "empty file (0 bytes)"))
    try:
        with Image.open(path) as img:
            _check_size(img.size, path, limit)
            return _pil_to_rgb(img, str(path), limit)
    except UnidentifiedImageError:
        raise NotAnImage(describe(path, "not an image (unrecognised format)")) from None
    except PermissionError:
        raise NotAFile(describe(path, "permission denied")) from None
    except InputError:
        raise
    except (OSError, SyntaxError, ValueError) as exc:
        raise CorruptImage(describe(path, f"corrupt or truncated image ({exc})")) from None


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
