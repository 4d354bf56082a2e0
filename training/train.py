"""The training loop, in one flat function (insightface's ``train.py`` style): P x K batches
of cached chips, augmentation, the triplet loss with online mining plus (optionally) the
binary pair head, AdamW with a cosine schedule, per-epoch logging, checkpoints after every
epoch, periodic evaluation on held-out people, and a final model file with its calibrated
tau and measured metrics.

Protocol (never score a model on people it trained on): the training identities come from
``data`` (restricted to ``people``, e.g. LFW View 1 ``peopleDevTrain.txt``); a fraction of
them (``val_fraction``) is held out of training entirely, and their pairs are used for the
periodic evaluation and for calibrating tau. ``test_pairs`` (e.g. ``pairsDevTest.txt``,
people disjoint from ``peopleDevTrain.txt``) is scored once, at the end, and never steers
training: the final model is the last epoch's, whatever the test says.

Resume: the checkpoint holds model, head, optimiser, step count, sampler and RNG states and
the time spent, so ``resume=True`` after a kill continues with the batches an uninterrupted
run would have drawn. Multi-GPU: launched by ``torchrun`` (``WORLD_SIZE`` > 1) each process
takes every world-th batch and DistributedDataParallel averages the gradients; rank 0 alone
evaluates and writes files.
"""

from __future__ import annotations

import hashlib
import os
import random
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from faceid import metrics
from faceid.atomic import replacing
from faceid.errors import CheckpointError, TrainingDataError
from faceid.modelfile import ModelInfo, Views, save_model_info
from training.augment import augment
from faceid.calibrate import calibrate
from training.data import (
    ChipSet,
    LandmarkCache,
    PairSet,
    identity_pairs,
    load_exported,
    load_pair_set,
    load_training_set,
    read_people,
    split_identities,
)
from training.losses import Mining, PairHead, pair_head_loss, triplet_loss
from training.models import ModelSpec, build_encoder
from training.sampler import PKSampler

CHECKPOINT = "checkpoint.pt"


@dataclass
class TrainConfig:
    """Everything a run depends on; recorded in the checkpoint and the model file."""

    data: str                               # folder of identity folders, or an exported .npz
    out: str                                # run folder: checkpoint, log, model files
    people: str | None = None               # restrict to these people (LFW people file)
    test_pairs: str | None = None           # scored once at the end (people-disjoint!)
    pairs_root: str | None = None
    cache: str = "reports/train-cache"
    start: str = "scratch"                  # scratch | finetune
    base_model: str | None = None           # model file to fine-tune (default: dlib ResNet)
    freeze_stages: int = 0
    chip_size: int = 64
    widths: list[int] | None = None         # scratch: channels per stage (default 32-64-128-256)
    epochs: int = 40
    minutes: float | None = None            # stop when this much training time is spent
    p: int = 32
    k: int = 4
    mining: str = "batch-hard"
    margin: float = 0.2
    head: str = "abs"                       # none | abs | chi2
    head_weight: float = 1.0
    lr: float = 2e-3
    weight_decay: float = 5e-4
    warmup_epochs: float = 1.0
    val_fraction: float = 0.1
    eval_every: int = 5                     # epochs; 0 = only at the end
    far: float = 1e-3
    seed: int = 0
    device: str = "cpu"
    name: str = "faceid-trained"
    max_identities: int | None = None       # first N identities (for tiny runs)

    def architecture_key(self) -> dict[str, Any]:
        """The settings a checkpoint must share with the run resuming it."""
        return {"start": self.start, "chip_size": self.chip_size, "widths": self.widths,
                "head": self.head,
                "base_model": self.base_model}


@dataclass
class TrainResult:
    model_file: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _dist() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        torch.distributed.init_process_group(backend)
    return (torch.distributed.get_rank() if world > 1 else 0), world


