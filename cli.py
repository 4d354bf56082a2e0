"""faceid command line: thin Typer commands that parse, call one library function, format.

Every failure is one line on stderr and a distinct exit code (see faceid/errors.py); set
FACEID_DEBUG=1 to see a traceback instead.
"""

from __future__ import annotations

import json
import os
import random
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from faceid.detect import Pick
from faceid.errors import FaceIDError

INTERNAL_ERROR = 70
out = Console()
err = Console(stderr=True)


class App(typer.Typer):
    """Typer app that turns library errors into one-line messages and exit codes."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except FaceIDError as exc:
            if os.environ.get("FACEID_DEBUG"):
                raise
            err.print(f"[red]error:[/red] {exc.message}", highlight=False, soft_wrap=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            err.print("interrupted")
            sys.exit(130)
        except Exception as exc:  # noqa: BLE001 - the user gets one line, not a traceback
            if os.environ.get("FACEID_DEBUG"):
                raise
            err.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc} "
                      "(rerun with FACEID_DEBUG=1 for a traceback)", highlight=False,
                      soft_wrap=True)
            sys.exit(INTERNAL_ERROR)


app = App(help="Face recognition for access control: verify, identify, evaluate.",
          no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False)
eval_app = typer.Typer(help="Evaluate a model on a standard benchmark.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")

ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="Model file (JSON); default: the bundled dlib ResNet v1.", envvar="FACEID_MODEL")]
ViewsOpt = Annotated[Optional[str], typer.Option("--views", help="View preset: 'standard' (default: chip + mirror image), 'fast' (one pass) or 'accurate' (2 scales x mirror).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
MinFaceOpt = Annotated[float, typer.Option(help="Smallest usable face (shorter box side, px).")]


def _fid(model: Optional[str], views: Optional[str] = None, min_face: float = 40.0):  # noqa: ANN202
    from faceid.pipeline import FaceID

    return FaceID(model, views=views, min_face=min_face)


def _progress(total: int, desc: str):  # noqa: ANN202
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=None)


def _emit(data: dict, as_json: bool, table: Optional[Table] = None) -> None:
    if as_json:
        print(json.dumps(data, indent=2, default=str))
    elif table is not None:
        out.print(table)


def _kv_table(title: str, data: dict) -> Table:
    t = Table(title=title, show_header=False)
    for k, v in data.items():
        if isinstance(v, float):
            v = f"{v:.4f}"
        elif isinstance(v, list):
            v = ", ".join(f"{x:.4f}" if isinstance(x, float) else str(x) for x in v)
        t.add_row(k, str(v))
    return t


@app.command()
def detect(
    image: Annotated[Path, typer.Argument(help="Image file.")],
    as_json: JsonOpt = False,
) -> None:
    """List the faces in IMAGE (box, 5 landmarks, score).

    Example: faceid detect photo.jpg --json
    """
    from faceid.detect import FaceDetector
    from faceid.imageio import load_image

    faces = FaceDetector().detect(load_image(image))
    data = {"image": str(image), "faces": [f.to_dict() for f in faces]}
    t = Table("#", "box (x1, y1, x2, y2)", "size px", "score", title=f"{len(faces)} face(s) in {image}")
    for i, f in enumerate(faces):
        t.add_row(str(i), ", ".join(f"{v:.0f}" for v in f.box), f"{f.size:.0f}", f"{f.score:.3f}")
    _emit(data, as_json, t)


@app.command()
def compare(
    image1: Annotated[Path, typer.Argument(help="First photo.")],
    image2: Annotated[Path, typer.Argument(help="Second photo.")],
    model: ModelOpt = None,
    views: ViewsOpt = None,
    pick: Annotated[Pick, typer.Option(help="Which face when a photo has several: 'one' refuses them.")] = Pick.one,
    min_face: MinFaceOpt = 40.0,
    as_json: JsonOpt = False,
) -> None:
    """Decide whether two photos show the same person (1:1).

    Prints the distance, tau, the decision and the probability of "same person".
    Exit code 0 = same person, 1 = different, other codes = an error (see README).

    Example: faceid compare alice_1.jpg alice_2.jpg --json
    """
    fid = _fid(model, views, min_face)
    c = fid.compare(image1, image2, pick)
    data = {"image1": str(image1), "image2": str(image2), "model": fid.info.name, **c.to_dict()}
    verdict = "[green]same person[/green]" if c.same else "[yellow]different people[/yellow]"
    if not as_json:
        out.print(f"{verdict}  distance {c.distance:.4f} (tau {c.tau:.4f}), "
                  f"P(same) {c.probability:.3f}")
    _emit(data, as_json)
    raise typer.Exit(0 if c.same else 1)


@app.command("verify-pairs")
def verify_pairs_cmd(
    pairs: Annotated[Path, typer.Argument(help="CSV (img1,img2[,label]) or LFW pairs.txt.")],
    root: Annotated[Optional[Path], typer.Option(help="Folder image paths are relative to (LFW: the dataset folder).")] = None,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Per-pair results: .csv or .json.")] = Path("faceid-pairs.csv"),
    plots: Annotated[Optional[Path], typer.Option(help="Prefix for ROC/DET plots (default: beside --out).")] = None,
    sample: Annotated[Optional[int], typer.Option(help="Verify a random sample of this many pairs (seeded).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for --sample.")] = 0,
    far: Annotated[float, typer.Option(help="FAR at which TAR is reported.")] = 1e-3,
    model: ModelOpt = None,
    views: ViewsOpt = None,
    pick: Annotated[Pick, typer.Option(help="Which face when a photo has several.")] = Pick.center,
    min_face: MinFaceOpt = 40.0,
    as_json: JsonOpt = False,
) -> None:
    """Verify many photo pairs; one result row per pair, metrics and plots when labelled.

    Each distinct image is embedded once. A bad row (missing file, no face, corrupt image)
    gets its error in its result row and never stops the run.

    Example: faceid verify-pairs ../shared/datasets/lfw/pairsDevTest.txt --root ../shared/datasets/lfw --out results.csv
    """
    from faceid.pairs import read_pairs
    from faceid.verify_pairs import (distinct_images, labelled_distances, summarize,
                                     verify_pairs, write_results)

    items = read_pairs(pairs, root)
    if sample is not None and sample < len(items):
        items = sorted(random.Random(seed).sample(items, sample), key=lambda p: p.line)
    fid = _fid(model, views, min_face)
    with _progress(distinct_images(items), "embedding") as bar:
        results = verify_pairs(fid, items, pick, progress=bar.update)
    write_results(results, out_file)
    summary = {"results": str(out_file), "model": fid.info.name, "views": fid.views_name,
               **summarize(results, fid.tau, far)}
    d, y = labelled_distances(results)
    if "auc" in summary:
        from faceid.metrics import save_plots

        prefix = plots or out_file.with_suffix("")
        summary["plots"] = [str(p) for p in save_plots(d, y, prefix, pairs.name)]
    if not as_json:
        failed = [r for r in results if r.error]
        for r in failed[:10]:
            err.print(f"[yellow]row {r.pair.line}:[/yellow] {r.error}", highlight=False, soft_wrap=True)
        if len(failed) > 10:
            err.print(f"... and {len(failed) - 10} more failed rows (see {out_file})")
    _emit(summary, as_json, _kv_table(f"verify-pairs: {pairs.name}", summary))


@eval_app.command("lfw")
def eval_lfw(
    root: Annotated[Path, typer.Option(help="LFW folder with pairs.txt and lfw-deepfunneled/.", envvar="FACEID_LFW")] = Path("../shared/datasets/lfw"),
    out_dir: Annotated[Path, typer.Option("--out-dir", help="Where report.json and the plots go.")] = Path("reports/lfw-view2"),
    far: Annotated[float, typer.Option(help="FAR at which TAR is reported.")] = 1e-3,
    model: ModelOpt = None,
    views: ViewsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """LFW View 2: 10-fold accuracy (threshold from the other 9 folds), TAR@FAR, EER, plots.

    Example: faceid eval lfw --root ../shared/datasets/lfw --out-dir reports/lfw
    """
    from faceid.verify_pairs import distinct_images
    from faceid.pairs import read_pairs
    from training.lfw import evaluate_view2, view2_pairs_file, write_report

    fid = _fid(model, views)
    n = distinct_images(read_pairs(view2_pairs_file(root), root))
    with _progress(n, "LFW View 2") as bar:
        report, results = evaluate_view2(fid, root, far=far, progress=bar.update)
    report["files"] = [str(p) for p in write_report(report, results, out_dir)]
    if not as_json:
        out.print(f"LFW View 2 accuracy {100 * report['mean_accuracy']:.2f}% "
                  f"+- {100 * report['std_accuracy']:.2f}  TAR@FAR={far:g}: "
                  f"{100 * report['tar_at_far']:.2f}%  EER {100 * report['eer']:.2f}%  "
                  f"failed pairs {report['failed_pairs']}")
    _emit(report, as_json, _kv_table("LFW View 2", {k: v for k, v in report.items()
                                                     if k not in ("failures",)}))


@app.command()
def calibrate(
    pairs: Annotated[Path, typer.Argument(help="Labelled pairs: CSV or LFW pairs file.")],
    root: Annotated[Optional[Path], typer.Option(help="Folder image paths are relative to.")] = None,
    far: Annotated[Optional[float], typer.Option(help="Choose tau for this false-accept rate (default: best accuracy).")] = None,
    write: Annotated[Optional[Path], typer.Option(help="Write a copy of the model file with the view preset's new tau and probability fit.")] = None,
    model: ModelOpt = None,
    views: ViewsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Calibrate tau and P(same | distance) for a model on labelled pairs.

    Example: faceid calibrate ../shared/datasets/lfw/pairsDevTrain.txt --root ../shared/datasets/lfw --write my-model.json
    """
    from faceid.errors import PairsFileError
    from faceid.modelfile import save_model_info
    from faceid.pairs import read_pairs
    from faceid.verify_pairs import distinct_images, labelled_distances, verify_pairs
    from training.calibrate import calibrate as fit

    items = read_pairs(pairs, root)
    fid = _fid(model, views)
    with _progress(distinct_images(items), "embedding") as bar:
        results = verify_pairs(fid, items, progress=bar.update)
    d, y = labelled_distances(results)
    try:
        cal = fit(d, y, far)
    except ValueError as exc:
        raise PairsFileError(f"{pairs}: {exc}") from None
    cal["data"] = str(pairs)
    cal["views"] = fid.views_name
    if write:
        fid.views.tau = cal["tau"]
        fid.views.probability = {"slope": cal["slope"], "intercept": cal["intercept"]}
        fid.views.calibration = dict(cal)
        save_model_info(fid.info, write)
        cal["written"] = str(write)
    _emit(cal, as_json, _kv_table(f"calibration on {pairs.name}", cal))


@app.command("model-info")
def model_info(model: ModelOpt = None, as_json: JsonOpt = False) -> None:
    """Show a model file's metadata (architecture, weights, chip, tau, metrics).

    Example: faceid model-info --json
    """
    from faceid.modelfile import load_model_info, weights_path

    info = load_model_info(model)
    data = {"file": str(info.path), "weights_file": str(weights_path(info)), **info.to_json()}
    _emit(data, as_json, _kv_table(info.name, {k: (json.dumps(v) if isinstance(v, dict) else v)
                                               for k, v in data.items()}))


if __name__ == "__main__":
    app()
