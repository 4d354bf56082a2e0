"""Result rows of batch commands (verify-pairs, identify) written as CSV or JSON: one
writer, so every batch command's file has the same shape rules and is replaced atomically
(a reader never sees half a file)."""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def write_rows(rows: Sequence[dict[str, Any]], fields: Sequence[str], path: Path) -> None:
    """CSV or JSON by extension (.json -> a JSON list, anything else -> CSV with
    ``fields`` as the header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with tmp.open("w", newline="") as fh:
        if path.suffix.lower() == ".json":
            json.dump(list(rows), fh, indent=1)
        else:
            writer = csv.DictWriter(fh, fields)
            writer.writeheader()
            writer.writerows(rows)
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)