def train(cfg: TrainConfig, *, resume: bool = False, log: Callable[[str], None] = print,
          progress: bool = True) -> TrainResult:
    """Train, evaluate and write ``<out>/<name>.json`` (+ ``.pt``); returns its figures."""
    rank, world = _dist()
    if rank != 0:
        log = _quiet          # one process reports; the others only train
    device = torch.device(cfg.device if world == 1 or cfg.device == "cpu"
                          else f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}")
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT
    if ckpt_path.exists() and not resume:
        raise CheckpointError(f"{ckpt_path}: a checkpoint of an earlier run is there; pass "
                              "--resume to continue it, or choose another --out")
    if resume and not ckpt_path.exists():
        raise CheckpointError(f"{ckpt_path}: no checkpoint to resume from")
    seed_everything(cfg.seed)
    mining = Mining(cfg.mining)
    if cfg.head not in ("none", "abs", "chi2"):
        raise ValueError("head must be none, abs or chi2")

    net, spec, base = build_encoder(cfg.start, chip_size=cfg.chip_size, widths=cfg.widths,
                                    base_model=cfg.base_model, freeze_stages=cfg.freeze_stages)
    template = np.asarray(spec.template)
    notes: list[str] = []
    cache = LandmarkCache(cfg.cache)
    people = read_people(cfg.people) if cfg.people else None
    bar_args = {"file": sys.stderr, "disable": None if progress else True, "mininterval": 2}
    exported_test = None
    if Path(cfg.data).suffix == ".npz":      # chips exported by training.data.export_chips
        data, exported_test = load_exported(cfg.data, spec.chip_size, template)
    else:
        with tqdm(desc="detect + align (cached)", unit="img", **bar_args) as bar:
            data = load_training_set(cfg.data, cache, spec.chip_size, template, people=people,
                                     progress=bar.update, notes=notes,
                                     max_identities=cfg.max_identities)
    for n in notes:
        log(f"note: {n}")
    train_ids, val_ids = split_identities(len(data.names), cfg.val_fraction, cfg.seed)
    if len(train_ids) < 2:
        raise TrainingDataError(f"{cfg.data}: {len(train_ids)} training identities with two "
                                "usable faces; at least two are needed")
    train_set = data.subset(train_ids)
    val_set = data.subset(val_ids) if len(val_ids) >= 2 else None
    val_pairs = _held_out_pairs(val_set, cfg.seed) if val_set is not None else None
    test = exported_test if rank == 0 else None
    if cfg.test_pairs and rank == 0:
        with tqdm(desc="test pairs (cached)", unit="img", **bar_args) as bar:
            test = load_pair_set(cfg.test_pairs, cfg.pairs_root, cache, spec.chip_size,
                                 template, bar.update)
    log(f"training on {train_set.report['identities']} identities / "
        f"{train_set.report['images']} images; held out {len(val_ids)} identities "
        f"({0 if val_pairs is None else len(val_pairs.labels)} pairs)")

    net = net.to(device)
    head = PairHead(128, chi_square=cfg.head == "chi2").to(device) if cfg.head != "none" else None
    params = [p for p in net.parameters() if p.requires_grad]
    if head is not None:
        params += list(head.parameters())
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sampler = PKSampler(train_set.labels, cfg.p, cfg.k, cfg.seed, rank=rank, world=world)
    steps_per_epoch = len(sampler.members) // cfg.p // world
    total = max(1, cfg.epochs * steps_per_epoch)
    warm = max(1, int(cfg.warmup_epochs * steps_per_epoch))
    gen = torch.Generator().manual_seed(cfg.seed)
    model, head_model = net, head
    if world > 1:  # gradients of both the encoder and the head are averaged across processes
        ids = [device.index] if device.type == "cuda" else None
        model = torch.nn.parallel.DistributedDataParallel(net, device_ids=ids)
        if head is not None:
            head_model = torch.nn.parallel.DistributedDataParallel(head, device_ids=ids)

    epoch, step_no, spent, history = 0, 0, 0.0, []
    if resume:
        state = _load_checkpoint(ckpt_path, cfg, spec)
        net.load_state_dict(state["model"])
        if head is not None:
            head.load_state_dict(state["head"])
        opt.load_state_dict(state["optimizer"])
        sampler.load_state_dict(state["sampler"])
        gen.set_state(state["augment_rng"])
        torch.set_rng_state(state["torch_rng"])
        epoch, step_no = state["epoch"], state["step"]
        spent, history = state["seconds"], state["history"]
        log(f"resumed from {ckpt_path} after epoch {epoch} ({spent / 60:.1f} min spent)")

    chips = torch.from_numpy(train_set.chips)
    labels = torch.from_numpy(train_set.labels)
    budget = cfg.minutes * 60 if cfg.minutes else float("inf")
    stopped = "epochs"
    while epoch < cfg.epochs:
        if spent >= budget:
            stopped = "time budget"
            break
        model.train()
        if head is not None:
            head.train()
        batches = sampler.epoch()
        sums: dict[str, float] = {}
        images, done, t0 = 0, 0, time.perf_counter()
        with tqdm(batches, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch",
                  **{**bar_args, "disable": bar_args["disable"] or rank != 0 or None}) as bar:
            for idx in bar:
                x = augment(chips[idx], gen).to(device)
                y = labels[idx].to(device)
                emb = F.normalize(model(x), dim=1)
                trip = triplet_loss(emb, y, cfg.margin, mining)
                loss = trip.loss
                step = {"triplet_loss": trip.loss.item(), "active": trip.active,
                        "pos_dist": trip.pos_dist, "neg_dist": trip.neg_dist}
                if head is not None:
                    head_loss, head_acc = pair_head_loss(head_model, emb, y)
                    loss = loss + cfg.head_weight * head_loss
                    step.update(head_loss=head_loss.item(), head_acc=head_acc)
                for group in opt.param_groups:
                    group["lr"] = learning_rate(cfg.lr, step_no, warm, total,
                                                (spent + time.perf_counter() - t0) / budget)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step_no += 1
                step["loss"] = loss.item()
                for k_, v in step.items():
                    sums[k_] = sums.get(k_, 0.0) + v
                images += len(idx)
                done += 1
                bar.set_postfix(loss=f"{step['loss']:.3f}", active=f"{trip.active:.2f}")
                if _any_rank(spent + time.perf_counter() - t0 >= budget, world, device):
                    break
        seconds = time.perf_counter() - t0
        spent += seconds
        epoch += 1
        row = {"epoch": epoch, **{k_: v / max(1, done) for k_, v in sums.items()},
               "images": images * world, "seconds": round(seconds, 2),
               "images_per_s": round(images * world / max(seconds, 1e-9), 1),
               "lr": opt.param_groups[0]["lr"],
               # the machine's 1-minute load: throughput figures mean little without it
               "load_avg": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}
        if rank == 0 and val_pairs is not None and cfg.eval_every and epoch % cfg.eval_every == 0:
            row["val"] = score_pairs(net, head, val_pairs, device)[0]
        history.append(row)
        if rank == 0:
            _save_checkpoint(ckpt_path, cfg, spec, net, head, opt, sampler, gen,
                             epoch, step_no, spent, history)
        log(_epoch_line(row))
    if world > 1:
        torch.distributed.barrier()
    if rank != 0:
        return TrainResult(out / f"{cfg.name}.json", {}, history, notes)
    return _finish(cfg, spec, base, net, head, data, train_set, val_pairs, test, history,
                   spent, stopped, notes, device, log)


