"""Running faceid at a site: one settings file (flags and the environment override it) and
the systemd units ``faceid install-service`` writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from faceid import sitefile
from faceid.errors import UsageError
from tests.test_cli import run


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "faceid.toml").write_text(
        f'home = "{tmp_path / "data"}"\nthreads = 1\n\n[serve]\nport = 8123\n')
    assert run("--config", tmp_path / "faceid.toml", "init").returncode == 0
    return tmp_path


def env_without_home() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("FACEID_HOME", "FACEID_CONFIG")}


def test_the_file_sets_defaults_the_environment_and_flags_override(site):
    cfg = site / "faceid.toml"
    assert (site / "data" / "faceid.db").is_file()
    assert run("--config", cfg, "people", "list", "--json", env=env_without_home()).returncode == 0
    other = run("--config", cfg, "people", "list", env={**env_without_home(),
                                                          "FACEID_HOME": str(site / "x")})
    assert other.returncode == 57 and str(site / "x") in other.stderr  # environment wins
    flag = run("--config", cfg, "people", "list", "--home", site / "y", env=env_without_home())
    assert flag.returncode == 57 and str(site / "y") in flag.stderr  # the flag wins
    found = run("people", "list", env={**env_without_home(), "FACEID_CONFIG": str(cfg)})
    assert found.returncode == 0


@pytest.mark.parametrize("text,message", [
    ('hom = "x"\n', "unknown setting(s) hom"),
    ('[serve]\nprt = 1\n', "[serve] has no setting(s) prt"),
    ('key = "secret"\n', "key_file"),
    ('home = \n', "not a readable settings file"),
])
def test_a_mistyped_file_is_a_usage_error_naming_it(tmp_path, text, message):
    cfg = tmp_path / "faceid.toml"
    cfg.write_text(text)
    p = run("--config", cfg, "people", "list", env=env_without_home())
    assert p.returncode == 2 and str(cfg) in p.stderr and message in p.stderr


def test_environment_only_settings_are_exported_unless_already_set(tmp_path, monkeypatch):
    import typer

    from cli import app

    cfg = tmp_path / "faceid.toml"
    cfg.write_text('key_file = "/etc/faceid/site.key"\ndetector = "yunet"\n')
    # a copy of the environment: what the file exports must not leak into other tests
    monkeypatch.setattr(os, "environ", {k: v for k, v in os.environ.items()
                                        if k != "FACEID_KEY_FILE"} | {"FACEID_DETECTOR": "mtcnn"})
    sitefile.apply(cfg, typer.main.get_command(app))
    assert os.environ["FACEID_KEY_FILE"] == "/etc/faceid/site.key"
    assert os.environ["FACEID_DETECTOR"] == "mtcnn"  # the environment wins
    cfg.write_text("threads = true\n")
    with pytest.raises(UsageError, match="threads must be"):
        sitefile.apply(cfg, typer.main.get_command(app))


def test_install_service_writes_units_for_the_server_and_a_door(tmp_path):
    cfg = tmp_path / "faceid.toml"
    p = run("install-service", "serve", "--unit-dir", tmp_path, "--config", cfg, "--json")
    assert p.returncode == 0, p.stderr
    unit = (tmp_path / "faceid-serve.service").read_text()
    assert f"Environment=FACEID_CONFIG={cfg}" in unit and "Restart=always" in unit
    exec_line = next(ln for ln in unit.splitlines() if ln.startswith("ExecStart="))
    program, *args = exec_line[len("ExecStart="):].split()
    assert Path(program).is_file() and args == ["serve"]
    assert run("install-service", "door", "--door", "front", "--unit-dir", tmp_path).returncode == 0
    door = (tmp_path / "faceid-door-front.service").read_text()
    assert "watch --door front" in door and "ReadWritePaths=/var/lib/faceid" in door
    assert "FACEID_CACHE=/var/lib/faceid/cache" in door  # ProtectHome hides ~/.cache
    bad = run("install-service", "door", "--door", "../etc", "--unit-dir", tmp_path)
    assert bad.returncode == 2 and not list(tmp_path.glob("*etc*"))
