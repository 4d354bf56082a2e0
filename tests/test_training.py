"""Training: losses and mining against brute force, the pair head, P x K sampling, augmentation,
bad training data, checkpoints (resume after a kill, refusal of another architecture), and
a tiny end-to-end run on real LFW images whose model file works in the pipeline."""

from __future__ import annotations

import itertools
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from faceid.errors import CheckpointError, TrainingDataError
from training.augment import augment
from faceid.calibrate import tau_at_far
from training.data import LandmarkCache, load_training_set, read_people, scan_identities
from training.losses import Mining, PairHead, pair_head_loss, triplet_loss
from training.sampler import PKSampler
from training.train import TrainConfig, train

# six LFW people (four photos of each are used: a few seconds of MTCNN in all, cached)
TRAIN_PEOPLE = ["Abdullah_Gul", "Adrien_Brody", "Al_Gore", "Ali_Naimi", "Amelia_Vega",
                "Andre_Agassi"]


# ---------------------------------------------------------------- losses, by brute force

def _batch(seed: int = 0, n_ids: int = 4, per: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    emb = F.normalize(torch.randn(n_ids * per, 8, generator=g), dim=1)
    return emb, torch.arange(n_ids).repeat_interleave(per)


def _d2(e: torch.Tensor, i: int, j: int) -> float:
    return float(((e[i] - e[j]) ** 2).sum())


def test_batch_hard_is_hardest_positive_and_negative_per_anchor():
    e, y = _batch()
    want = []
    for a in range(len(y)):
        dp = max(_d2(e, a, p) for p in range(len(y)) if y[p] == y[a] and p != a)
        dn = min(_d2(e, a, n) for n in range(len(y)) if y[n] != y[a])
        want.append(max(dp - dn + 0.5, 0))
    got = triplet_loss(e, y, 0.5, Mining.batch_hard)
    assert got.loss.item() == pytest.approx(np.mean(want), abs=1e-5)
    assert got.active == pytest.approx(np.mean(np.array(want) > 0))


def test_semi_hard_follows_facenets_rule():
    e, y = _batch(1)
    want = []
    for a, p in itertools.permutations(range(len(y)), 2):
        if y[a] != y[p]:
            continue
        dap = _d2(e, a, p)
        negs = [_d2(e, a, n) for n in range(len(y)) if y[n] != y[a]]
        beyond = [d for d in negs if d > dap]
        dn = min(beyond) if beyond else max(negs)
        want.append(max(dap - dn + 0.3, 0))
    got = triplet_loss(e, y, 0.3, Mining.semi_hard)
    assert got.loss.item() == pytest.approx(np.mean(want), abs=1e-5)


def test_batch_all_averages_the_active_triplets():
    e, y = _batch(2)
    losses = [max(_d2(e, a, p) - _d2(e, a, n) + 0.2, 0)
              for a, p, n in itertools.product(range(len(y)), repeat=3)
              if a != p and y[a] == y[p] and y[n] != y[a]]
    got = triplet_loss(e, y, 0.2, Mining.batch_all)
    active = [v for v in losses if v > 0]
    assert got.loss.item() == pytest.approx(np.mean(active), abs=1e-5)
    assert got.active == pytest.approx(len(active) / len(losses))


def test_distances_logged_are_the_batch_means():
    e, y = _batch(3)
    got = triplet_loss(e, y)
    d = torch.cdist(e, e)
    same = y[:, None] == y[None]
    assert got.pos_dist == pytest.approx(float(d[same & ~torch.eye(len(y), dtype=bool)].mean()), abs=1e-5)
    assert got.neg_dist == pytest.approx(float(d[~same].mean()), abs=1e-5)


def test_a_batch_without_positives_is_refused():
    e, _ = _batch()
    with pytest.raises(ValueError, match="positive"):
        triplet_loss(e, torch.arange(len(e)))


@pytest.mark.parametrize("chi", [False, True])
def test_pair_head_features_and_balanced_loss(chi):
    head = PairHead(8, chi_square=chi)
    a, b = torch.tensor([[0.5, -0.5] + [0.0] * 6]), torch.tensor([[0.1, 0.5] + [0.0] * 6])
    want = (a - b) ** 2 / (a.abs() + b.abs() + 1e-6) if chi else (a - b).abs()
    torch.testing.assert_close(head.features(a, b), want)
    e, y = _batch(4)
    loss, acc = pair_head_loss(head, e, y)
    i, j = torch.triu_indices(len(y), len(y), 1)
    t = (y[i] == y[j]).float()
    per = F.binary_cross_entropy_with_logits(head(e[i], e[j]), t, reduction="none")
    assert loss.item() == pytest.approx(0.5 * (per[t > 0].mean() + per[t == 0].mean()).item(), abs=1e-5)
    assert 0 <= acc <= 1


# ---------------------------------------------------------------- sampling and augmentation

def test_pk_batches_hold_p_people_with_distinct_photos_and_resume_exactly():
    labels = np.repeat(np.arange(10), [2, 3, 5, 8, 2, 2, 4, 6, 3, 1])
    s = PKSampler(labels, p=3, k=4, seed=7)
    assert len(s.members) == 9                       # the one-photo identity cannot be used
    for batch in s.epoch():
        ids, counts = np.unique(labels[batch], return_counts=True)
        assert len(ids) == 3 and len(set(batch.tolist())) == len(batch)
        assert all(c == min(4, (labels == i).sum()) for i, c in zip(ids, counts))
    state = s.state_dict()
    nxt = s.epoch()
    again = PKSampler(labels, p=3, k=4, seed=123)
    again.load_state_dict(state)
    assert all((x == z).all() for x, z in zip(nxt, again.epoch()))


def test_augmentation_is_seeded_and_keeps_shape():
    chips = torch.from_numpy(np.random.default_rng(0).integers(0, 255, (4, 32, 32, 3), dtype=np.uint8))
    a = augment(chips, torch.Generator().manual_seed(1))
    b = augment(chips, torch.Generator().manual_seed(1))
    c = augment(chips, torch.Generator().manual_seed(2))
    assert a.shape == (4, 3, 32, 32) and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0 and float(a.max()) <= 255


def test_tau_at_far_is_the_loosest_threshold_within_the_target():
    rng = np.random.default_rng(0)
    d = np.concatenate([rng.normal(0.5, 0.1, 2000), rng.normal(1.0, 0.1, 5000)])
    y = np.concatenate([np.ones(2000), np.zeros(5000)]).astype(int)
    tau = tau_at_far(d, y, 1e-2)
    assert np.mean(d[y == 0] <= tau) <= 1e-2
    looser = np.sort(d[d > tau])[0]
    assert np.mean(d[y == 0] <= looser) > 1e-2
    assert tau_at_far(np.array([0.5, 0.1]), np.array([1, 0]), 1e-3) < 0.1   # nothing can pass


# ---------------------------------------------------------------- data folders (real LFW images)

@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("train-cache")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory, lfw_images) -> Path:
    """Six LFW people as an identity-folder data set (links to LFW, nothing copied)."""
    root = tmp_path_factory.mktemp("tiny-data")
    for name in TRAIN_PEOPLE:
        (root / name).mkdir()
        for f in sorted((lfw_images / name).iterdir())[:4]:
            (root / name / f.name).symlink_to(f)
    return root


