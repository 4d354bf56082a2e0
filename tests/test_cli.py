"""The faceid command as a user runs it: exit codes, one-line errors naming the file (never a
traceback), JSON output, and the batch job's per-row errors and artefacts."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.conftest import ROOT, lfw

FACEID = [sys.executable, str(ROOT / "cli.py")]


def run(*args: object, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*FACEID, *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=600, env=env)


def assert_one_line_error(p: subprocess.CompletedProcess, code: int, name: str) -> None:
    assert p.returncode == code, (p.returncode, p.stderr)
    lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and name in lines[0] and lines[0].startswith("error:"), p.stderr
    assert "Traceback" not in p.stderr


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, lfw_images, two_face_image):
    d = tmp_path_factory.mktemp("bad")
    good = lfw(lfw_images, "Aaron_Peirsol", 1)
    (d / "zero.jpg").write_bytes(b"")
    (d / "truncated.jpg").write_bytes(good.read_bytes()[:2500])
    (d / "text.jpg").write_text("hello, not a jpeg\n")
    (d / "folder.jpg").mkdir()
    Image.new("1", (20000, 20000)).save(d / "huge.png")
    Image.fromarray(np.full((200, 200, 3), 90, np.uint8)).save(d / "blank.png")
    Image.fromarray(two_face_image).save(d / "two.jpg")
    return d


@pytest.mark.parametrize("name,code", [("zero.jpg", 12), ("truncated.jpg", 14), ("text.jpg", 13),
                                       ("folder.jpg", 11), ("huge.png", 15), ("missing.jpg", 10),
                                       ("blank.png", 21), ("two.jpg", 22)])
def test_compare_bad_input(bad_files, lfw_images, name, code):
    p = run("compare", bad_files / name, lfw(lfw_images, "Aaron_Peirsol", 2))
    assert_one_line_error(p, code, name)


def test_face_too_small(lfw_images):
    img = lfw(lfw_images, "Aaron_Peirsol", 1)
    assert_one_line_error(run("compare", img, img, "--min-face", 200), 23, img.name)


def test_compare_same_and_different_with_json(lfw_images):
    a, b = lfw(lfw_images, "Aaron_Peirsol", 1), lfw(lfw_images, "Aaron_Peirsol", 4)
    p = run("compare", a, b, "--json")
    assert p.returncode == 0, p.stderr
    data = json.loads(p.stdout)
    assert data["same"] is True and data["distance"] < data["tau"]
    p = run("compare", a, lfw(lfw_images, "George_W_Bush", 2))
    assert p.returncode == 1 and "different people" in p.stdout


def test_verify_pairs_reports_bad_rows_and_keeps_going(tmp_path, lfw_images, bad_files):
    ap = lambda i: lfw(lfw_images, "Aaron_Peirsol", i)  # noqa: E731
    gw = lambda i: lfw(lfw_images, "George_W_Bush", i)  # noqa: E731
    rows = [(ap(1), ap(2), 1), (ap(3), ap(4), 1), (gw(1), gw(2), 1), (gw(3), gw(4), 1),
            (ap(1), gw(1), 0), (ap(2), gw(3), 0), (gw(5), ap(4), 0),
            (bad_files / "truncated.jpg", ap(1), 1), (ap(1), tmp_path / "gone.jpg", 0),
            (bad_files / "blank.png", gw(1), 0)]
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("img1,img2,label\n" + "".join(f"{a},{b},{y}\n" for a, b, y in rows))
    out = tmp_path / "res.csv"
    p = run("verify-pairs", pairs, "--out", out, "--json")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    assert summary["pairs"] == 10 and summary["failed"] == 3 and summary["scored"] == 7
    assert summary["best_accuracy"] == 1.0
    assert summary["accuracy_at_tau"] == pytest.approx(0.7)  # failures count as wrong
    assert all(Path(f).stat().st_size > 1000 for f in summary["plots"])
    result = list(csv.DictReader(out.open()))
    assert len(result) == 10
    assert result[7]["error_code"] == "14" and "truncated.jpg" in result[7]["error"]
    assert result[8]["error_code"] == "10" and "gone.jpg" in result[8]["error"]
    assert result[9]["error_code"] == "21"
    assert result[0]["same"] == "True" and result[4]["same"] == "False"


def test_verify_pairs_on_lfw_sample_as_json_rows(tmp_path, lfw_root):
    out = tmp_path / "res.json"
    p = run("verify-pairs", lfw_root / "pairsDevTest.txt", "--root", lfw_root,
            "--sample", 24, "--out", out, "--json")
    assert p.returncode == 0, p.stderr
    summary = json.loads(p.stdout)
    rows = json.loads(out.read_text())
    assert len(rows) == 24 and summary["pairs"] == 24
    assert summary["accuracy_at_tau"] >= 0.9


@pytest.mark.parametrize("args,code,name", [
    (("verify-pairs", "nowhere.csv"), 40, "nowhere.csv"),
    (("eval", "lfw", "--root", "/tmp"), 41, "/tmp"),
    (("model-info", "--model", "no-model.json"), 30, "no-model.json"),
])
def test_whole_job_errors(args, code, name):
    assert_one_line_error(run(*args), code, name)


@pytest.mark.parametrize("cmd", [["detect"], ["compare"], ["verify-pairs"], ["eval", "lfw"],
                                 ["calibrate"], ["model-info"], ["zoo", "list"], ["style"],
                                 ["train-digits"]])
def test_every_command_has_help_with_an_example(cmd):
    p = run(*cmd, "--help")
    assert p.returncode == 0 and "Example" in p.stdout


def test_detect_json(lfw_images, bad_files):
    p = run("detect", bad_files / "two.jpg", "--json")
    assert p.returncode == 0, p.stderr
    faces = json.loads(p.stdout)["faces"]
    assert len(faces) >= 2 and all(len(f["landmarks"]) == 5 for f in faces)


@pytest.mark.slow
def test_lfw_view2_accuracy(tmp_path, lfw_root):
    """The full LFW View 2 protocol (minutes): the issue's target of >= 99.3%."""
    p = run("eval", "lfw", "--root", lfw_root, "--out-dir", tmp_path, "--json")
    assert p.returncode == 0, p.stderr
    report = json.loads(p.stdout)
    assert report["mean_accuracy"] >= 0.993
    assert (tmp_path / "lfw_view2_roc.png").is_file()