def _quiet(line: str) -> None:
    pass


def _any_rank(flag: bool, world: int, device: torch.device) -> bool:
    """True if ``flag`` is true on any process (so every rank stops at the same step)."""
    if world == 1:
        return flag
    t = torch.tensor([float(flag)], device=device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())


def learning_rate(peak: float, step: int, warmup: int, total: int, time_fraction: float) -> float:
    """Linear warm-up, then a cosine decay to zero over the run. With a time budget the run's
    progress is the larger of steps done / planned and time spent / budget, so a run cut short
    by its budget still ends annealed instead of stopping at a high learning rate."""
    progress = min(1.0, max(step / total, time_fraction))
    return peak * min(1.0, (step + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * progress))


def _held_out_pairs(val: ChipSet, seed: int) -> PairSet:
    a, b, y = identity_pairs(val.labels, max_positive=3000, negatives=6000, seed=seed)
    return PairSet(val.chips, np.ones(len(val.chips), bool), a, b, y, "held-out identities")


@torch.no_grad()
def embed_chips(net: torch.nn.Module, chips: np.ndarray, device: torch.device, *,
                flip: bool = False, batch: int = 256) -> np.ndarray:
    """Unit encodings of uint8 chips (N, S, S, 3); with ``flip`` the mean of the chip's and
    its mirror image's encodings, renormalised (the ``standard`` view preset)."""
    was = net.training
    net.eval()
    out = []
    for i in range(0, len(chips), batch):
        x = torch.from_numpy(chips[i:i + batch]).to(device).permute(0, 3, 1, 2).float()
        e = F.normalize(net(x), dim=1)
        if flip:
            e = F.normalize(e + F.normalize(net(x.flip(3)), dim=1), dim=1)
        out.append(e.cpu())
    net.train(was)
    return torch.cat(out).numpy() if out else np.zeros((0, 128), np.float32)


