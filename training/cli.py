"""The ``faceid train`` command, registered onto the main Typer app by ``cli.py``:

    from training.cli import register as register_training; register_training(app)

Thin, like every command: parse options into a :class:`training.train.TrainConfig`, call
:func:`training.train.train`, format the result. ``python -m training.cli train ...`` runs the
same command stand-alone (with the main app's one-line error handling).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Optional

import typer

from training.choices import Activation, Mining, Pool, Start


def register(app: typer.Typer) -> None:
    """Add the ``train`` and ``train-digits`` commands to ``app``."""
    app.command("train")(train_cmd)
    app.command("train-digits")(train_digits_cmd)


def train_cmd(
    data: Annotated[Path, typer.Argument(help="Folder with one sub-folder of photos per person (LFW: lfw-deepfunneled/).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: checkpoint, model file (<name>.json + .pt).")] = Path("reports/train-run"),
    people: Annotated[Optional[Path], typer.Option(help="Train only on these people (LFW people file, e.g. peopleDevTrain.txt, or one name per line).")] = None,
    test_pairs: Annotated[Optional[Path], typer.Option(help="Labelled pairs scored once at the end; must not share people with the training data (LFW: pairsDevTest.txt).")] = None,
    pairs_root: Annotated[Optional[Path], typer.Option(help="Folder the test pairs' image paths are relative to (LFW: the dataset folder).")] = None,
    start: Annotated[Start, typer.Option(help="'scratch': the compact encoder from the shared blocks; 'finetune': start from --base-model.")] = Start.scratch,
    base_model: Annotated[Optional[str], typer.Option(help="Model file to fine-tune (default: the bundled dlib ResNet).")] = None,
    freeze_stages: Annotated[int, typer.Option(help="Fine-tuning: freeze the stem and the first N-1 residual stages (0 = train all).")] = 0,
    chip: Annotated[int, typer.Option(help="Chip size for --start scratch (fine-tuning uses the base model's).")] = 64,
    widths: Annotated[Optional[str], typer.Option(help="Scratch encoder: channels of its four stages, e.g. 24,48,96,192 (default 32,64,128,256).")] = None,
    epochs: Annotated[int, typer.Option(help="Epochs (each visits every identity once); also sets the cosine schedule's length.")] = 40,
    minutes: Annotated[Optional[float], typer.Option(help="Stop after this much training time (minutes), checkpoint and finish.")] = None,
    p: Annotated[int, typer.Option("--batch-identities", "-P", help="Identities per batch (P).")] = 32,
    k: Annotated[int, typer.Option("--batch-images", "-K", help="Images per identity per batch (K; all of a person's images when fewer).")] = 4,
    mining: Annotated[Mining, typer.Option(help="Triplet mining: batch-hard, semi-hard (FaceNet) or batch-all.")] = Mining.batch_hard,
    margin: Annotated[float, typer.Option(help="Triplet margin alpha (squared-distance units).")] = 0.2,
    head: Annotated[str, typer.Option(help="Binary pair head: 'abs' (|f_i - f_j|), 'chi2' (chi-square features) or 'none'.")] = "abs",
    head_weight: Annotated[float, typer.Option(help="Weight of the head's loss beside the triplet loss.")] = 1.0,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW, warm-up then cosine).")] = 2e-3,
    val_fraction: Annotated[float, typer.Option(help="Fraction of identities held out of training for periodic evaluation and tau.")] = 0.1,
    eval_every: Annotated[int, typer.Option(help="Evaluate on the held-out identities every N epochs (0: only at the end).")] = 5,
    far: Annotated[float, typer.Option(help="Target false-accept rate for the model's tau.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed for sampling, augmentation and initialisation.")] = 0,
    cache: Annotated[Path, typer.Option(help="Where detected landmarks and aligned chips are cached.")] = Path("reports/train-cache"),
    name: Annotated[str, typer.Option(help="Model name (and file stem in --out).")] = "faceid-trained",
    device: Annotated[str, typer.Option(help="cpu (default) or cuda; multi-GPU: launch with torchrun.")] = "cpu",
    max_identities: Annotated[Optional[int], typer.Option(help="Use only the first N identities with two or more photos (tiny runs).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its checkpoint.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Train a 128-d face encoder with triplet loss (online mining) and a binary pair head.

    Faces are detected and aligned once and cached; each batch holds P people x K photos.
    Checkpoints after every epoch; --resume continues a killed run. The result is a model
    file usable with --model everywhere (tau calibrated for --far on held-out people).

    Example (LFW View 1: train on peopleDevTrain, report on pairsDevTest):
    faceid train ../shared/datasets/lfw/lfw-deepfunneled --people ../shared/datasets/lfw/peopleDevTrain.txt --test-pairs ../shared/datasets/lfw/pairsDevTest.txt --pairs-root ../shared/datasets/lfw --minutes 55 --out reports/scratch
    """
    from training.train import TrainConfig, train

    if head not in ("abs", "chi2", "none"):
        raise typer.BadParameter("--head must be abs, chi2 or none")
    cfg = TrainConfig(
        data=str(data), out=str(out), people=str(people) if people else None,
        test_pairs=str(test_pairs) if test_pairs else None,
        pairs_root=str(pairs_root) if pairs_root else None, cache=str(cache),
        start=start.value, base_model=base_model, freeze_stages=freeze_stages, chip_size=chip,
        widths=[int(w) for w in widths.split(",")] if widths else None,
        epochs=epochs, minutes=minutes, p=p, k=k, mining=mining.value, margin=margin,
        head=head, head_weight=head_weight, lr=lr, val_fraction=val_fraction,
        eval_every=eval_every, far=far, seed=seed, device=device, name=name,
        max_identities=max_identities)

    def log(line: str) -> None:
        print(line, file=sys.stderr if as_json else sys.stdout, flush=True)

    result = train(cfg, resume=resume, log=log)
    if os.environ.get("RANK", "0") != "0":
        return                # under torchrun, rank 0 reports
    summary = {"model": str(result.model_file), "epochs": len(result.history),
               "metrics": result.metrics, "notes": result.notes,
               "last_epoch": result.history[-1] if result.history else None,
               "config": asdict(cfg)}
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(f"model file: {result.model_file} (use it with --model)")


