"""faceid command line: thin Typer commands that parse, call one library function, format.

Every failure is one line on stderr and a distinct exit code (see faceid/errors.py); set
FACEID_DEBUG=1 to see a traceback instead.
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from faceid.pick import DetectorName, Pick
from faceid.commandline import App
from faceid.errors import Cancelled, InputError, UsageError
from faceid.terminal import SafeConsole, progress, styled

out = SafeConsole()
err = SafeConsole(stderr=True)


app = App(help="Face recognition for access control: verify, identify, evaluate.",
          no_args_is_help=True, pretty_exceptions_enable=False, add_completion=False,
          context_settings={"help_option_names": ["-h", "--help"]})
eval_app = typer.Typer(help="Evaluate a model on a standard benchmark.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            out.print(f"faceid {version('faceid')}")
        except PackageNotFoundError:  # run from a checkout that was never installed
            out.print("faceid (not installed)")
        raise typer.Exit()


@app.callback()
def _settings(ctx: typer.Context,
              config: Annotated[Optional[Path], typer.Option("--config", envvar="FACEID_CONFIG", help="Settings file (default: $FACEID_HOME/faceid.toml, else /etc/faceid/faceid.toml). Flags and environment variables override it.")] = None,
              threads: Annotated[Optional[int], typer.Option("--threads", min=1, max=1024, envvar="FACEID_THREADS", help="CPU threads for the networks (default: all cores; 1 on a busy machine, where more threads only fight each other).")] = None,
              _show_version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version, help="Print faceid's version and exit.")] = False,
              detector: Annotated[Optional[DetectorName], typer.Option("--detector", envvar="FACEID_DETECTOR", case_sensitive=False, help="Face detector: mtcnn or yunet (default: mtcnn for photos, yunet for `watch`, several times faster on video).")] = None) -> None:
    if threads is not None:
        os.environ["FACEID_THREADS"] = str(threads)
    from faceid.config import pin_blas_threads

    pin_blas_threads()
    if detector is not None:
        os.environ["FACEID_DETECTOR"] = detector.value
    from faceid import sitefile

    path = sitefile.find(config)
    if path is not None:
        ctx.default_map = sitefile.apply(path, ctx.command)


def _check_tau(value: Optional[float]) -> Optional[float]:
    from faceid.operating_point import validate_tau

    try:
        return None if value is None else validate_tau(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _check_rate(value: Optional[float], param: typer.CallbackParam) -> Optional[float]:
    from faceid.operating_point import validate_rate

    try:
        return None if value is None else validate_rate(param.name.upper(), value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _check_margin(value: Optional[float]) -> Optional[float]:
    if value is not None and not (0.0 <= value < 2.0):  # also refuses NaN
        raise typer.BadParameter(f"margin must be a distance in [0, 2), got {value:g}")
    return value


ModelOpt = Annotated[Optional[str], typer.Option("--model", "-m", help="Model file (JSON); default: the bundled dlib ResNet v1.", envvar="FACEID_MODEL")]
ViewsOpt = Annotated[Optional[str], typer.Option("--views", help="View preset: 'standard' (default: chip + mirror image), 'fast' (one pass) or 'accurate' (2 scales x mirror).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout.")]
def _check_min_face(value: float) -> float:
    if not 1.0 <= value <= 10_000.0:  # also refuses NaN
        raise typer.BadParameter(f"min-face must be a face size in pixels (1 to 10000), got {value:g}")
    return value


MinFaceOpt = Annotated[float, typer.Option(callback=_check_min_face, help="Smallest usable face (shorter box side, px).")]


def _fid(model: Optional[str], views: Optional[str] = None, min_face: float = 40.0,
         video: bool = False, detector=None):  # noqa: ANN001, ANN202
    from faceid.pipeline import FaceID

    return FaceID(model, views=views, min_face=min_face, video=video, detector=detector)


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
    from faceid.detectors import make_detector
    from faceid.imageio import load_image

    faces = make_detector().detect(load_image(image))
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
    verdict = ("same person", "green") if c.same else ("different people", "yellow")
    if not as_json:
        out.print(styled(verdict, f"  distance {c.distance:.4f} (tau {c.tau:.4f}), "
                                  f"P(same) {c.probability:.3f}"))
    _emit(data, as_json)
    raise typer.Exit(0 if c.same else 1)


@app.command("verify-pairs")
def verify_pairs_cmd(
    pairs: Annotated[Path, typer.Argument(help="CSV (img1,img2[,label]) or LFW pairs.txt.")],
    root: Annotated[Optional[Path], typer.Option(help="Folder image paths are relative to (LFW: the dataset folder).")] = None,
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Per-pair results: .csv or .json.")] = Path("faceid-pairs.csv"),
    plots: Annotated[Optional[Path], typer.Option(help="Prefix for ROC/DET plots (default: beside --out).")] = None,
    sample: Annotated[Optional[int], typer.Option(min=1, help="Verify a random sample of this many pairs (seeded).")] = None,
    seed: Annotated[int, typer.Option(help="Seed for --sample.")] = 0,
    far: Annotated[float, typer.Option(callback=_check_rate, help="FAR at which TAR is reported.")] = 1e-3,
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
    from faceid.files import writable_target
    from faceid.pairs import read_pairs
    from faceid.verify_pairs import (distinct_images, labelled_distances, summarize,
                                     verify_pairs, write_results)

    writable_target(out_file, "--out")
    items = read_pairs(pairs, root)
    if sample is not None and sample < len(items):
        items = sorted(random.Random(seed).sample(items, sample), key=lambda p: p.line)
    fid = _fid(model, views, min_face)
    with progress(distinct_images(items), "embedding") as bar:
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
            err.print(styled((f"row {r.pair.line}:", "yellow"), f" {r.error}"), soft_wrap=True)
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
    from faceid.evaluate import evaluate_view2, view2_pairs_file, write_report

    fid = _fid(model, views)
    n = distinct_images(read_pairs(view2_pairs_file(root), root))
    with progress(n, "LFW View 2") as bar:
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
    from faceid.calibrate import calibrate_model
    from faceid.pairs import read_pairs
    from faceid.verify_pairs import distinct_images

    items = read_pairs(pairs, root)
    fid = _fid(model, views)
    with progress(distinct_images(items), "embedding") as bar:
        cal = calibrate_model(fid, items, pairs, far=far, write=write, progress=bar.update)
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


# -- the gallery: enrolment, people, 1:1 and 1:K -------------------------------------------
people_app = typer.Typer(help="List, show, rename, disable or remove enrolled people.",
                         no_args_is_help=True)
index_app = typer.Typer(help="The FAISS gallery index kept beside the database.",
                        no_args_is_help=True)
gallery_app = typer.Typer(help="The gallery's operating point: the thresholds it decides with.",
                          no_args_is_help=True)
app.add_typer(people_app, name="people")
app.add_typer(index_app, name="index")
app.add_typer(gallery_app, name="gallery")
audit_app = typer.Typer(help="The audit trail's integrity.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
keys_app = typer.Typer(help="API keys for `faceid serve` (read-only or admin).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

HomeOpt = Annotated[Optional[Path], typer.Option("--home", help="Data directory (database, index); default $FACEID_HOME or ~/.local/share/faceid.", envvar="FACEID_HOME")]


TauOpt = Annotated[Optional[float], typer.Option(callback=_check_tau, help="A fixed distance threshold instead of the gallery's operating point (see `faceid gallery status`).")]
FpirOpt = Annotated[Optional[float], typer.Option(callback=_check_rate, help="Target false-positive identification rate for 1:K (default: the gallery's stored target, 1e-3); the threshold is estimated for it from the gallery.")]
FarOpt = Annotated[Optional[float], typer.Option(callback=_check_rate, help="Target false-accept rate for 1:1 claims (default: the gallery's stored target, 1e-3).")]
LivenessOpt = Annotated[bool, typer.Option("--liveness", help="Refuse faces the passive liveness check (MiniFASNet, the site's calibration when <home>/liveness.json exists) does not find live in the still photo.")]
MarginOpt = Annotated[Optional[float], typer.Option(callback=_check_margin, help="Required lead of the best person over the runner-up (default 0.02).")]
AllowDuplicateOpt = Annotated[bool, typer.Option("--allow-duplicate", help="Enrol a photo even when it already matches another enrolled person (the default refuses it: the same person twice, or a mislabelled photo).")]
PERSON_HELP = "Who: #ID (internal id), badge:ID (external id) or the name; a bare value that names two people is refused."
DbOpt = Annotated[Optional[str], typer.Option("--db", help="SQLAlchemy URL or SQLite file; default <home>/faceid.db.", envvar="FACEID_DB")]


def _store(home: Optional[Path], db: Optional[str], create: bool = False):  # noqa: ANN202
    """The store at ``--home`` / ``--db``; only enrolment creates one (``create``): a
    mistyped home must fail, not answer "unknown" from an empty gallery."""
    from db import default_home, timeout_from_env
    from db.engine import resolve_url
    from db.store import Store

    home = home or default_home()
    return home, Store(resolve_url(home, db), timeout=timeout_from_env(), create=create)


def _quick_read(home: Optional[Path], db: Optional[str]):  # noqa: ANN202
    """An sqlite3 connection for a listing when the gallery is an up-to-date SQLite file
    (no SQLAlchemy import: db/listing.py says why), else None: then the store reads."""
    from db import default_home, timeout_from_env
    from db.listing import open_current, sqlite_file

    path = sqlite_file(home or default_home(), db)
    return open_current(path, timeout_from_env()) if path is not None else None


def _gallery(home: Optional[Path], db: Optional[str], model: Optional[str],
             views: Optional[str] = None, min_face: float = 40.0,
             tau: Optional[float] = None, fpir: Optional[float] = None,
             far: Optional[float] = None, create: bool = False,
             video: bool = False, detector=None):  # noqa: ANN001, ANN202
    """Open store + index for the model; say on stderr what was repaired."""
    from faceid.gallery import Gallery

    home, store = _store(home, db, create)
    gallery = Gallery(store, _fid(model, views, min_face, video, detector), home / "index",
                      tau=tau,
                      fpir=fpir, far=far)
    for message in gallery.messages:
        err.print(styled(("note:", "yellow"), f" {message}"), soft_wrap=True)
    return gallery


def _say_operating_point(gallery) -> None:  # noqa: ANN001
    """One line on stderr when the thresholds are the strict fallback of a thin gallery."""
    if gallery.tau_override is None:
        for note in gallery.operating_point().notes:
            if "strict" in note:
                err.print(styled(("note:", "yellow"), f" {note}"), soft_wrap=True)


def _warn_all(lines: list[str], limit: int = 10) -> None:
    for line in lines[:limit]:
        err.print(styled(("warning:", "yellow"), f" {line}"), soft_wrap=True)
    if len(lines) > limit:
        err.print(f"... and {len(lines) - limit} more (see --json)")


@app.command()
def enroll(
    name: Annotated[str, typer.Argument(help="The person's display name.")],
    images: Annotated[Optional[list[Path]], typer.Argument(help="Photos, each with exactly one usable face.")] = None,
    source: Annotated[Optional[str], typer.Option(help="Enrol from a camera index, video file or stream instead of photos.")] = None,
    frames: Annotated[int, typer.Option(help="With --source: how many of the best frames to keep.")] = 3,
    max_frames: Annotated[int, typer.Option(help="With --source: frames to examine at most.")] = 150,
    external_id: Annotated[Optional[str], typer.Option("--external-id", help="Badge number or other id; required to enrol a second person with an existing name.")] = None,
    new: Annotated[bool, typer.Option("--new", help="Refuse to add to an existing person of this name.")] = False,
    allow_duplicate: AllowDuplicateOpt = False,
    pick: Annotated[Pick, typer.Option(help="Which face when a photo has several: 'one' (default) refuses such photos.")] = Pick.one,
    home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None, views: ViewsOpt = None,
    min_face: MinFaceOpt = 40.0, as_json: JsonOpt = False,
) -> None:
    """Enrol a person from photos (all must be usable, or nothing is stored) or from the
    best frames of a camera or clip. Adds to an existing person of the same name.

    Example: faceid enroll "Ada Lovelace" ada1.jpg ada2.jpg --external-id B-1042
    """
    from faceid.enrolment import enroll_images, enroll_video
    from faceid.door.sources import read_frames, redact

    if bool(images) == bool(source):
        raise UsageError("give either photos or --source (a camera, video or stream)")
    gallery = _gallery(home, db, model, views, min_face, create=True)
    gallery.require_same_model()
    kw = {"external_id": external_id, "new": new, "allow_duplicate": allow_duplicate}
    if source:
        every = 2 if not source.isdigit() else 1
        rep = enroll_video(gallery, name, read_frames(source, every=every,
                                                      max_frames=max_frames),
                           redact(source), keep=frames, **kw)
    else:
        rep = enroll_images(gallery, name, images, pick, **kw)
    _warn_all(rep.warnings)
    if not as_json:
        verb = "enrolled" if rep.created else "updated"
        out.print(f"{verb} {rep.label}: {rep.added} template(s) added"
                  + (f", {rep.already} already enrolled" if rep.already else ""))
    _emit(rep.to_dict(), as_json)


@app.command()
def init(home: HomeOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Create an empty gallery (database, schema) at --home / --db, or bring an existing one
    to this version's schema. Commands that only read a gallery refuse a missing one.

    Example: faceid init --home /var/lib/faceid
    """
    from db.engine import safe_url

    _, store = _store(home, db, create=True)
    people = len(store.people())
    if not as_json:
        out.print(f"gallery ready at {safe_url(store.url)} (schema {store.schema_revision}, "
                  f"{people} people)")
    _emit({"db": safe_url(store.url), "schema": store.schema_revision, "people": people},
          as_json)