@pytest.fixture(scope="module")
def tiny_pairs(tmp_path_factory, lfw_images) -> Path:
    """Labelled pairs (CSV) of four people who are not in the tiny training set."""
    rows = []
    same = ["Angela_Bassett", "Arnold_Schwarzenegger", "Bill_Gates", "Bob_Graham"]
    for name in same:
        files = sorted((lfw_images / name).iterdir())
        rows.append(f"{files[0]},{files[1]},1")
    for x, z in zip(same, same[1:] + same[:1]):
        rows.append(f"{sorted((lfw_images / x).iterdir())[0]},{sorted((lfw_images / z).iterdir())[-1]},0")
    assert not set(same) & set(TRAIN_PEOPLE)
    p = tmp_path_factory.mktemp("pairs") / "pairs.csv"
    p.write_text("\n".join(rows) + "\n")
    return p


def test_people_file_reader(lfw_root):
    names = read_people(lfw_root / "peopleDevTrain.txt")
    assert len(names) == 4038 and names[0] == "AJ_Cook"


def test_empty_data_folder_is_a_clear_error(tmp_path):
    with pytest.raises(TrainingDataError, match="no identity folders"):
        scan_identities(tmp_path)
    with pytest.raises(TrainingDataError, match="not found"):
        scan_identities(tmp_path / "nope")


