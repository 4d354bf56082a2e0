"""Result rows of batch commands (verify-pairs, identify) written as CSV or JSON: one
writer, so every batch command's file has the same shape rules and is replaced atomically
(a reader never sees half a file)."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from faceid.atomic import replacing


def write_rows(rows: Sequence[dict[str, Any]], fields: Sequence[str], path: Path) -> None:
    """CSV or JSON by extension (.json -> a JSON list, anything else -> CSV with
    ``fields`` as the header)."""
    with replacing(path) as fh:
        if path.suffix.lower() == ".json":
            json.dump(list(rows), fh, indent=1)
        else:
            writer = csv.DictWriter(fh, fields)
            writer.writeheader()
            writer.writerows(rows)
