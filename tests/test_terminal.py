"""What reaches a terminal, a log or a webhook from text users supplied: markup shown
literally, control characters escaped, camera passwords redacted, progress as lines."""

from __future__ import annotations

import io

import pytest

from faceid.errors import InvalidName
from faceid.terminal import ProgressLines, SafeConsole, check_label, shown, styled
from faceid.door.sources import FrameSource, redact


def test_markup_and_control_characters_are_shown_as_data():
    buf = io.StringIO()
    console = SafeConsole(file=buf, width=200, color_system=None)
    console.print("[/x] [bold]Ada[/bold] \x1b[31mred\x1b[0m \u202eevil")
    console.print(styled(("error:", "red"), " [/y] :smile:"))
    text = buf.getvalue()
    assert "[/x] [bold]Ada[/bold]" in text and "\\x1b[31mred" in text
    assert "\x1b" not in text and "\u202e" not in text and "\\u202e" in text
    assert "error: [/y] :smile:" in text


def test_long_strings_are_cut_with_what_was_left_out():
    assert shown("n" * 100_000).endswith("... (98,000 more characters)")


@pytest.mark.parametrize("name,why", [("  ", "empty"), ("x" * 129, "129 characters"),
                                      ("Ada\x1b[2J", "control"), ("\u202eAda", "control"),
                                      ("Ada\nLovelace", "control")])
def test_names_that_cannot_be_stored(name, why):
    with pytest.raises(InvalidName, match=why) as exc:
        check_label("name", name, 128)
    assert exc.value.exit_code == 2


def test_names_with_brackets_and_accents_are_fine():
    assert check_label("name", "  [Ada] Lovelace-Żółć  ", 128) == "[Ada] Lovelace-Żółć"


@pytest.mark.parametrize("spec,hidden", [
    ("rtsp://admin:S3cret@10.0.0.5:554/stream1", "S3cret"),
    ("http://u:p4ss@cam/video?token=T0KEN&fps=5", "T0KEN"),
    ("http://cam/mjpg?api_key=K3Y", "K3Y"),
])
def test_camera_credentials_are_redacted(spec, hidden):
    assert hidden not in redact(spec) and "***" in redact(spec)
    assert redact("0") == "0" and redact("clip.mp4") == "clip.mp4"


def test_a_lost_camera_is_reported_without_its_password():
    source = FrameSource("http://admin:S3cret@127.0.0.1:9/video", retries=0,
                         backoff_s=0.01)
    with pytest.raises(Exception) as exc:
        next(iter(source))
    assert "S3cret" not in str(exc.value) and "admin:***@127.0.0.1" in str(exc.value)


def test_progress_without_a_terminal_is_periodic_lines():
    buf = io.StringIO()
    with ProgressLines(4, "enrolling", every_s=0.0, stream=buf) as bar:
        for _ in range(4):
            bar.update()
    lines = buf.getvalue().splitlines()
    assert lines[0].startswith("enrolling: 1/4 (25%)") and lines[-1].startswith("enrolling: 4/4 (100%)")