def test_single_photo_people_and_unreadable_images_are_skipped_and_counted(tmp_path, tiny_data, cache_dir, lfw_images):
    root = tmp_path / "data"
    shutil.copytree(tiny_data, root, symlinks=True)
    (root / "Lonely_Person").mkdir()
    (root / "Lonely_Person" / "only.jpg").symlink_to(lfw_images / "AJ_Cook" / "AJ_Cook_0001.jpg")
    (root / "Al_Gore" / "broken.jpg").write_text("not a jpeg")
    (root / "Two_Bad").mkdir()
    (root / "Two_Bad" / "a.jpg").write_bytes(b"")
    (root / "Two_Bad" / "b.jpg").write_bytes(b"\xff\xd8\xff")
    notes: list[str] = []
    data = load_training_set(root, LandmarkCache(cache_dir), 32, np.full((5, 2), 16.0) +
                             np.array([[-6, -4], [6, -4], [0, 1], [-5, 7], [5, 7]]), notes=notes)
    assert data.names == TRAIN_PEOPLE
    assert data.report["skipped_single_image_identities"] == 1
    assert data.report["unreadable_images"] == 3
    assert any("Lonely_Person: one image" in n for n in notes)
    assert any("Two_Bad: fewer than two usable faces" in n for n in notes)
    assert any("3 unreadable image(s) skipped" in n for n in notes)


def test_only_single_photo_people_is_a_clear_error(tmp_path, lfw_images):
    for name in ("AJ_Cook", "Aaron_Eckhart"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "x.jpg").symlink_to(lfw_images / name / f"{name}_0001.jpg")
    with pytest.raises(TrainingDataError, match="nothing to train on"):
        load_training_set(tmp_path, LandmarkCache(tmp_path / "cache"), 32, np.zeros((5, 2)))


def test_exported_chips_travel_and_refuse_another_alignment(tmp_path, tiny_data, cache_dir):
    from training.data import export_chips, load_exported

    template = np.full((5, 2), 16.0) + np.array([[-6, -4], [6, -4], [0, 1], [-5, 7], [5, 7]])
    data = load_training_set(tiny_data, LandmarkCache(cache_dir), 32, template)
    path = export_chips(tmp_path / "chips.npz", data, template=template)
    again, test = load_exported(path, 32, template)
    assert test is None and again.names == data.names
    assert (again.labels == data.labels).all()
    assert np.abs(again.chips.astype(int) - data.chips).mean() < 4     # JPEG, quality 92
    with pytest.raises(TrainingDataError, match="another alignment"):
        load_exported(path, 40, template)


# ---------------------------------------------------------------- the loop, end to end

def _cfg(tiny_data: Path, out: Path, cache: Path, **kw) -> TrainConfig:
    base = dict(data=str(tiny_data), out=str(out), cache=str(cache), chip_size=32, epochs=2,
                p=2, k=3, val_fraction=0.34, eval_every=1, lr=1e-3, seed=3)
    base.update(kw)
    return TrainConfig(**base)


def _weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "faceid-trained.pt", weights_only=True)["model"]


def test_tiny_run_trains_evaluates_and_writes_a_usable_model(tmp_path, tiny_data, tiny_pairs, cache_dir, lfw_images):
    cfg = _cfg(tiny_data, tmp_path / "run", cache_dir, test_pairs=str(tiny_pairs))
    lines: list[str] = []
    result = train(cfg, log=lines.append, progress=False)
    assert len(result.history) == 2
    for row in result.history:
        assert {"loss", "active", "pos_dist", "neg_dist", "images_per_s", "val"} <= set(row)
    assert any(line.startswith("epoch 2:") and "active" in line for line in lines)
    m = result.metrics
    assert m["pairs"] == 8 and m["failed_pairs"] == 0 and 0 <= m["best_accuracy"] <= 1
    assert "head_cv10_accuracy" in m

    from faceid.modelfile import load_model_info
    from faceid.pipeline import FaceID
    from training.train import embed_chips

    info = load_model_info(result.model_file)
    assert info.architecture == "compact_v1" and info.chip_size == 32 and info.embedding_size == 128
    assert info.extra["training"]["config"]["mining"] == "batch-hard"
    assert "FAR <= 0.001" in info.view_preset("standard").calibration["rule"]
    assert "Abdullah_Gul" not in json.dumps(info.extra["metrics"])
    # the pipeline (folded norms, channels-last) computes what training computed
    fid = FaceID(str(result.model_file))
    img = lfw_images / "Bill_Gates" / "Bill_Gates_0001.jpg"
    r = fid.embed_image(img)
    from faceid.imageio import load_image

    chip = fid.view_chips(load_image(img), r.face)
    from faceid.nn import get_model

    net = get_model(info.architecture, **info.architecture_kwargs)
    net.load_state_dict(_weights(tmp_path / "run"))
    want = embed_chips(net, chip, torch.device("cpu"), flip=True)[0]
    np.testing.assert_allclose(r.embedding, want, atol=1e-4)
    c = fid.compare(img, lfw_images / "Bill_Gates" / "Bill_Gates_0002.jpg")
    assert 0 <= c.distance <= 2


