"""A site's settings in one file, ``faceid.toml``: the data directory, the database URL, the
key file, and per-command defaults (a door's name and camera, the server's port).

Where: ``--config FILE`` (or ``FACEID_CONFIG``), else ``$FACEID_HOME/faceid.toml``, else
``/etc/faceid/faceid.toml``; none is fine. Precedence, highest first: a flag, the
environment, the file, faceid's default. The file sets option defaults through Click's
``default_map`` (which Click already ranks below flags and environment variables) and the
settings that only exist as environment variables (``key_file``, ``threads``,
``detector``) only where the environment does not set them. An unknown key or a value of
the wrong type is a usage error naming the file (exit 2), so a typo cannot be ignored.

    home = "/var/lib/faceid"
    db = "postgresql://faceid@localhost/faceid"
    key_file = "/etc/faceid/site.key"
    threads = 1

    [serve]
    host = "0.0.0.0"
    port = 8000

    [watch]
    door = "front"
    source = "rtsp://camera-1/stream"
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from faceid.errors import UsageError
from faceid.files import read_limited

ENVIRONMENT = {"key_file": "FACEID_KEY_FILE", "threads": "FACEID_THREADS",
               "detector": "FACEID_DETECTOR", "key": None}  # a key in a file: refused
SYSTEM_FILE = Path("/etc/faceid/faceid.toml")


def find(explicit: Path | None) -> Path | None:
    """The settings file in force, or None."""
    if explicit is not None:
        return explicit
    home = os.environ.get("FACEID_HOME")
    for candidate in ([Path(home).expanduser() / "faceid.toml"] if home else []) + [SYSTEM_FILE]:
        if candidate.is_file():
            return candidate
    return None


def read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(read_limited(path, 1 << 20, "settings file").decode())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not a readable settings file ({exc})") from None


def apply(path: Path, group: Any) -> dict[str, Any]:
    """Load ``path`` and return the ``default_map`` for ``group``'s commands; environment
    settings are exported (where unset). Refuses keys no command takes. ``group`` is the
    Click group of the command line (Typer's own copy of Click: compared by shape)."""
    doc = read(path)
    shared = {k: v for k, v in doc.items() if not isinstance(v, dict)}
    sections = {k: v for k, v in doc.items() if isinstance(v, dict)}
    for name, value in list(shared.items()):
        if name in ENVIRONMENT:
            var = ENVIRONMENT[name]
            if var is None:
                raise UsageError(f"{path}: put the site key in a file of its own (key_file), "
                                 "not in the settings file")
            if not isinstance(value, (str, int)) or isinstance(value, bool):
                raise UsageError(f"{path}: {name} must be a string or a number")
            os.environ.setdefault(var, str(value))
            del shared[name]
    default_map, used = _defaults(group, shared, sections, path)
    unknown = (set(shared) - used) | (set(sections) - set(group.commands))
    if unknown:
        raise UsageError(f"{path}: unknown setting(s) {', '.join(sorted(unknown))}")
    return default_map


def _defaults(group: Any, shared: dict[str, Any], sections: dict[str, Any],
              path: Path) -> tuple[dict[str, Any], set[str]]:
    """Defaults for each command (and each sub-group's commands): the shared settings its
    options take, then its own section's."""
    out: dict[str, Any] = {}
    used: set[str] = set()
    for name, command in group.commands.items():
        section = sections.get(name, {})
        if hasattr(command, "commands"):  # a sub-group (Typer vendors its own Click)
            sub, sub_used = _defaults(command, shared, section, path)
            out[name] = sub
            used |= sub_used
            continue
        params = {p.name for p in command.params}
        mine = {k: v for k, v in shared.items() if k in params}
        used |= set(mine)
        stray = set(section) - params
        if stray:
            raise UsageError(f"{path}: [{name}] has no setting(s) {', '.join(sorted(stray))}")
        out[name] = {**mine, **section}
    return out, used
