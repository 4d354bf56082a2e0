"""A throwaway PostgreSQL server for the store tests: initdb in a temporary folder, listen
on a Unix socket only, fsync off, stopped at the end of the session. Runs the server as the
``postgres`` user when the tests run as root (PostgreSQL refuses root)."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path


def server_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


class TempPostgres:
    def __init__(self) -> None:
        bindir = server_bin()
        if bindir is None:
            raise RuntimeError("PostgreSQL server binaries not found; scripts/test.sh "
                               "installs them (Debian package 'postgresql')")
        self.bin = bindir
        self.dir = Path(tempfile.mkdtemp(prefix="faceid-pg-"))
        self.data = self.dir / "data"
        self.port = 5400 + os.getpid() % 500
        self.user: list[str] = []
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(self.dir, pg.pw_uid, pg.pw_gid)
            self.user = ["runuser", "-u", "postgres", "--"]
        self._count = 0

    def _run(self, *args: str) -> None:
        subprocess.run([*self.user, *args], check=True, capture_output=True, text=True)

    def start(self) -> TempPostgres:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U",
                  "faceid", "-N", "-E", "UTF8")
        opts = (f"-k {self.dir} -p {self.port} -c listen_addresses='' -c fsync=off "
                "-c full_page_writes=off -c synchronous_commit=off")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w",
                  "-l", str(self.dir / "log"), "start")
        return self

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://faceid@/{database}?host={self.dir}&port={self.port}"

    def new_database(self) -> str:
        """A fresh, empty database for one test; returns its URL."""
        import psycopg

        self._count += 1
        name = f"t{self._count}"
        with psycopg.connect(host=str(self.dir), port=self.port, user="faceid",
                             dbname="postgres", autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                      "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