def test_threads_reach_torch_opencv_and_numpys_blas(lfw_images):
    """`--threads 1` holds every library that runs numbers to one thread, BLAS included
    (which reads its count once, when numpy is first imported)."""
    code = ("import sys, runpy; sys.argv = ['faceid', '--threads', '1', 'compare', %r, %r]\n"
            "try:\n    runpy.run_path(%r, run_name='__main__')\n"
            "except SystemExit:\n    pass\n"
            "import cv2, torch, threadpoolctl\n"
            "blas = {i['num_threads'] for i in threadpoolctl.threadpool_info()"
            " if i['user_api'] == 'blas'}\n"
            "print('THREADS', torch.get_num_threads(), cv2.getNumThreads(), sorted(blas))")
    a, b = lfw(lfw_images, "Aaron_Peirsol", 1), lfw(lfw_images, "Aaron_Peirsol", 2)
    env = {k: v for k, v in os.environ.items()
           if k not in ("FACEID_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                        "MKL_NUM_THREADS")}
    p = subprocess.run([sys.executable, "-c", code % (str(a), str(b), str(ROOT / "cli.py"))],
                       capture_output=True, text=True, cwd=ROOT, timeout=300, env=env)
    assert p.stdout.strip().splitlines()[-1] == "THREADS 1 1 [1]", (p.stdout, p.stderr)