def train_digits_cmd(
    epochs: Annotated[int, typer.Option(min=1, max=10_000, help="Epochs over the training split.")] = 40,
    batch_size: Annotated[int, typer.Option(min=1, max=4096, help="Images per batch.")] = 32,
    lr: Annotated[float, typer.Option(min=1e-6, max=1.0, help="Peak learning rate (Adam, one-cycle schedule).")] = 3e-3,
    test_fraction: Annotated[float, typer.Option(min=0.05, max=0.5, help="Share of each digit held out for the test.")] = 0.2,
    seed: Annotated[int, typer.Option(help="Seed of the split, the initialisation and the augmentation.")] = 0,
    act: Annotated[Activation, typer.Option(help="Activation: tanh (LeCun's) or relu.")] = Activation.tanh,
    pool: Annotated[Pool, typer.Option(help="Subsampling: avg (LeCun's) or max.")] = Pool.avg,
    no_augment: Annotated[bool, typer.Option("--no-augment", help="Train on the images as they are (no rotation, scale or shift).")] = False,
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write the trained weights (a torch state dict) here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")] = False,
) -> None:
    """Train LeNet-5 on scikit-learn's bundled digits (1,797 8x8 images, padded to 32x32)
    and report its accuracy on a held-out, stratified split fixed by --seed.

    Runs on one CPU thread unless --threads says otherwise (about 15 s). The weights are
    written only with --out; rerunning the command reproduces them.

    Example: faceid train-digits --epochs 40 --json
    """
    from faceid.atomic import replacing
    from faceid.terminal import SafeConsole
    from training.digits import DigitsConfig, train_digits

    threads = os.environ.get("FACEID_THREADS", "").strip()
    cfg = DigitsConfig(epochs=epochs, batch_size=batch_size, lr=lr, test_fraction=test_fraction,
                       seed=seed, act=act.value, pool=pool.value, augment=not no_augment,
                       threads=int(threads) if threads else 1)

    def log(line: str) -> None:
        print(line, file=sys.stderr if as_json else sys.stdout, flush=True)

    result = train_digits(cfg, log=log)
    summary = result.to_dict()
    if out is not None:
        import torch

        with replacing(out, "wb") as fh:
            torch.save(result.model.state_dict(), fh)
        summary["weights"] = str(out)
    if as_json:
        print(json.dumps(summary, indent=2, default=str))
        return
    from rich.table import Table

    t = Table(title="LeNet-5 on the digits", show_header=False)
    t.add_row("test accuracy", f"{result.test_accuracy:.4f} ({result.test_errors} of "
                               f"{result.n_test} wrong)")
    t.add_row("train accuracy", f"{result.train_accuracy:.4f} ({result.n_train} images)")
    t.add_row("training time", f"{result.seconds:.1f} s, {cfg.epochs} epochs, "
                               f"{cfg.threads} thread(s)")
    t.add_row("parameters", f"{result.parameters:,}")
    if out is not None:
        t.add_row("weights", str(out))
    SafeConsole().print(t)


def main() -> None:
    """Stand-alone entry: ``python -m training.cli train ...``."""
    from faceid.commandline import App

    app = App(help="faceid training", no_args_is_help=True, pretty_exceptions_enable=False,
              add_completion=False)
    register(app)

    @app.callback()
    def _root() -> None:
        """faceid training commands."""

    app()


if __name__ == "__main__":
    main()
