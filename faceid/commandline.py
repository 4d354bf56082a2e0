"""The Typer application class every faceid command line uses (``cli.py``, and
``training/cli.py`` when run on its own): a library error becomes one line on stderr and
its exit code, never a traceback (``FACEID_DEBUG=1`` shows one)."""

from __future__ import annotations

import os
import sys
from typing import Any

import typer

from faceid.errors import FaceIDError, InputError
from faceid.terminal import SafeConsole, shown, styled

INTERNAL_ERROR = 70
err = SafeConsole(stderr=True)


class App(typer.Typer):
    """Typer app that turns library errors into one-line messages and exit codes."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except FaceIDError as exc:
            if os.environ.get("FACEID_DEBUG"):
                raise
            err.print(styled(("error:", "red"), f" {exc.message}"), soft_wrap=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            err.print("interrupted")
            sys.exit(130)
        except OSError as exc:  # a path the system refuses (too long, permission denied)
            if os.environ.get("FACEID_DEBUG"):
                raise
            where = shown(exc.filename, 80) if exc.filename else "a file"
            err.print(styled(("error:", "red"), f" {where}: {exc.strerror or exc}"),
                      soft_wrap=True)
            sys.exit(InputError.exit_code)
        except Exception as exc:  # noqa: BLE001 - the user gets one line, not a traceback
            if os.environ.get("FACEID_DEBUG"):
                raise
            err.print(styled(("internal error:", "red"), f" {type(exc).__name__}: {exc} "
                             "(rerun with FACEID_DEBUG=1 for a traceback)"), soft_wrap=True)
            sys.exit(INTERNAL_ERROR)