@app.command("enroll-dir")
def enroll_dir_cmd(
    folder: Annotated[Path, typer.Argument(help="One sub-folder of photos per person (LFW layout); folder names become names, _ as spaces.")],
    max_per_person: Annotated[Optional[int], typer.Option(help="Enrol at most this many photos per person (first in name order).")] = None,
    min_images: Annotated[int, typer.Option(help="Skip folders with fewer photos.")] = 1,
    pick: Annotated[Pick, typer.Option(help="Which face when a photo has several: 'one' (default) skips such photos; 'center' suits LFW.")] = Pick.one,
    allow_duplicate: AllowDuplicateOpt = False,
    home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None, views: ViewsOpt = None,
    min_face: MinFaceOpt = 40.0, as_json: JsonOpt = False,
) -> None:
    """Enrol everyone in a folder tree. Bad photos are reported and skipped; each person
    is committed whole; rerunning after an interruption finishes the job without
    duplicates.

    Example: faceid enroll-dir ../shared/datasets/lfw/lfw-deepfunneled --max-per-person 5
    """
    from faceid.enrolment import enroll_dir, person_folders

    gallery = _gallery(home, db, model, views, min_face, create=True)
    gallery.require_same_model()
    total = sum(len(f) for _, f in person_folders(folder, max_per_person, min_images))
    with progress(total, "enrolling") as bar:
        rep = enroll_dir(gallery, folder, max_per_person=max_per_person,
                         min_images=min_images, pick=pick, progress=bar.update,
                         allow_duplicate=allow_duplicate)
    if not as_json:
        _warn_all([f"skipped {m}" for m in rep.failures])
        _warn_all(rep.warnings)
    summary = {k: v for k, v in rep.to_dict().items() if k not in ("failures", "warnings")}
    summary["duplicate_warnings"] = len(rep.warnings)
    _emit(rep.to_dict(), as_json, _kv_table(f"enroll-dir {folder.name}", summary))


