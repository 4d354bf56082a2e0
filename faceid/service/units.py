"""systemd units for a site: the API server, and one door per camera, each started from the
same settings file (``faceid.toml``) by the same ``faceid`` executable.

Restart always (a camera or database outage must not leave a door dead), a dedicated user,
the data directory as the only writable path (the network exports are cached there too:
the user's home is out of reach), no new privileges. ``faceid install-service``
writes them; enabling and starting them is the administrator's ``systemctl`` step.
"""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

from faceid.atomic import write_text
from faceid.errors import UsageError

UNIT = """[Unit]
Description={description}
After=network-online.target postgresql.service
Wants=network-online.target

[Service]
Type=simple
User={user}
Environment=FACEID_CONFIG={config}
Environment=FACEID_THREADS={threads}
Environment=FACEID_CACHE={data}/cache
ExecStart={executable} {arguments}
Restart=always
RestartSec=2
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
ReadWritePaths={data}
PrivateTmp=yes

[Install]
WantedBy=multi-user.target
"""


def executable() -> str:
    """The ``faceid`` this process runs as (the virtual environment's), absolute."""
    beside = Path(sys.executable).parent / "faceid"
    found = beside if beside.is_file() else shutil.which("faceid")
    if not found:
        raise UsageError("no faceid executable found beside this Python or on PATH")
    return str(Path(found).resolve())


def unit_text(kind: str, *, config: Path, data: Path, user: str, door: str | None = None,
              threads: int = 1) -> tuple[str, str]:
    """(file name, content) of the unit for the server (``kind`` "serve") or a door
    (``kind`` "door", named ``door``: its camera and settings come from ``[watch]`` in the
    settings file or flags there)."""
    if kind == "serve":
        name, description, arguments = "faceid-serve.service", "faceid HTTP API", "serve"
    elif kind == "door":
        if not door or not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", door):
            raise UsageError("a door unit needs a name of letters, digits, '.', '_' or '-'")
        name = f"faceid-door-{door}.service"
        description, arguments = f"faceid door {door}", f"watch --door {door}"
    else:
        raise UsageError(f"unknown unit kind {kind!r} (serve or door)")
    return name, UNIT.format(description=description, user=user, config=config,
                             threads=threads, executable=executable(),
                             arguments=arguments, data=data)


def install(kind: str, unit_dir: Path, **kw: object) -> Path:
    """Write the unit into ``unit_dir`` (atomically); returns its path."""
    name, text = unit_text(kind, **kw)  # type: ignore[arg-type]
    path = unit_dir / name
    write_text(path, text)
    return path
