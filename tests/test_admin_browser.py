"""The web admin page in a real browser: Debian's Chromium driven by Selenium against a real
``faceid serve`` process over loopback (issue 15). A guard signs in with an admin key, enrols
one person from photo files and another from a camera snapshot (Chromium's fake camera
playing a real LFW face), sees them listed with their thumbnails, runs an identify, sees the
event appear, sees a door's status, removes a person after confirming, and signs out.
Screenshots of the main pages are saved in ``reports/admin-screenshots/`` (or
``$FACEID_SCREENSHOTS``).

Chromium and chromedriver come from ``scripts/ensure-chromium.sh`` (run by the README's test
command); without them this test fails rather than skips.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as seen
from selenium.webdriver.support.ui import WebDriverWait

from db.store import Store
from tests.conftest import lfw

ROOT = Path(__file__).resolve().parents[1]
FACEID = [sys.executable, str(ROOT / "cli.py")]
SHOTS = Path(os.environ.get("FACEID_SCREENSHOTS", ROOT / "reports" / "admin-screenshots"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def fake_camera(image: Path, out: Path) -> Path:
    """A Y4M clip (what Chromium's fake camera plays) of ``image`` centred on a 640x480
    frame: one real face in front of the "camera"."""
    face = cv2.imread(str(image))
    face = cv2.resize(face, (400, 400))
    frame = np.full((480, 640, 3), 110, np.uint8)
    frame[40:440, 120:520] = face
    planes = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420).tobytes()
    with out.open("wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F10:1 Ip A1:1 C420jpeg\n")
        for _ in range(10):
            f.write(b"FRAME\n" + planes)
    return out


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    home = tmp_path_factory.mktemp("browser-site")
    env = {**os.environ, "FACEID_THREADS": "1", "FACEID_HOME": str(home)}
    made = subprocess.run([*FACEID, "keys", "add", "front desk", "--scope", "admin", "--json"],
                          env=env, capture_output=True, text=True, check=True)
    key = json.loads(made.stdout)["key"]
    port = free_port()
    proc = subprocess.Popen([*FACEID, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{base}/ready", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"faceid serve did not start: {proc.communicate()[1][-2000:]}")
        time.sleep(0.5)
    yield base, key, home
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser(tmp_path_factory, lfw_images):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "chromium / chromedriver missing: run scripts/ensure-chromium.sh"
    camera = fake_camera(lfw(lfw_images, "Serena_Williams", 1),
                         tmp_path_factory.mktemp("camera") / "serena.y4m")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--use-fake-ui-for-media-stream",
                 "--use-fake-device-for-media-stream",
                 f"--use-file-for-fake-video-capture={camera}"):
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager fetch a driver
    b = webdriver.Chrome(options=options, service=DriverService(executable_path=driver))
    b.implicitly_wait(0)
    yield b
    b.quit()


def shot(b: webdriver.Chrome, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert b.save_screenshot(str(SHOTS / f"{name}.png"))


def wait_for(b: webdriver.Chrome, css: str, timeout: float = 60) -> object:
    return WebDriverWait(b, timeout).until(seen.presence_of_element_located((By.CSS_SELECTOR, css)))


def images_loaded(b: webdriver.Chrome, css: str) -> list[int]:
    return b.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(i => i.naturalWidth)", css)


def test_a_guard_enrols_identifies_and_sees_the_event(server, browser, lfw_images):
    base, key, home = server
    b = browser
    b.get(f"{base}/admin/people")
    assert b.current_url.endswith("/admin/login")
    shot(b, "1-sign-in")
    b.find_element(By.ID, "key").send_keys(key)
    b.find_element(By.ID, "sign-in").click()
    assert "signed in as front desk" in wait_for(b, "#note").text

    # enrol from photo files
    b.find_element(By.ID, "name").send_keys("Aaron Peirsol")
    b.find_element(By.ID, "external-id").send_keys("AP-1")
    b.find_element(By.ID, "photos").send_keys(
        "\n".join(str(lfw(lfw_images, "Aaron_Peirsol", n)) for n in (1, 3)))
    b.find_element(By.ID, "enrol-go").click()
    assert "enrolled Aaron Peirsol" in wait_for(b, "#note").text
    WebDriverWait(b, 20).until(lambda d: all(images_loaded(d, "#templates img")))
    assert len(images_loaded(b, "#templates img")) == 2
    shot(b, "2-person")

    # enrol from a camera snapshot
    b.find_element(By.ID, "nav-people").click()
    b.find_element(By.ID, "name").send_keys("Serena Williams")
    b.find_element(By.ID, "camera-start").click()
    WebDriverWait(b, 30).until(lambda d: d.find_element(By.ID, "camera-snap").is_enabled())
    WebDriverWait(b, 30).until(lambda d: d.execute_script(
        "return document.getElementById('camera-video').videoWidth") > 0)
    b.find_element(By.ID, "camera-snap").click()
    WebDriverWait(b, 30).until(
        lambda d: "1 photo(s) ready" in d.find_element(By.ID, "camera-status").text)
    shot(b, "3-camera-snapshot")
    b.find_element(By.ID, "enrol-go").click()
    assert "enrolled Serena Williams" in wait_for(b, "#note").text
    caption = b.find_element(By.CSS_SELECTOR, "#templates figcaption").text
    assert caption.startswith("camera-")

    # both listed
    b.find_element(By.ID, "nav-people").click()
    rows = wait_for(b, "#people tbody").text
    assert "Aaron Peirsol" in rows and "AP-1" in rows and "Serena Williams" in rows
    shot(b, "4-people")

    # identify, then the event
    b.find_element(By.ID, "nav-identify").click()
    probe = lfw(lfw_images, "Aaron_Peirsol", 2)
    b.find_element(By.ID, "photo").send_keys(str(probe))
    b.find_element(By.ID, "identify-go").click()
    row = wait_for(b, "#faces tbody tr").text
    assert "match" in row and "Aaron Peirsol" in row
    shot(b, "5-identify")
    b.find_element(By.ID, "nav-events").click()
    first = wait_for(b, "#events tbody tr").text
    assert "match" in first and "Aaron Peirsol" in first and probe.name in first
    shot(b, "6-events")

    # a door's status (the heartbeat row a `faceid watch --door lobby` writes)
    now = datetime.now(timezone.utc)
    Store(f"sqlite:///{home}/faceid.db").door_heartbeat(
        "lobby", host="cam-1", started_at=now, last_seen=now, running=True, state="ok",
        frames=900, fps=30.1, last_decision="grant:match", last_decision_at=now,
        liveness="passive+motion", last_liveness=0.93)
    b.find_element(By.ID, "nav-doors").click()
    door = wait_for(b, "#doors tbody tr").text
    assert "lobby" in door and "30.1" in door and "passive+motion" in door
    shot(b, "7-doors")

    # remove, only after confirming
    b.find_element(By.ID, "nav-people").click()
    b.find_element(By.LINK_TEXT, "Serena Williams").click()
    wait_for(b, "#remove").click()
    b.find_element(By.ID, "remove-go").click()  # not confirmed
    assert "to confirm" in wait_for(b, "#error").text
    b.find_element(By.ID, "confirm").send_keys("remove")
    b.find_element(By.ID, "remove-go").click()
    assert "removed Serena Williams" in wait_for(b, "#note").text
    assert "Serena Williams" not in b.find_element(By.CSS_SELECTOR, "#people tbody").text

    b.find_element(By.ID, "sign-out").click()
    wait_for(b, "#key")
    b.get(f"{base}/admin/events")
    assert b.current_url.endswith("/admin/login")