@people_app.command("list")
def people_list(home: HomeOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Everyone enrolled, with their template counts.

    Example: faceid people list --json
    """
    from db.listing import people

    quick = _quick_read(home, db)
    rows = people(quick) if quick is not None else _store(home, db)[1].people()
    t = Table("id", "name", "external id", "active", "templates", title=f"{len(rows)} people")
    for r in rows:
        t.add_row(str(r.id), r.name, r.external_id or "", "yes" if r.active else "no",
                  str(r.templates))
    _emit({"people": [r.to_dict() for r in rows]}, as_json, t)


@people_app.command("show")
def people_show(person: Annotated[str, typer.Argument(help=PERSON_HELP)],
                home: HomeOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """One person and their templates (source, quality, model).

    Example: faceid people show "Ada Lovelace"
    """
    _, store = _store(home, db)
    data = store.person_details(person)
    t = Table("template", "model", "quality", "size px", "sharpness", "source",
              title=f"{data['name']} (#{data['id']}) {data['external_id'] or ''}")
    for x in data["templates"]:
        t.add_row(str(x["id"]), x["model"], f"{x['quality']:.2f}", f"{x['face_size']:.0f}",
                  f"{x['sharpness']:.0f}", x["source"])
    _emit(data, as_json, t)


@people_app.command("rename")
def people_rename(
    person: Annotated[str, typer.Argument(help=PERSON_HELP)],
    new_name: Annotated[Optional[str], typer.Argument(help="The new display name.")] = None,
    external_id: Annotated[Optional[str], typer.Option("--external-id", help="Set the external id ('' clears it).")] = None,
    home: HomeOpt = None, db: DbOpt = None, as_json: JsonOpt = False,
) -> None:
    """Change a person's display name and/or external id.

    Example: faceid people rename "#12" "Ada King" --external-id B-1042
    """
    _, store = _store(home, db)
    label = store.update_person(person, name=new_name, external_id=external_id)
    if not as_json:
        out.print(f"now {label}")
    _emit({"person": label}, as_json)


def _set_active(person: str, active: bool, home: Optional[Path], db: Optional[str],
                as_json: bool) -> None:
    _, store = _store(home, db)
    label = store.update_person(person, active=active)
    if not as_json:
        out.print(f"{label} {'enabled' if active else 'disabled'}")
    _emit({"person": label, "active": active}, as_json)


@people_app.command("disable")
def people_disable(person: Annotated[str, typer.Argument(help=PERSON_HELP)],
                   home: HomeOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Stop matching a person without deleting them (identify and verify deny them).

    Example: faceid people disable B-1042
    """
    _set_active(person, False, home, db, as_json)


@people_app.command("enable")
def people_enable(person: Annotated[str, typer.Argument(help=PERSON_HELP)],
                  home: HomeOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Match a disabled person again.

    Example: faceid people enable B-1042
    """
    _set_active(person, True, home, db, as_json)


@people_app.command("remove")
def people_remove(person: Annotated[str, typer.Argument(help=PERSON_HELP)],
                  yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a terminal).")] = False,
                  home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None,
                  views: ViewsOpt = None, as_json: JsonOpt = False) -> None:
    """Delete a person and all their templates (database and index), after confirmation.
    Their past access events are kept, with the name.

    Example: faceid people remove "#12" --yes
    """
    _remove(person, yes, home, db, model, views, as_json, erase=False)


@people_app.command("erase")
def people_erase(person: Annotated[str, typer.Argument(help=PERSON_HELP)],
                 yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed without a terminal).")] = False,
                 home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None,
                 views: ViewsOpt = None, as_json: JsonOpt = False) -> None:
    """Erase every trace of a person's face: templates, face crops, the snapshots of their
    access events, and their index entries (SQLite overwrites the deleted pages). The
    events stay, without snapshots, and the erasure itself is an audit event.

    Example: faceid people erase "badge:1042" --yes --json
    """
    _remove(person, yes, home, db, model, views, as_json, erase=True)


def _remove(person: str, yes: bool, home: Optional[Path], db: Optional[str],
            model: Optional[str], views: Optional[str], as_json: bool, erase: bool) -> None:
    verb = "erase" if erase else "remove"
    gallery = _gallery(home, db, model, views)
    target = gallery.store.resolve(person)
    label = target.label
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(f"{verb[:-1]}ing {label} needs --yes when there is no terminal "
                             "to ask")
        if not typer.confirm(f"{verb.capitalize()} {label} and all their templates?",
                             default=False):
            raise Cancelled(f"kept {label}")
    label = gallery.remove(f"#{target.id}", erase=erase)
    if not as_json:
        out.print(f"{verb}d {label}")
    _emit({f"{verb}d": label}, as_json)


@app.command()
def verify(
    image: Annotated[Path, typer.Argument(help="Photo of the person at the door.")],
    claim: Annotated[str, typer.Option("--as", help="Who they claim to be: " + PERSON_HELP)],
    home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None, views: ViewsOpt = None,
    pick: Annotated[Pick, typer.Option(help="Which face when the photo has several.")] = Pick.one,
    tau: TauOpt = None, far: FarOpt = None, liveness: LivenessOpt = False,
    min_face: MinFaceOpt = 40.0, as_json: JsonOpt = False,
) -> None:
    """1:1: is the face in IMAGE the claimed person? Distance to their fused template (all
    their photos, weighted by quality) at the gallery's 1:1 tau for the target FAR.

    Exit code 0 = match, 1 = no match, other codes = an error (see README).

    Example: faceid verify door.jpg --as "Ada Lovelace" --far 1e-4
    """
    if pick is Pick.all:
        raise typer.BadParameter("verify compares one face; use one, largest or center",
                                 param_hint="--pick")
    from faceid.decisions import verify_photo

    gallery = _gallery(home, db, model, views, min_face, tau, far=far)
    check = _still_check(home) if liveness else None
    v = verify_photo(gallery, image, claim, pick=pick, liveness=check, record="cli:")
    _say_operating_point(gallery)
    if not as_json:
        verdict = ("match", "green") if v.same else ("no match", "yellow")
        out.print(styled(verdict, "" if v.same else f" ({v.reason})",
                         f"  {v.label}  distance {v.distance:.4f} (tau {v.tau:.4f}), "
                         f"P(same) {v.probability:.3f}"))
    _emit({"image": str(image), **v.to_dict()}, as_json)
    raise typer.Exit(0 if v.same else 1)


@app.command()
def identify(
    images: Annotated[list[Path], typer.Argument(help="Photos, or folders of photos (searched recursively).")],
    top: Annotated[int, typer.Option(min=1, help="How many candidates to list (one photo).")] = 5,
    candidates: Annotated[bool, typer.Option("--candidates", help="List the nearest enrolled people even for an unknown face (an investigator's view; by default an unknown face is never shown beside enrolled names).")] = False,
    margin: MarginOpt = None,
    tau: TauOpt = None, fpir: FpirOpt = None, liveness: LivenessOpt = False,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write one row per face to this file: .csv or .json (batch mode).")] = None,
    home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None, views: ViewsOpt = None,
    min_face: MinFaceOpt = 40.0, as_json: JsonOpt = False,
) -> None:
    """1:K: who in the gallery is each face? "unknown" when the best person is above the
    gallery's tau (set for the target FPIR at its size, see `faceid gallery status`) or too
    close to the runner-up.

    One photo: every face in it, with candidates; exit 0 = someone identified, 1 = nobody.
    Several photos, a folder, or --out: batch mode, a progress bar and one row per face
    (path, face box, person or unknown, distance, margin, or the photo's error); exit 0 once
    every row is written, whatever the rows say.

    Example: faceid identify door.jpg --top 3 --json
    Example: faceid identify visitors/ --out faces.csv
    """
    from faceid.files import writable_target
    from faceid.decisions import FIELDS, expand, identify_photos
    from faceid.rows import write_rows

    if out_file is not None:
        writable_target(out_file, "--out")
    files = expand(images)
    batch = len(images) > 1 or files != list(images) or out_file is not None
    gallery = _gallery(home, db, model, views, min_face, tau, fpir=fpir)
    gallery.require_same_model()
    if margin is not None:
        gallery.margin = margin
    check = _still_check(home) if liveness else None
    if not batch:
        _identify_one(gallery, files[0], top, as_json, check, candidates)
    with progress(len(files), "identifying") as bar:
        rows = identify_photos(gallery, files, top=top, progress=bar.update, liveness=check,
                               record="cli:")
    _say_operating_point(gallery)
    if out_file is not None:
        write_rows([r.to_dict() if out_file.suffix.lower() == ".json" else r.csv_row()
                    for r in rows], FIELDS, out_file)
    summary = {"photos": len(files), "faces": sum(r.face is not None for r in rows),
               "identified": sum(r.decision == "match" for r in rows),
               "unknown": sum(r.decision == "unknown" for r in rows),
               "errors": sum(r.error is not None for r in rows),
               "tau": gallery.tau, "results": str(out_file) if out_file else None}
    if as_json:
        _emit({**summary, "rows": [r.to_dict() for r in rows] if out_file is None else None},
              True)
        return
    if out_file is None:
        t = Table("photo", "face", "person", "distance", "margin", "note")
        for r in rows:
            t.add_row(r.path, str(r.face or ""), r.name or ("unknown" if r.decision else ""),
                      "" if r.distance is None else f"{r.distance:.4f}",
                      "" if r.margin is None else f"{r.margin:.4f}", r.error or r.reason or "")
        out.print(t)
    out.print(f"{summary['photos']} photo(s), {summary['faces']} face(s): "
              f"{summary['identified']} identified, {summary['unknown']} unknown, "
              f"{summary['errors']} photo error(s)" + (f"; rows in {out_file}" if out_file
                                                      else ""))


def _still_check(home: Optional[Path]):  # noqa: ANN202
    """The passive liveness check for still photos (the site's calibration if present)."""
    from faceid.door.liveness import PassiveCheck

    return PassiveCheck.load(_home_file(home, "liveness.json"))


def _identify_one(gallery, image: Path, top: int, as_json: bool,  # noqa: ANN001
                  check=None, candidates: bool = False) -> None:  # noqa: ANN001
    """One photo: every face with its candidates (for an unknown face only when asked);
    exits 0 when someone was identified. With a liveness ``check``, a face not found live
    is refused and never matched."""
    from faceid.decisions import identify_photos

    rows = identify_photos(gallery, [image], top=top, liveness=check, record="cli:")
    if rows[0].failure is not None:
        raise rows[0].failure
    faces = []
    for r in rows:
        where = f"face {r.face}: " if len(rows) > 1 else ""
        if r.liveness is not None:
            faces.append({"face": r.face, "box": r.box, "decision": r.decision,
                          "reason": r.reason, "liveness": r.liveness})
            if not as_json:
                out.print(styled(where, ("refused", "yellow"), f" ({r.decision}:{r.reason}, "
                                 f"P(live) {r.liveness['details']['p_live']:.3f})"))
            continue
        ident = r.identification
        listed = ident.candidates[:top] if (ident.person or candidates) else []
        faces.append({"face": r.face, "box": r.box, **ident.to_dict(),
                      "candidates": [c.to_dict() for c in listed]})
        if as_json:
            continue
        if ident.person:
            out.print(styled(where, (ident.person.name, "green"), f" (#{ident.person.person_id})"
                             f"  distance {ident.person.distance:.4f} (tau {ident.tau:.4f})"))
        else:
            out.print(styled(where, ("unknown", "yellow"),
                             f" ({ident.reason.replace('_', ' ')}; tau {ident.tau:.4f})"))
        t = Table("rank", "id", "name", "distance")
        for i, c in enumerate(listed, 1):
            t.add_row(str(i), str(c.person_id), c.name, f"{c.distance:.4f}")
        if listed:
            out.print(t)
    _say_operating_point(gallery)
    if as_json:
        doc = {"image": str(image), **{k: v for k, v in faces[0].items() if k != "face"}}
        if len(faces) > 1:
            doc["faces"] = faces
        _emit(doc, True)
    raise typer.Exit(0 if any(f["decision"] == "match" for f in faces) else 1)


def _operating_point_table(status: dict) -> Table:
    p = status["operating_point"]
    t = Table(title="gallery operating point", show_header=False)
    t.add_row("model", status["model"])
    t.add_row("people / templates", f"{p['people']} / {p['templates']}")
    t.add_row("1:K tau (identify, watch)",
              f"{p['tau_identify']:.4f} for FPIR {p['fpir']:g} at {p['people']} people")
    t.add_row("1:1 tau (verify, watch --claim)", f"{p['tau_verify']:.4f} for FAR {p['far']:g}")
    fit = ("-" if p["mean"] is None else
           f"different-person distances mean {p['mean']:.4f}, sd {p['sd']:.4f}")
    t.add_row("estimated from", f"{p['pairs']} pairs ({p['cohort']} cohort photos); {fit}")
    t.add_row("method", f"{p['method']} at gallery revision {p['revision']}")
    t.add_row("trust", "THIN: strict fallback in force" if p["thin"] else "ok")
    for note in p["notes"]:
        t.add_row("note", note)
    if p["tau_override"] is not None:
        t.add_row("override", f"--tau {p['tau_override']:g} replaces both thresholds")
    return t


@gallery_app.command("status")
def gallery_status(home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None,
                   views: ViewsOpt = None, tau: TauOpt = None, fpir: FpirOpt = None,
                   far: FarOpt = None, as_json: JsonOpt = False) -> None:
    """The operating point in force: each threshold, its target error rate, what it was
    estimated from, and a warning when the gallery is too small to trust the estimate
    (the strict fallback is then in force). Estimates and stores it when stale.

    Example: faceid gallery status --json
    """
    gallery = _gallery(home, db, model, views, tau=tau, fpir=fpir, far=far)
    status = gallery.status()
    _emit(status, as_json, _operating_point_table(status))


@gallery_app.command("calibrate")
def gallery_calibrate(
    fpir: Annotated[float, typer.Option(callback=_check_rate, help="Target false-positive identification rate (1:K).")] = 1e-3,
    far: Annotated[float, typer.Option(callback=_check_rate, help="Target false-accept rate (1:1 claims).")] = 1e-3,
    cohort: Annotated[Optional[Path], typer.Option(help="Folder of face photos of people who are NOT enrolled, from the site's camera: added to the impostor cohort the estimate uses.")] = None,
    clear_cohort: Annotated[bool, typer.Option(help="Forget the stored impostor cohort first.")] = False,
    home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None, views: ViewsOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Set the site's target error rates and re-estimate the thresholds from the enrolled
    templates (and an optional impostor cohort); stored with the gallery and used by
    identify, verify and watch from then on. Re-estimated by itself when the number of
    people changes by 5%.

    Example: faceid gallery calibrate --fpir 1e-3 --far 1e-3 --cohort visitors/
    """
    from faceid.cohort import add_cohort

    gallery = _gallery(home, db, model, views)
    report: dict = {}
    if clear_cohort:
        report["cohort_cleared"] = gallery.store.clear_cohort(gallery.model.id)
    if cohort is not None:
        with progress(0, "cohort") as bar:
            rep = add_cohort(gallery, cohort, progress=bar.update)
        _warn_all(rep.pop("failures"))
        report["cohort"] = rep
    gallery.recalibrate(fpir, far)
    status = {**gallery.status(), **report}
    _emit(status, as_json, _operating_point_table(gallery.status()))


@index_app.command("status")
def index_status(home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None,
                 views: ViewsOpt = None, as_json: JsonOpt = False) -> None:
    """Show the index for the model: size, kind (flat or IVF), revision; repairs it if out
    of step with the database.

    Example: faceid index status
    """
    gallery = _gallery(home, db, model, views)
    data = {**gallery.status(), "models_in_use": {m.key: n for m, n in
                                                  gallery.store.models_in_use()}}
    _emit(data, as_json, _kv_table("gallery index", data))


@index_app.command("rebuild")
def index_rebuild(home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None,
                  views: ViewsOpt = None, as_json: JsonOpt = False) -> None:
    """Rebuild the index from the database (it is only a cache).

    Example: faceid index rebuild
    """
    gallery = _gallery(home, db, model, views)
    gallery.rebuild()
    _emit(gallery.status(), as_json, _kv_table("gallery index rebuilt", gallery.status()))


@app.command()
def reembed(home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None,
            views: ViewsOpt = None, as_json: JsonOpt = False) -> None:
    """Re-embed every person's stored face crops with the loaded model, so a gallery made
    by another model (or view preset) can be used with this one. Old templates stay.

    Example: faceid reembed --model trained/my-model.json
    """
    from faceid.reembed import reembed as run

    gallery = _gallery(home, db, model, views)
    with progress(gallery.store.template_count_other(gallery.model.id), "re-embedding") as bar:
        rep = run(gallery, progress=bar.update)
    _warn_all(rep["failures"])
    _emit(rep, as_json, _kv_table("reembed", {k: v for k, v in rep.items()
                                              if k != "failures"}))


class EventKind(str, Enum):
    decision = "decision"
    admin = "admin"


@app.command()
def events(
    since: Annotated[Optional[str], typer.Option(help="Only events at or after this time (ISO 8601, e.g. 2026-11-23T08:00).")] = None,
    person: Annotated[Optional[str], typer.Option(help="Only this person. " + PERSON_HELP)] = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
    kind: Annotated[Optional[EventKind], typer.Option(help="Only decisions or only admin actions (default: both).")] = None,
    home: HomeOpt = None, db: DbOpt = None, as_json: JsonOpt = False,
) -> None:
    """The audit trail: access decisions and admin actions (enrol, rename, remove, threshold
    changes...), newest first. `faceid audit verify` checks that nobody edited it.

    Example: faceid events --since 2026-11-23T08:00 --person "Ada Lovelace" --json
    """
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(since) if since else None
    except ValueError:
        raise UsageError(f"--since {since!r}: not an ISO 8601 time (e.g. 2026-11-23T08:00)") from None
    if when is not None and when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    from db.listing import events as listed

    quick = _quick_read(home, db) if person is None else None  # names resolve in the store
    kind_name = kind.value if kind else None
    data = (listed(quick, when, limit, kind_name) if quick is not None else
            [e.to_dict() for e in _store(home, db)[1].events(when, person, limit, kind_name)])
    t = Table("time", "kind", "decision", "reason", "person", "distance", "liveness", "door",
              "actuation", title=f"{len(data)} event(s)")
    for e in data:
        t.add_row(e["time"].strftime("%Y-%m-%d %H:%M:%S"), e["kind"], e["decision"],
                  e["reason"], e["person_name"] or "",
                  "" if e["distance"] is None else f"{e['distance']:.3f}",
                  "" if e["liveness"] is None else f"{e['liveness']:.2f}",
                  e["door"] or e["source"], e["actuation"] or "")
    _emit({"events": data}, as_json, t)


@audit_app.command("verify")
def audit_verify(
    expect_head: Annotated[Optional[str], typer.Option(help="The head hash you recorded earlier (from a previous verify): also detects rows cut off the end.")] = None,
    home: HomeOpt = None, db: DbOpt = None, as_json: JsonOpt = False,
) -> None:
    """Check the audit trail's hash chain: every event row, in order. Exit 0 when intact;
    58 with the first broken row when a row was edited, inserted or deleted.

    Example: faceid audit verify --json
    """
    from faceid.errors import AuditBroken

    _, store = _store(home, db)
    report = store.verify_chain()
    if report.ok and expect_head and not store.chain_holds(expect_head):
        report.broken_at, report.problem = report.head_id, (
            f"the recorded head {expect_head[:12]}... is no longer in the trail "
            "(rows were cut off the end or rewritten)")
    _emit(report.to_dict(), as_json, _kv_table("audit trail", report.to_dict()))
    if not report.ok:
        raise AuditBroken(f"audit trail broken at event {report.broken_at}: {report.problem}")


def _home_file(home: Optional[Path], name: str) -> Optional[Path]:
    """``<home>/name`` when that file exists (a site's own calibration), else None."""
    from db import default_home

    path = (home or default_home()) / name
    return path if path.is_file() else None


@app.command("calibrate-liveness")
def calibrate_liveness(
    live: Annotated[list[Path], typer.Argument(help="Recordings of the site's own people, live at the door: videos, photos or folders.")],
    spoof: Annotated[Optional[list[Path]], typer.Option(help="Recordings of attacks (prints, screens) at the same door: measured only, never used to set the threshold.")] = None,
    bpcer: Annotated[float, typer.Option(callback=_check_rate, help="Share of live frames the threshold may refuse.")] = 0.05,
    stride: Annotated[int, typer.Option(min=1, help="Score every n-th video frame.")] = 3,
    out_file: Annotated[Optional[Path], typer.Option("--out", "-o", help="Where to write the calibration (default: <home>/liveness.json, which `watch` then uses).")] = None,
    home: HomeOpt = None, as_json: JsonOpt = False,
) -> None:
    """Set the passive-liveness threshold for this door from its own live footage, for a
    target BPCER (live frames refused); attack recordings, if given, are measured at it.

    Example: faceid calibrate-liveness door-staff/*.mp4 --spoof door-attacks/ --bpcer 0.05
    """
    from db import default_home
    from faceid.files import writable_target
    from faceid.door.liveness_calibrate import calibrate_passive, write_calibration

    path = out_file or (home or default_home()) / "liveness.json"
    if out_file is not None:
        writable_target(out_file, "--out")
    with progress(0, "frames") as bar:
        doc = calibrate_passive(live, spoof or [], bpcer=bpcer, stride=stride,
                                progress=bar.update)
    write_calibration(doc, path)
    doc["written"] = str(path)
    summary = {"threshold": doc["threshold"], "live_frames": doc["live"]["frames"],
               "bpcer": doc["live"]["bpcer"], "live_skipped": doc["live"]["skipped"],
               **({"spoof_frames": doc["spoof"]["frames"], "apcer": doc["spoof"]["apcer"]}
                  if "spoof" in doc else {}), "written": str(path)}
    _emit(doc, as_json, _kv_table("passive liveness calibration", summary))


@app.command()
def watch(
    source: Annotated[str, typer.Option(help="Camera index (0), video file, RTSP/HTTP URL, or a folder of frames.")],
    claim: Annotated[Optional[str], typer.Option(help="1:1 mode: the person the badge or PIN names. " + PERSON_HELP)] = None,
    challenge: Annotated[bool, typer.Option(help="Active liveness as well: ask for a random sequence of head turns / nods (needs a display for the prompts).")] = False,
    passive: Annotated[bool, typer.Option(help="Passive liveness (MiniFASNet on every frame, averaged over the track); --no-passive falls back to the motion check alone.")] = True,
    liveness_calibration: Annotated[Optional[Path], typer.Option(help="The site's passive-liveness threshold from `faceid calibrate-liveness` (default: <home>/liveness.json when it exists, else the shipped one).")] = None,
    show: Annotated[bool, typer.Option(help="Open a window with boxes, names, distances and the liveness state.")] = False,
    record: Annotated[Optional[Path], typer.Option(help="Write the annotated video to this file (.mp4 or .avi); checked at start.")] = None,
    on_grant: Annotated[Optional[str], typer.Option(help="The relay: shell command run for a grant, after its event is written (decision in FACEID_* variables); the door counts as open only if it succeeds.")] = None,
    on_deny: Annotated[Optional[str], typer.Option(help="Shell command told about each deny (a notifier: run in the background, retried).")] = None,
    webhook: Annotated[Optional[str], typer.Option(help="POST each decision as signed JSON to this URL (a notifier: background, retried, delivery status on the event). Needs FACEID_WEBHOOK_SECRET or --webhook-secret-file.")] = None,
    webhook_secret_file: Annotated[Optional[Path], typer.Option(help="File holding the webhook's HMAC secret.")] = None,
    door: Annotated[Optional[str], typer.Option(help="This door's name in the audit trail (default $FACEID_DOOR, else the host name).", envvar="FACEID_DOOR")] = None,
    health_file: Annotated[Optional[Path], typer.Option(help="Rewrite this JSON file every second with the door's health (ok / degraded, faults per stage).")] = None,
    max_reconnects: Annotated[Optional[int], typer.Option(min=0, help="Give up after this many failed camera reconnects in a row (default: never).")] = None,
    snapshots: Annotated[bool, typer.Option(help="Keep a face crop with each event.")] = False,
    snapshot_days: Annotated[Optional[float], typer.Option(help="Delete snapshots older than this many days.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds from first sight to a forced decision (a running --challenge is bounded by its own per-prompt timeout instead).")] = 3.0,
    fps: Annotated[Optional[float], typer.Option(help="Frame rate of a folder of frames (default 15) or to override a file's.")] = None,
    max_frames: Annotated[Optional[int], typer.Option(help="Stop after this many frames.")] = None,
    tau: TauOpt = None, fpir: FpirOpt = None, far: FarOpt = None,
    home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None, views: ViewsOpt = None,
    min_face: MinFaceOpt = 40.0, as_json: JsonOpt = False,
) -> None:
    """The door: watch a camera, clip or stream; grant enrolled, live people; deny and
    record everyone else. Headless by default; every decision is one event row, written
    before the relay runs.

    Example: faceid watch --source 0 --door front --on-grant "relay-open 3" --webhook https://panel/api
    """
    import itertools
    import logging
    import socket

    from faceid.door.actuators import DenyCommand, Opener, Webhook
    from faceid.door.liveness import LivenessGate, PassiveCheck
    from faceid.door.overlay import Recorder, annotate
    from faceid.door.turnstile import Turnstile, WatchConfig
    from faceid.door.sources import FrameSource, redact

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    notifiers: list = [DenyCommand(on_deny)] if on_deny else []
    if webhook:
        notifiers.append(Webhook(webhook, _webhook_secret(webhook_secret_file)))
    recorder = Recorder(record, fps or 15.0) if record else None  # unwritable: fails now
    gallery = _gallery(home, db, model, views, min_face, tau, fpir=fpir, far=far, video=True)
    _say_operating_point(gallery)
    site_file = liveness_calibration or _home_file(home, "liveness.json")
    gate = LivenessGate(motion=True, challenge=challenge,
                        passive=PassiveCheck.load(site_file) if passive else None)
    cfg = WatchConfig(source=redact(source), claim=claim, min_face=min_face, timeout_s=timeout,
                      snapshots=snapshots, snapshot_days=snapshot_days,
                      door=door or socket.gethostname())
    turnstile = Turnstile(gallery, cfg, gate, Opener(on_grant) if on_grant else None,
                          notifiers)
    frames = FrameSource(source, fps=fps, retries=max_reconnects)
    if health_file:
        _write_health(health_file, turnstile, frames, strict=True)
    started = time.perf_counter()
    count = 0
    health_at = -1.0

    def on_frame(frame, report) -> None:  # noqa: ANN001
        nonlocal count, health_at
        count += 1
        if recorder:
            recorder.write(frame, report)
        if show:
            _show(annotate(frame, report))
        if health_file and time.perf_counter() - health_at >= 1.0:
            health_at = time.perf_counter()
            _write_health(health_file, turnstile, frames)
        for d in report.decisions:
            if not as_json:
                who = f" {d.person_name}" if d.person_name else ""
                shut = (f"  door did not open: {d.actuation}"
                        if d.decision == "grant" and not d.opened else "")
                out.print(f"{d.time}  {d.decision.upper()}{who}  ({d.reason}){shut}")

    try:
        turnstile.run(itertools.islice(frames, max_frames), on_frame)
    finally:
        if recorder:
            recorder.close()
        undelivered = turnstile.close()
        if health_file:
            _write_health(health_file, turnstile, frames, stopped=True)
    seconds = time.perf_counter() - started
    summary = {"source": cfg.source, "door": cfg.door, "frames": count,
               "seconds": round(seconds, 2),
               "fps": round(count / seconds, 2) if seconds else None,
               "corrupt_frames": frames.corrupt, "reconnects": frames.reconnects,
               "undelivered": undelivered, "health": turnstile.health.to_dict(),
               "decisions": [d.to_dict() for d in turnstile.decisions]}
    if as_json:
        _emit(summary, True)
    else:
        out.print(f"{count} frames in {seconds:.1f} s ({summary['fps']} fps), "
                  f"{len(turnstile.decisions)} decision(s), {frames.corrupt} corrupt frame(s)"
                  + (f", {undelivered} notification(s) undelivered" if undelivered else ""))


def _webhook_secret(path: Optional[Path]) -> bytes:
    """The webhook's signing secret: the file's content, else FACEID_WEBHOOK_SECRET; an
    unsigned webhook is refused (a panel could not tell a forged decision from a real one)."""
    if path is not None:
        from faceid.files import read_limited

        try:
            secret = read_limited(path, 1 << 16, "secret file").strip()
        except InputError as exc:
            raise UsageError(f"--webhook-secret-file {exc.message}") from None
    else:
        secret = os.environ.get("FACEID_WEBHOOK_SECRET", "").encode()
    if not secret:
        raise UsageError("--webhook needs a signing secret: set FACEID_WEBHOOK_SECRET or "
                         "give --webhook-secret-file")
    return secret


def _write_health(path: Path, turnstile, frames, stopped: bool = False,  # noqa: ANN001
                  strict: bool = False) -> None:
    """Rewrite the health file; at start (``strict``) a file that cannot be written is an
    error, later only a note (the door keeps running)."""
    from datetime import datetime, timezone

    from faceid.atomic import write_text
    from faceid.errors import WriteFailed

    doc = {**turnstile.health.to_dict(), "door": turnstile.config.door,
           "time": datetime.now(timezone.utc).isoformat(), "reconnects": frames.reconnects,
           "corrupt_frames": frames.corrupt, "running": not stopped}
    try:
        write_text(path, json.dumps(doc, indent=1) + "\n")
    except WriteFailed as exc:
        if strict:
            raise UsageError(f"--health-file {exc.message}") from None
        err.print(styled(("note:", "yellow"), f" health file {exc.message}"))


def _show(image) -> None:  # noqa: ANN001
    import cv2

    try:
        cv2.imshow("faceid", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
        cv2.waitKey(1)
    except cv2.error:
        raise InputError("--show needs OpenCV with a GUI (pip install opencv-python) and a "
                         "display; use --record FILE to save the annotated video") from None


class KeyScope(str, Enum):
    read = "read"
    admin = "admin"


@keys_app.command("add")
def keys_add(name: Annotated[str, typer.Argument(help="What the key is for (a kiosk, the panel).")],
             scope: Annotated[KeyScope, typer.Option(help="read: verify, identify, compare, lists; admin: also enrol, change, remove.")] = KeyScope.read,
             home: HomeOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Make an API key. It is printed once and only its hash is kept: store it now.

    Example: faceid keys add front-kiosk --scope read
    """
    from db.keys import add_key

    _, store = _store(home, db, create=True)
    info, token = add_key(store, name, scope.value)
    if not as_json:
        err.print(f"key #{info.id} {info.name!r} ({info.scope}); shown once, keep it safe:")
    _emit({**info.to_dict(), "key": token}, as_json, token)


@keys_app.command("list")
def keys_list(home: HomeOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """The keys (never the keys themselves: their first characters, scope, state).

    Example: faceid keys list --json
    """
    from db.keys import list_keys

    _, store = _store(home, db)
    keys = list_keys(store)
    t = Table("id", "name", "starts with", "scope", "created", "revoked", title=f"{len(keys)} key(s)")
    for k in keys:
        t.add_row(str(k.id), k.name, k.prefix, k.scope, k.created_at.strftime("%Y-%m-%d %H:%M"),
                  k.revoked_at.strftime("%Y-%m-%d %H:%M") if k.revoked_at else "")
    _emit({"keys": [k.to_dict() for k in keys]}, as_json, t)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="The key's id (#3) or name.")],
                home: HomeOpt = None, db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Revoke a key: requests with it are refused from now on.

    Example: faceid keys revoke "#3"
    """
    from db.keys import revoke_key

    _, store = _store(home, db)
    info = revoke_key(store, key)
    _emit(info.to_dict(), as_json, f"revoked key #{info.id} {info.name!r}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0: every interface).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    max_upload_mb: Annotated[float, typer.Option(min=0.01, max=1024, help="Largest photo accepted, in MB (refused before decoding).")] = 10.0,
    session_minutes: Annotated[float, typer.Option(min=0.05, max=24 * 60, help="The admin page signs a browser out after this long idle.")] = 30.0,
    tls_cert: Annotated[Optional[Path], typer.Option(help="PEM certificate: serve https (the admin page's camera snapshot needs https off localhost).")] = None,
    tls_key: Annotated[Optional[Path], typer.Option(help="PEM private key for --tls-cert.")] = None,
    home: HomeOpt = None, db: DbOpt = None, model: ModelOpt = None, views: ViewsOpt = None,
    min_face: MinFaceOpt = 40.0,
) -> None:
    """The HTTP API: verify, identify, compare, enrol, people, events, gallery status, with
    API keys (`faceid keys add`); health at /health and /ready, metrics at /metrics, the
    OpenAPI docs at /docs; the web admin page at /admin (sign in with an admin key). The
    models load once, before the first request.

    Example: faceid serve --port 8000 --home /var/lib/faceid
    """
    import gc

    import numpy as np
    import uvicorn

    from faceid.detectors import default_detector, make_detector
    from faceid.service.app import Service, create_app

    import socket

    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together")
    for pem in (tls_cert, tls_key):
        if pem is not None and not pem.is_file():
            raise UsageError(f"{pem}: no such file")
    with socket.socket() as probe:  # before loading anything: a clear line, not uvicorn's log
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UsageError(f"--host {host} --port {port}: cannot listen there "
                             f"({exc.strerror or exc})") from None
    detector = make_detector(default_detector(server=True))
    gallery = _gallery(home, db, model, views, min_face, create=True, detector=detector)
    gallery.fid.embed_images([np.zeros((64, 64, 3), np.uint8)])  # load the models now:
    gallery.fid.encoder  # noqa: B018 - the detector above, the encoder here (no face to encode)
    service = Service(gallery, max_upload=int(max_upload_mb * 1024 * 1024),
                      session_ttl_s=session_minutes * 60)
    api = create_app(service)
    # what start-up made lives as long as the process: moved out of the collector's sight,
    # a full collection no longer walks it with every request thread stopped (a stall of
    # every request in flight at once; docs/DESIGN-NOTES.md, "The HTTP service")
    gc.collect()
    gc.freeze()
    scheme = "https" if tls_cert else "http"
    err.print(f"faceid serve on {scheme}://{host}:{port} (admin page at /admin, docs at /docs)")
    uvicorn.run(api, host=host, port=port, log_level="warning",
                ssl_certfile=tls_cert, ssl_keyfile=tls_key)


class UnitKind(str, Enum):
    serve = "serve"
    door = "door"


@app.command("install-service")
def install_service(
    kind: Annotated[UnitKind, typer.Argument(help="serve (the HTTP API) or door (one camera's `faceid watch`).")],
    door: Annotated[Optional[str], typer.Option(help="The door's name (kind door): its unit is faceid-door-NAME.service.")] = None,
    config: Annotated[Path, typer.Option(help="The settings file the unit starts faceid with.")] = Path("/etc/faceid/faceid.toml"),
    data: Annotated[Path, typer.Option(help="The data directory: the only path the service may write.")] = Path("/var/lib/faceid"),
    user: Annotated[str, typer.Option(help="The system user the service runs as.")] = "faceid",
    unit_dir: Annotated[Path, typer.Option(help="Where to write the unit.")] = Path("/etc/systemd/system"),
    threads: Annotated[int, typer.Option(min=1, max=1024, help="CPU threads for its networks.")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Write a systemd unit for the server or a door (restart always, its own user, the data
    directory as the only writable path). Then: systemctl daemon-reload; systemctl enable
    --now faceid-serve (or faceid-door-NAME).

    Example: sudo faceid install-service door --door front --config /etc/faceid/faceid.toml
    """
    from faceid.service.units import install

    path = install(kind.value, unit_dir, config=config.resolve(), data=data, user=user,
                   door=door, threads=threads)
    unit = path.stem
    _emit({"unit": str(path)}, as_json,
          f"wrote {path}; now: systemctl daemon-reload && systemctl enable --now {unit}")


from training.cli import register as register_training  # noqa: E402

register_training(app)

from faceid.course_cli import register as register_course  # noqa: E402

register_course(app)

if __name__ == "__main__":
    app()
