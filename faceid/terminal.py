"""The one output path for text that may hold what users typed or named: person names,
file paths, camera URLs, and the messages that quote them.

Names and paths are data, never instructions to the terminal: a person called ``[/x]``
must not be read as Rich markup (which raised after the enrolment had committed), and an
escape sequence or a right-to-left override in a name must not recolour, erase or reorder
what a guard reads. So every console faceid prints to interprets no markup, emoji or
highlighting; control and bidirectional-formatting characters are shown as ``\\xNN`` /
``\\uNNNN`` escapes; and any one string is cut at :data:`MAX_SHOWN` characters (a 100,000
character name took two minutes to wrap). Styling is added only by :func:`styled`, around
parts that faceid wrote itself.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any

from rich.console import Console
from rich.text import Text

from faceid.errors import InvalidName

MAX_SHOWN = 2000  # characters of any one string shown; names themselves are capped lower
# C0 (but tab and newline) and C1 controls, DEL, zero-width and bidirectional formatting
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069"
                     "\ufeff]")


def shown(text: object, limit: int = MAX_SHOWN) -> str:
    """``text`` as it may be put on a terminal: unsafe characters escaped, cut to ``limit``
    characters with the number left out said."""
    s = _UNSAFE.sub(lambda m: ascii(m.group())[1:-1], str(text))
    if len(s) > limit:
        s = f"{s[:limit]}... ({len(s) - limit:,} more characters)"
    return s


def has_unsafe(text: str) -> bool:
    """True when ``text`` holds a control or bidirectional-formatting character."""
    return _UNSAFE.search(text) is not None


def check_label(what: str, text: str, limit: int) -> str:
    """``text`` stripped, if it may be stored as a person's ``what`` (name, external id):
    not empty, at most ``limit`` characters, no control or formatting characters; else
    :class:`InvalidName` (exit 2), before anything is written."""
    value = text.strip()
    if not value:
        raise InvalidName(f"the {what} is empty")
    if len(value) > limit:
        raise InvalidName(f"the {what} is {len(value):,} characters long; at most {limit} "
                          "are allowed")
    if has_unsafe(value) or any(c in value for c in "\t\n"):
        raise InvalidName(f"the {what} {shown(value, 80)!r} holds control or text-direction "
                          "characters")
    return value


class SafeConsole(Console):
    """A Rich console that shows every string literally (see the module docstring)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, **kwargs)

    def render_str(self, text: str, **kwargs: Any) -> Text:
        kwargs.update(markup=False, emoji=False)
        return super().render_str(shown(text), **kwargs)


def styled(*parts: str | tuple[object, str]) -> Text:
    """One line from plain parts and ``(text, style)`` parts, every part made safe; the
    style is faceid's own, the text may be anything."""
    return Text.assemble(*((shown(p[0]), p[1]) if isinstance(p, tuple) else shown(p)
                           for p in parts))


class ProgressLines:
    """Progress for a log file or a service's journal, where a bar would be noise: one line
    on stderr every ``every_s`` seconds and one at the end (``enrolling: 120/300 (40%),
    12.3 img/s``). Used in place of a tqdm bar when stderr is not a terminal."""

    def __init__(self, total: int, desc: str, every_s: float = 10.0,
                 stream: Any = None) -> None:
        self.total, self.desc, self.every_s = total, desc, every_s
        self.stream = stream
        self.done = 0
        self.started = self.last = time.monotonic()

    def __enter__(self) -> ProgressLines:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.done:
            self._line()

    def update(self, n: int = 1) -> None:
        self.done += n
        if time.monotonic() - self.last >= self.every_s:
            self._line()

    def _line(self) -> None:
        self.last = time.monotonic()
        rate = self.done / max(self.last - self.started, 1e-9)
        of = f"/{self.total} ({100 * self.done / self.total:.0f}%)" if self.total else ""
        print(f"{self.desc}: {self.done}{of}, {rate:.1f}/s", file=self.stream or sys.stderr,
              flush=True)


def progress(total: int, desc: str, unit: str = "img") -> Any:
    """A tqdm bar on a terminal; :class:`ProgressLines` on stderr otherwise (a log, a
    journal). Use as a context manager and call ``update(n)``."""
    if not sys.stderr.isatty():
        return ProgressLines(total, desc)
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr)
