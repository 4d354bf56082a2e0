"""Training the optional liveness CNN (``faceid train-liveness LIVE_DIR SPOOF_DIR``) on a
site's own photos: one folder of live faces, one of attacks (prints, screens), images or
video clips, searched recursively. Registered onto the main Typer app by ``cli.py``:

    from training.liveness import register as register_liveness; register_liveness(app)

Each image (or every ``video_every``-th frame of a clip) is detected once (MTCNN, largest
face) and kept as a loose crop; training augments by shifting and scaling the crop, mirroring
and jittering brightness and contrast, so a few hundred photos go a long way. A stratified
``val_fraction`` is held out; the model's threshold is the one that meets ``--bpcer`` on it
(the fraction of live faces refused), and APCER / BPCER on it are written into the model file.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer

from faceid.errors import FaceIDError, LivenessDataError
from faceid.liveness import MODEL_FORMAT, face_crop

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
VIDEO_SUFFIXES = {".mp4", ".mkv", ".avi", ".mov", ".gif", ".webm"}
KEEP = 96  # side of the stored crops; training crops of ``input_size`` are cut from these


@dataclass
class LivenessTrainConfig:
    live_dir: str
    spoof_dir: str
    out: str = "reports/liveness-model/liveness.json"
    input_size: int = 64
    context: float = 1.6
    epochs: int = 30
    batch_size: int = 32
    lr: float = 2e-3
    val_fraction: float = 0.2
    bpcer: float = 0.05
    video_every: int = 5
    seed: int = 0


@dataclass
class LivenessTrainResult:
    model: str
    images: dict[str, int]
    skipped: dict[str, int]
    threshold: float
    val: dict[str, float]
    seconds: float


def _files(root: Path) -> list[Path]:
    if not root.is_dir():
        raise LivenessDataError(f"{root}: not a folder")
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES | VIDEO_SUFFIXES)


def collect_crops(root: Path, context: float, *, video_every: int = 5,
                  progress: Callable[[int], None] | None = None,
                  detector: Any = None) -> tuple[np.ndarray, dict[str, int]]:
    """(N, KEEP, KEEP, 3) uint8 loose crops (``context`` x 1.25, so augmentation can shift
    and zoom inside them) of the largest face of every image and sampled video frame under
    ``root``, and counts of what was skipped (unreadable, no face)."""
    from faceid.detect import FaceDetector
    from faceid.imageio import load_image
    from faceid.video import read_frames

    detector = detector or FaceDetector()
    crops: list[np.ndarray] = []
    skipped = {"unreadable": 0, "no_face": 0}
    for path in _files(root):
        try:
            if path.suffix.lower() in VIDEO_SUFFIXES:
                frames = [f for _, f in read_frames(str(path), every=video_every)]
            else:
                frames = [load_image(path)]
        except FaceIDError:
            skipped["unreadable"] += 1
            frames = []
        for frame in frames:
            faces = detector.detect(frame)
            if not faces:
                skipped["no_face"] += 1
                continue
            face = max(faces, key=lambda f: f.size)
            crops.append(face_crop(frame, face.box, KEEP, context * 1.25))
        if progress:
            progress(1)
    return (np.stack(crops) if crops else np.zeros((0, KEEP, KEEP, 3), np.uint8)), skipped


def _augment(crops: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """Random crop of 1/1.25 of the stored side (shifted, zoomed +-10%), mirrored half the
    time, brightness/contrast jittered; resized to ``size``."""
    out = np.empty((len(crops), size, size, 3), np.uint8)
    box = (KEEP * 0.1, KEEP * 0.1, KEEP * 0.9, KEEP * 0.9)
    for i, c in enumerate(crops):
        jitter = np.array([rng.uniform(-0.06, 0.06), rng.uniform(-0.06, 0.06),
                           rng.uniform(-0.1, 0.1)])
        img = face_crop(c, box, size, 1.0, jitter).astype(np.float32)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        img = (img - 128) * rng.uniform(0.8, 1.2) + 128 + rng.uniform(-20, 20)
        out[i] = np.clip(img, 0, 255)
    return out


def _centre(crops: np.ndarray, size: int) -> np.ndarray:
    box = (KEEP * 0.1, KEEP * 0.1, KEEP * 0.9, KEEP * 0.9)
    return np.stack([face_crop(c, box, size, 1.0) for c in crops])


def error_rates(p_live: np.ndarray, is_live: np.ndarray, threshold: float) -> dict[str, float]:
    """ISO/IEC 30107-3 style: APCER = attacks accepted as live, BPCER = live refused."""
    accept = p_live >= threshold
    attacks, live = ~is_live, is_live
    return {"apcer": float(accept[attacks].mean()) if attacks.any() else float("nan"),
            "bpcer": float((~accept[live]).mean()) if live.any() else float("nan")}


def train_liveness(cfg: LivenessTrainConfig, *, log: Callable[[str], None] = print,
                   progress: Callable[[int, int], Callable[[int], None]] | None = None,
                   crops: tuple[np.ndarray, np.ndarray] | None = None) -> LivenessTrainResult:
    """Train, pick the threshold on the held-out split, write ``cfg.out`` (JSON) and its
    weights beside it (``.pt``). ``crops`` = (live, spoof) arrays from :func:`collect_crops`
    skip the detection step (the benchmark reuses them)."""
    import torch

    from faceid.nn.liveness_net import build_liveness_net

    start = time.time()
    rng = np.random.default_rng(cfg.seed)
    torch.manual_seed(cfg.seed)
    skipped: dict[str, int] = {}
    if crops is None:
        parts = []
        for name, folder in (("live", cfg.live_dir), ("spoof", cfg.spoof_dir)):
            files = _files(Path(folder))
            tick = progress(len(files), name) if progress else None
            arr, skip = collect_crops(Path(folder), cfg.context, video_every=cfg.video_every,
                                      progress=tick)
            skipped.update({f"{name}_{k}": v for k, v in skip.items()})
            parts.append(arr)
        live, spoof = parts
    else:
        live, spoof = crops
    for name, arr in (("live", live), ("spoof", spoof)):
        if len(arr) < 2:
            raise LivenessDataError(f"{cfg.live_dir if name == 'live' else cfg.spoof_dir}: "
                                    f"{len(arr)} usable {name} face(s); need at least 2")
    x = np.concatenate([live, spoof])
    y = np.r_[np.ones(len(live)), np.zeros(len(spoof))].astype(np.float32)
    val = np.zeros(len(y), bool)
    for cls in (0, 1):
        idx = rng.permutation(np.flatnonzero(y == cls))
        val[idx[:max(1, int(round(cfg.val_fraction * len(idx))))]] = True
    xt, yt, xv, yv = x[~val], y[~val], x[val], y[val]
    net = build_liveness_net("liveness_v1")
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=1e-4)
    steps = cfg.epochs * max(1, int(np.ceil(len(yt) / cfg.batch_size)))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, cfg.lr, total_steps=steps)
    pos_weight = torch.tensor((yt == 0).sum() / max(1, (yt == 1).sum()))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    tick = progress(cfg.epochs, "epochs") if progress else None
    for epoch in range(cfg.epochs):
        net.train()
        order = rng.permutation(len(yt))
        total = 0.0
        for b in range(0, len(order), cfg.batch_size):
            idx = order[b:b + cfg.batch_size]
            if len(idx) < 2:
                continue
            batch = torch.from_numpy(_augment(xt[idx], cfg.input_size, rng)).permute(0, 3, 1, 2)
            loss = loss_fn(net(batch.float()), torch.from_numpy(yt[idx]))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if tick:
            tick(1)
        if epoch == cfg.epochs - 1 or (epoch + 1) % 10 == 0:
            log(f"epoch {epoch + 1}/{cfg.epochs}: loss {total / max(1, len(yt)):.4f}")
    net.eval()
    with torch.inference_mode():
        xv_t = torch.from_numpy(_centre(xv, cfg.input_size)).permute(0, 3, 1, 2).float()
        p_val = torch.sigmoid(net(xv_t)).numpy()
    live_val = np.sort(p_val[yv == 1])
    # the highest threshold that refuses at most cfg.bpcer of the held-out live faces
    k = int(np.floor(cfg.bpcer * len(live_val)))
    threshold = float(min(0.99, max(0.01, live_val[k] - 1e-6))) if len(live_val) else 0.5
    rates = error_rates(p_val, yv == 1, threshold)
    out = Path(cfg.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    weights = out.with_suffix(".pt")
    torch.save(net.state_dict(), weights)
    info = {
        "format": MODEL_FORMAT, "name": out.stem, "architecture": "liveness_v1",
        "architecture_kwargs": {}, "input_size": cfg.input_size, "context": cfg.context,
        "threshold": round(threshold, 6),
        "weights": {"path": weights.name,
                    "sha256": hashlib.sha256(weights.read_bytes()).hexdigest()},
        "training": {**asdict(cfg), "live_images": len(live),
                     "spoof_images": len(spoof), "skipped": skipped},
        "metrics": {"held_out": {"live": int((yv == 1).sum()), "spoof": int((yv == 0).sum()),
                                 **{k: round(v, 4) for k, v in rates.items()}}},
    }
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(info, indent=2) + "\n")
    tmp.replace(out)
    return LivenessTrainResult(str(out), {"live": len(live), "spoof": len(spoof)},
                               skipped, threshold, rates, round(time.time() - start, 1))


def register(app: typer.Typer) -> None:
    """Add the ``train-liveness`` command to ``app``."""
    app.command("train-liveness")(train_liveness_cmd)


def train_liveness_cmd(
    live_dir: Annotated[Path, typer.Argument(help="Folder of live face photos or clips (searched recursively).")],
    spoof_dir: Annotated[Path, typer.Argument(help="Folder of attack photos or clips: prints, screens.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Model file to write (JSON; weights beside it as .pt).")] = Path("reports/liveness-model/liveness.json"),
    epochs: Annotated[int, typer.Option(help="Training epochs.")] = 30,
    input_size: Annotated[int, typer.Option(help="Side of the network's input crop, px.")] = 64,
    context: Annotated[float, typer.Option(help="Crop side as a multiple of the face box (context shows print edges, bezels).")] = 1.6,
    bpcer: Annotated[float, typer.Option(help="Threshold: refuse at most this fraction of held-out live faces.")] = 0.05,
    val_fraction: Annotated[float, typer.Option(help="Fraction of each folder held out to choose the threshold.")] = 0.2,
    video_every: Annotated[int, typer.Option(help="Use every N-th frame of video clips.")] = 5,
    seed: Annotated[int, typer.Option(help="Seed for the split, augmentation and initialisation.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Train the optional liveness CNN on a site's own live and spoof photos.

    Faces are detected once (largest face per image or sampled video frame); a held-out
    part of each folder sets the model's threshold and its APCER / BPCER. Use the model with
    the camera loop's liveness option.

    Example: faceid train-liveness site/live site/spoof --out models/door-liveness.json
    """
    from tqdm import tqdm

    bars: list[tqdm] = []

    def progress(total: int, what: str) -> Callable[[int], None]:
        bar = tqdm(total=total, desc=what, unit="file" if what != "epochs" else "epoch",
                   leave=False, disable=as_json)
        bars.append(bar)
        return bar.update

    cfg = LivenessTrainConfig(str(live_dir), str(spoof_dir), str(out), input_size, context,
                              epochs, bpcer=bpcer, val_fraction=val_fraction,
                              video_every=video_every, seed=seed)
    try:
        result = train_liveness(cfg, log=(lambda s: None) if as_json else tqdm.write,
                                progress=progress)
    finally:
        for bar in bars:
            bar.close()
    if as_json:
        typer.echo(json.dumps(asdict(result), indent=2))
        return
    typer.echo(f"model: {result.model}")
    typer.echo(f"faces: {result.images['live']} live, {result.images['spoof']} spoof"
               + (f" (skipped: {result.skipped})" if any(result.skipped.values()) else ""))
    typer.echo(f"threshold: {result.threshold:.4f} (held out: APCER {result.val['apcer']:.2%}, "
               f"BPCER {result.val['bpcer']:.2%})")
    typer.echo(f"time: {result.seconds:.0f} s")