def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path, tiny_data, cache_dir):
    whole = train(_cfg(tiny_data, tmp_path / "whole", cache_dir), log=lambda s: None, progress=False)

    def kill_after_first_epoch(line: str) -> None:
        if line.startswith("epoch 1:"):
            raise KeyboardInterrupt

    cfg = _cfg(tiny_data, tmp_path / "killed", cache_dir)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, log=kill_after_first_epoch, progress=False)
    with pytest.raises(CheckpointError, match="--resume"):
        train(cfg, log=lambda s: None, progress=False)
    lines: list[str] = []
    resumed = train(cfg, resume=True, log=lines.append, progress=False)
    assert any("resumed" in line and "after epoch 1" in line for line in lines)
    assert [h["epoch"] for h in resumed.history] == [1, 2]
    a, b = _weights(tmp_path / "whole"), _weights(tmp_path / "killed")
    for k in a:
        torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=1e-4)
    assert resumed.history[-1]["loss"] == pytest.approx(whole.history[-1]["loss"], rel=1e-4)


def test_checkpoint_of_another_architecture_is_refused(tmp_path, tiny_data, cache_dir):
    out = tmp_path / "run"
    train(_cfg(tiny_data, out, cache_dir, epochs=1, eval_every=0), log=lambda s: None, progress=False)
    with pytest.raises(CheckpointError, match="architecture compact_v1 .*32.* this run builds compact_v1 .*40"):
        train(_cfg(tiny_data, out, cache_dir, epochs=2, chip_size=40), resume=True,
              log=lambda s: None, progress=False)
    (out / "checkpoint.pt").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        train(_cfg(tiny_data, out, cache_dir, epochs=2), resume=True, log=lambda s: None,
              progress=False)


def _train_app():
    import typer

    from training.cli import register

    app = typer.Typer()
    register(app)

    @app.callback()
    def _root() -> None:
        pass

    return app


def test_cli_train_help_and_errors(tmp_path):
    import subprocess

    from typer.testing import CliRunner

    h = CliRunner().invoke(_train_app(), ["train", "--help"])
    assert h.exit_code == 0 and "Example" in h.stdout and "--mining" in h.stdout
    # through the real entry point: one line and the error's own exit code, no traceback
    e = subprocess.run([sys.executable, "-m", "training.cli", "train", str(tmp_path), "--out",
                        str(tmp_path / "o")], capture_output=True, text=True,
                       cwd=Path(__file__).parents[1])
    assert e.returncode == TrainingDataError.exit_code == 80
    assert "no identity folders" in e.stderr and "Traceback" not in e.stderr


def test_cli_tiny_run_json(tmp_path, tiny_data, cache_dir):
    from typer.testing import CliRunner

    app = _train_app()
    r = CliRunner().invoke(app, ["train", str(tiny_data), "--out", str(tmp_path / "o"),
                                 "--cache", str(cache_dir), "--chip", "32", "--epochs", "1",
                                 "-P", "2", "--batch-images", "2", "--val-fraction", "0.34",
                                 "--mining", "semi-hard", "--head", "chi2", "--json"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout[r.stdout.index("{"):])
    assert doc["config"]["mining"] == "semi-hard" and doc["config"]["head"] == "chi2"
    assert Path(doc["model"]).is_file()


@pytest.mark.slow
def test_short_lfw_view1_run_learns_people_it_never_saw(tmp_path, lfw_root):
    """Four minutes from scratch on LFW View 1 train (batch-all, the fastest learner on short
    budgets in docs/BENCHMARKS.md) must beat chance clearly on pairsDevTest, people-disjoint.
    Uses the shared cache under reports/ (the first run detects 8,220 faces, ~5 min)."""
    root = Path(__file__).resolve().parents[1]
    cfg = TrainConfig(data=str(lfw_root / "lfw-deepfunneled"), out=str(tmp_path / "run"),
                      people=str(lfw_root / "peopleDevTrain.txt"),
                      test_pairs=str(lfw_root / "pairsDevTest.txt"), pairs_root=str(lfw_root),
                      cache=str(root / "reports" / "train-cache"), widths=[24, 48, 96, 192],
                      mining="batch-all", head="none", lr=3e-3, epochs=1000, minutes=4,
                      eval_every=0)
    result = train(cfg, log=lambda s: None, progress=False)
    assert result.metrics["failed_pairs"] == 0
    assert result.metrics["cv10_accuracy"] > 0.75 and result.metrics["auc"] > 0.82