def score_pairs(net: torch.nn.Module, head: PairHead | None, pairs: PairSet, device: torch.device,
           flip: bool = True) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Figures on a pair set: by distance (best-threshold and 10-fold accuracy, AUC), and by
    the head when there is one. Pairs with a failed image count as wrong. Returns (figures,
    distances with NaN for failed pairs, head logits)."""
    emb = embed_chips(net, pairs.chips, device, flip=flip)
    ok = pairs.ok[pairs.a] & pairs.ok[pairs.b]
    d = np.linalg.norm(emb[pairs.a] - emb[pairs.b], axis=1)
    d = np.where(ok, d, np.nan)
    y = pairs.labels
    folds = np.arange(len(y)) % 10
    s = metrics.summary(d[ok], y[ok])
    fig: dict[str, Any] = {"pairs": int(len(y)), "failed_pairs": int((~ok).sum()),
                           "best_accuracy": s["best_accuracy"] * ok.mean(),
                           "cv10_accuracy": metrics.kfold_accuracy(d, y, folds)["mean_accuracy"],
                           "balanced_accuracy": _balanced_accuracy(d[ok], y[ok]),
                           "auc": s["auc"], "eer": s["eer"], "tar_at_far_1e-3": s["tar_at_far"]}
    logits = np.full(len(y), np.nan)
    if head is not None:
        was = head.training
        head.eval()
        with torch.no_grad():
            e = torch.from_numpy(emb).to(device)
            logits = head(e[torch.from_numpy(pairs.a)], e[torch.from_numpy(pairs.b)]).cpu().numpy()
        head.train(was)
        logits = np.where(ok, logits, np.nan)
        fig["head_accuracy_at_0"] = float(np.mean(np.where(ok, logits > 0, y == 0) == (y == 1)))
        fig["head_cv10_accuracy"] = metrics.kfold_accuracy(-logits, y, folds)["mean_accuracy"]
        fig["head_auc"] = float(metrics.summary(-logits[ok], y[ok])["auc"])
    return fig, d, logits


def _balanced_accuracy(d: np.ndarray, y: np.ndarray) -> float:
    """Best (TAR + TRR) / 2 over thresholds: accuracy as if same and different pairs were
    equally many (held-out pairs have far more different-person pairs)."""
    far, tar, _ = metrics.roc_points(d, y)
    return float(np.max((tar + 1 - far) / 2))


def _epoch_line(row: dict[str, Any]) -> str:
    line = (f"epoch {row['epoch']}: loss {row['loss']:.4f} (triplet {row['triplet_loss']:.4f}"
            + (f", head {row['head_loss']:.4f}" if "head_loss" in row else "")
            + f"), active {100 * row['active']:.1f}%, d+ {row['pos_dist']:.3f}, "
            f"d- {row['neg_dist']:.3f}, {row['images_per_s']:.0f} img/s")
    if "val" in row:
        line += (f"; held-out balanced acc {100 * row['val']['balanced_accuracy']:.2f}% "
                 f"AUC {row['val']['auc']:.4f}")
    return line


def _save_checkpoint(path: Path, cfg: TrainConfig, spec: ModelSpec, net: torch.nn.Module,
                     head: PairHead | None, opt: torch.optim.Optimizer, sampler: PKSampler,
                     gen: torch.Generator, epoch: int, step: int, seconds: float,
                     history: list[dict[str, Any]]) -> None:
    state = {"format": "faceid-checkpoint/1", "config": asdict(cfg), "spec": spec.to_json(),
             "architecture_key": cfg.architecture_key(), "model": net.state_dict(),
             "head": head.state_dict() if head is not None else None,
             "optimizer": opt.state_dict(), "step": step,
             "sampler": sampler.state_dict(), "augment_rng": gen.get_state(),
             "torch_rng": torch.get_rng_state(), "epoch": epoch, "seconds": seconds,
             "history": history}
    with replacing(path, "wb") as fh:
        torch.save(state, fh)


def _load_checkpoint(path: Path, cfg: TrainConfig, spec: ModelSpec) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one clear error
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or state.get("format") != "faceid-checkpoint/1":
        raise CheckpointError(f"{path}: not a faceid training checkpoint")
    theirs, ours = state["spec"], spec.to_json()
    if theirs["architecture"] != ours["architecture"] or theirs["kwargs"] != ours["kwargs"]:
        raise CheckpointError(
            f"{path}: checkpoint is of architecture {theirs['architecture']} "
            f"{theirs['kwargs']}, this run builds {ours['architecture']} {ours['kwargs']}")
    if state["architecture_key"] != cfg.architecture_key():
        raise CheckpointError(f"{path}: checkpoint was made with {state['architecture_key']}, "
                              f"this run uses {cfg.architecture_key()}")
    return state


def _finish(cfg: TrainConfig, spec: ModelSpec, base: ModelInfo, net: torch.nn.Module,
            head: PairHead | None, data: ChipSet, train_set: ChipSet,
            val_pairs: PairSet | None, test: PairSet | None, history: list[dict[str, Any]],
            spent: float, stopped: str, notes: list[str], device: torch.device,
            log: Callable[[str], None]) -> TrainResult:
    """Calibrate tau per view preset on the held-out identities, score the test pairs, and
    write the model file (JSON) with its weights (``.pt``) beside it."""
    out = Path(cfg.out)
    weights = out / f"{cfg.name}.pt"
    torch.save({"model": net.state_dict(),
                "head": head.state_dict() if head is not None else None}, weights)
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()
    views: dict[str, Views] = {}
    calib_pairs = val_pairs
    for name, flip in (("fast", False), ("standard", True)):
        if calib_pairs is None:
            views[name] = Views((1.0,), flip, 1.0, {"slope": -10.0, "intercept": 10.0},
                                {"rule": "uncalibrated (no held-out identities)"})
            continue
        _, d, _ = score_pairs(net, None, calib_pairs, device, flip=flip)
        cal = calibrate(d, calib_pairs.labels, cfg.far)
        cal.update(data=f"pairs of the {cfg.val_fraction:.0%} of identities held out of "
                        f"training ({cfg.people or cfg.data})", views=name)
        views[name] = Views((1.0,), flip, cal["tau"],
                            {"slope": cal["slope"], "intercept": cal["intercept"]}, cal)
    result: dict[str, Any] = {}
    if test is not None:
        fig, d, _ = score_pairs(net, head, test, device, flip=True)
        tau = views["standard"].tau
        ok = ~np.isnan(d)
        fig["accuracy_at_tau"] = float(np.mean(np.where(ok, d <= tau, test.labels == 0)
                                               == (test.labels == 1)))
        fig["tau"] = tau
        fig["far_at_tau"] = float(np.mean((d <= tau)[ok & (test.labels == 0)]))
        result = {"test_pairs": cfg.test_pairs or test.source, "views": "standard", **fig}
        log(f"test ({Path(result['test_pairs']).name}, people-disjoint): best-threshold accuracy "
            f"{100 * fig['best_accuracy']:.2f}%, 10-fold {100 * fig['cv10_accuracy']:.2f}%, "
            f"at tau {tau:.4f} (FAR {cfg.far:g} on held-out people) "
            f"{100 * fig['accuracy_at_tau']:.2f}%, AUC {fig['auc']:.4f}"
            + (f"; head 10-fold {100 * fig['head_cv10_accuracy']:.2f}%" if head else ""))
    throughput = [h["images_per_s"] for h in history]
    info = ModelInfo(
        name=cfg.name, architecture=spec.architecture, embedding_size=128,
        weights={"format": "torch", "path": weights.name, "sha256": digest},
        chip_size=spec.chip_size, template=np.asarray(spec.template), views=views,
        default_views="standard", architecture_kwargs=spec.kwargs,
        extra={"chip": {"landmarks": "mtcnn-5 (left eye, right eye, nose, mouth left, mouth right)",
                        "template_source": f"the template of {base.name}, scaled to the chip"},
               "distance": "euclidean between L2-normalised embeddings",
               "training_data": (f"{cfg.data}" + (f" restricted to {cfg.people}" if cfg.people else "")
                                 + f": {train_set.report['identities']} identities, "
                                 f"{train_set.report['images']} images"),
               "training": {"config": asdict(cfg), "spec": spec.to_json(), "data": data.report,
                            "epochs_run": len(history), "seconds": round(spent, 1),
                            "stopped_by": stopped,
                            "images_per_s_median": float(np.median(throughput)) if throughput else None,
                            "history": history},
               "metrics": result})
    model_file = out / f"{cfg.name}.json"
    save_model_info(info, model_file)
    log(f"model written: {model_file}")
    return TrainResult(model_file, result, history, notes)
