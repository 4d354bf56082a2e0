"""Pair lists for batch verification: a CSV (``img1,img2[,label]``, header optional) or an
LFW ``pairs.txt`` (View 1 ``pairsDev*.txt`` or View 2 with its 10 folds).

A malformed file as a whole is a :class:`PairsFileError`; a row that names a missing image is
not (that is reported in the row's result when the image fails to load).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from faceid.errors import InputError, PairsFileError
from faceid.files import read_limited

MAX_LIST_BYTES = 256 << 20  # a pair list past 256 MiB is not a pair list
MAX_FIELD = 4096  # characters in one CSV field (a path)
LFW_IMAGE_DIRS = ("lfw-deepfunneled", "lfw_funneled", "lfw")
LABEL_WORDS = {"1": 1, "0": 0, "same": 1, "different": 0, "true": 1, "false": 0,
               "match": 1, "mismatch": 0}


@dataclass(frozen=True)
class Pair:
    a: Path
    b: Path
    label: int | None  # 1 same person, 0 different, None unknown
    fold: int | None   # LFW fold number (0-based), None for CSV lists
    line: int          # 1-based line in the source file, for messages


def read_pairs(path: str | Path, root: str | Path | None = None) -> list[Pair]:
    """Read a pair list. ``root``: the folder image paths are relative to (for LFW, the
    dataset folder or its image folder; for CSV, default the CSV's own folder)."""
    path = Path(path)
    try:
        # utf-8-sig: spreadsheet programs start a CSV with a byte-order mark
        lines = read_limited(path, MAX_LIST_BYTES, "pair list").decode("utf-8-sig").splitlines()
    except InputError as exc:
        raise PairsFileError(exc.message) from None
    except UnicodeDecodeError as exc:
        raise PairsFileError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    first = next((ln.split() for ln in lines if ln.strip()), None)
    if first is None:
        raise PairsFileError(f"{path}: pair list is empty")
    if all(tok.isdigit() for tok in first) and len(first) in (1, 2):
        return _read_lfw(path, lines, root)
    return _read_csv(path, lines, Path(root) if root else path.parent)


def lfw_image_dir(root: str | Path) -> Path:
    """The folder holding ``<Name>/<Name>_NNNN.jpg`` given an LFW dataset or image folder."""
    root = Path(root)
    for sub in LFW_IMAGE_DIRS:
        if (root / sub).is_dir():
            return root / sub
    return root


def lfw_path(images: Path, name: str, number: str) -> Path:
    return images / name / f"{name}_{int(number):04d}.jpg"


def _read_lfw(path: Path, lines: list[str], root: str | Path | None) -> list[Pair]:
    start = next(i for i, ln in enumerate(lines) if ln.strip())
    header = lines[start].split()
    folds, per_fold = (1, int(header[0])) if len(header) == 1 else map(int, header)
    if folds < 1 or per_fold < 1:
        raise PairsFileError(f"{path}:{start + 1}: the header must give at least one pair")
    images = lfw_image_dir(root if root is not None else path.parent)
    pairs: list[Pair] = []
    for n, line in enumerate(lines[start + 1:], start=start + 2):
        f = line.split()
        if not f:
            continue
        k = len(pairs)
        fold = k // (2 * per_fold)
        numbers = f[1:] if len(f) == 3 else f[1::2]
        if len(f) in (3, 4) and not all(x.isdigit() and len(x) < 9 for x in numbers):
            raise PairsFileError(f"{path}:{n}: image numbers must be whole numbers")
        if len(f) == 3:
            pairs.append(Pair(lfw_path(images, f[0], f[1]), lfw_path(images, f[0], f[2]), 1, fold, n))
        elif len(f) == 4:
            pairs.append(Pair(lfw_path(images, f[0], f[1]), lfw_path(images, f[2], f[3]), 0, fold, n))
        else:
            raise PairsFileError(f"{path}:{n}: expected 'name i j' or 'name1 i name2 j'")
    if len(pairs) != 2 * folds * per_fold:
        raise PairsFileError(f"{path}: header promises {2 * folds * per_fold} pairs, "
                             f"found {len(pairs)}")
    return pairs


def _read_csv(path: Path, lines: list[str], base: Path) -> list[Pair]:
    pairs: list[Pair] = []
    for n, line in enumerate(lines, start=1):
        try:
            row = [c.strip() for c in next(csv.reader([line]), [])]
        except csv.Error as exc:
            raise PairsFileError(f"{path}:{n}: not a CSV row ({exc})") from None
        if any(len(c) > MAX_FIELD for c in row):
            raise PairsFileError(f"{path}:{n}: a field is longer than {MAX_FIELD} characters")
        if not row or not any(row) or row[0].startswith("#"):
            continue
        if n == 1 and row[0].lower() in ("img1", "image1", "a", "left", "path1"):
            continue
        if len(row) not in (2, 3):
            raise PairsFileError(f"{path}:{n}: expected img1,img2[,label], got {len(row)} fields")
        label = None
        if len(row) == 3 and row[2] != "":
            if row[2].lower() not in LABEL_WORDS:
                raise PairsFileError(f"{path}:{n}: label {row[2]!r} is not 1/0/same/different")
            label = LABEL_WORDS[row[2].lower()]
        pairs.append(Pair(base / row[0], base / row[1], label, None, n))
    if not pairs:
        raise PairsFileError(f"{path}: no pairs in file")
    return pairs
