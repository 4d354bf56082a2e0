"""Pair-list parsing (LFW View 1/2 files as shipped, CSV) and the verification metrics."""

from __future__ import annotations

import numpy as np
import pytest

from faceid import metrics
from faceid.errors import PairsFileError
from faceid.pairs import read_pairs


def test_lfw_view2_pairs(lfw_root):
    pairs = read_pairs(lfw_root / "pairs.txt", lfw_root)
    assert len(pairs) == 6000
    assert sorted({p.fold for p in pairs}) == list(range(10))
    assert sum(p.label for p in pairs) == 3000
    first = pairs[0]
    assert first.label == 1 and first.fold == 0 and first.a.name == "Abel_Pacheco_0001.jpg"
    assert first.b.name == "Abel_Pacheco_0004.jpg" and first.a.is_file()
    assert pairs[300].label == 0 and pairs[600].fold == 1


def test_lfw_view1_pairs(lfw_root):
    pairs = read_pairs(lfw_root / "pairsDevTest.txt", lfw_root)
    assert len(pairs) == 1000 and sum(p.label for p in pairs) == 500
    assert all(p.a.is_file() and p.b.is_file() for p in pairs[:50])


def test_csv_pairs_with_header_labels_and_relative_paths(tmp_path):
    f = tmp_path / "p.csv"
    f.write_text("img1,img2,label\na.jpg,b.jpg,1\nc.jpg,d.jpg,different\ne.jpg,f.jpg\n")
    pairs = read_pairs(f)
    assert [p.label for p in pairs] == [1, 0, None]
    assert pairs[0].a == tmp_path / "a.jpg" and pairs[2].line == 4


@pytest.mark.parametrize("text,msg", [("", "empty"), ("a.jpg\n", "expected img1,img2"),
                                      ("a.jpg,b.jpg,maybe\n", "label"),
                                      ("10 300\nA 1 2\n", "header promises")])
def test_malformed_pair_lists(tmp_path, text, msg):
    f = tmp_path / "bad.csv"
    f.write_text(text)
    with pytest.raises(PairsFileError, match=msg):
        read_pairs(f)


def test_metrics_on_separable_and_overlapping_scores():
    rng = np.random.default_rng(0)
    d = np.concatenate([rng.normal(0.3, 0.05, 1000), rng.normal(0.7, 0.05, 1000)])
    y = np.concatenate([np.ones(1000, int), np.zeros(1000, int)])
    s = metrics.summary(d, y)
    assert s["best_accuracy"] > 0.99 and 0.4 < s["best_threshold"] < 0.6
    assert s["eer"] < 0.01 and s["tar_at_far"] > 0.95
    thr, acc = metrics.best_threshold(np.array([0.1, 0.2, 0.3, 0.4]), np.array([1, 0, 1, 0]))
    assert acc == 0.75 and 0.1 < thr < 0.2 or 0.3 < thr < 0.4
    folds = np.arange(2000) % 10
    k = metrics.kfold_accuracy(d, y, folds)
    assert len(k["fold_accuracy"]) == 10 and k["mean_accuracy"] > 0.99


def test_plots_are_written(tmp_path):
    d = np.array([0.2, 0.3, 0.35, 0.6, 0.7, 0.8])
    y = np.array([1, 1, 0, 1, 0, 0])
    paths = metrics.save_plots(d, y, tmp_path / "run")
    assert [p.name for p in paths] == ["run_roc.png", "run_det.png"]
    assert all(p.stat().st_size > 1000 for p in paths)
