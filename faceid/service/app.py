"""``faceid serve``: the HTTP API over the same library functions as the command line, with
the models loaded once per process.

FastAPI (with uvicorn) because it is the well-kept Python stack for this: request parsing
and validation, multipart uploads, OpenAPI docs at ``/docs`` from the same declarations, and
a test client. The web admin page (``/admin``, :mod:`faceid.service.admin`) is served by the
same process. Every endpoint but ``/health``, ``/ready`` and ``/metrics`` needs an API key
(``Authorization: Bearer fid_...`` or ``X-API-Key``; ``faceid keys add``): ``read`` keys may
verify, identify, compare and list; ``admin`` keys may also enrol, rename, disable and
remove. Errors are JSON with the CLI's exit code for the same failure (``code``), its kind
and one line (``message``); the HTTP status follows the kind (400 usage, 401/403 keys, 404
unknown person, 409 ambiguous or duplicate, 413 too large, 415 not an image, 422 no usable
face, 503 database unavailable).

The gallery (its FAISS index, its operating point) is one object behind a shared lock:
decisions run side by side under its shared side (decode, detect and encode are
thread-safe, FAISS searches and database reads are safe together, and the operating point is
estimated while the lock is held alone), changes run alone, and every request
sees the enrolments of other processes within ``refresh_s`` (the door's own rule).

FastAPI reads the endpoints' annotations at run time (keys, uploads, forms), so this module
does not postpone them (no ``from __future__ import annotations``).
"""

import io
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import Depends, FastAPI, File, Form, Header, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, RedirectResponse
from pydantic import BaseModel

from db.keys import KeyInfo, check_key
from faceid.decisions import identify_photos, verify_photo
from faceid.door.liveness import PassiveCheck
from faceid.enrolment import enroll_images
from faceid.errors import (AmbiguousPerson, DuplicatePerson, FaceError, FaceIDError,
                           FileTooLarge, ImageTooLarge, InputError, NotAnImage, StoreError,
                           UnknownKey, UnknownPerson, UsageError)
from faceid.gallery import Gallery
from faceid.service.admin import DEFAULT_TTL_S, Sessions, mount_admin
from faceid.service.metrics import Metrics

DEFAULT_MAX_UPLOAD = 10 * 1024 * 1024  # bytes per photo; pixels are capped by FACEID_MAX_PIXELS
STATUS: tuple[tuple[type[FaceIDError], int], ...] = (
    (FileTooLarge, 413), (ImageTooLarge, 413), (NotAnImage, 415), (InputError, 400),
    (FaceError, 422), (UnknownPerson, 404), (UnknownKey, 404), (AmbiguousPerson, 409),
    (DuplicatePerson, 409), (UsageError, 400), (StoreError, 503))


class Service:
    """What the endpoints share: the gallery, the lock that guards it, the limits and the
    counters. Decisions (verify, identify) share the gallery (FAISS searches and database
    reads run side by side, so two cores serve two requests at once); enrolment, removal
    and picking up other processes' changes take it alone."""

    def __init__(self, gallery: Gallery, *, max_upload: int = DEFAULT_MAX_UPLOAD,
                 liveness: PassiveCheck | None = None, refresh_s: float = 2.0,
                 workers: int | None = None, session_ttl_s: float = DEFAULT_TTL_S) -> None:
        self.gallery = gallery
        # decisions running at once: one per core; more only share the cores and stretch
        # every request (first come, first served beats everyone at half speed)
        self.workers = threading.BoundedSemaphore(workers or os.cpu_count() or 1)
        self.max_upload = max_upload
        self.liveness = liveness
        self.refresh_s = refresh_s
        self.lock = SharedLock()
        self.metrics = Metrics()
        self.sessions = Sessions(session_ttl_s)  # the admin page's signed-in browsers
        self._refreshed = 0.0

    def take_upload(self, file: UploadFile) -> io.BytesIO:
        """An upload's bytes, refused past the size limit before any decoding."""
        name = file.filename or "upload"
        if file.size is not None and file.size > self.max_upload:
            raise FileTooLarge(f"{name}: {file.size:,} bytes, over the "
                               f"{self.max_upload:,}-byte upload limit")
        data = file.file.read(self.max_upload + 1)
        if len(data) > self.max_upload:
            raise FileTooLarge(f"{name}: over the {self.max_upload:,}-byte upload limit")
        buf = io.BytesIO(data)
        buf.name = name  # so errors and event sources name the upload
        return buf

    @contextmanager
    def reading(self) -> Iterator[Gallery]:
        """The gallery for one decision, other processes' changes loaded first."""
        if time.monotonic() - self._refreshed >= self.refresh_s:
            if self.gallery.behind():  # only then stop the readers to reload
                with self.lock.exclusive():
                    self.gallery.refresh()
            self._refreshed = time.monotonic()
        if not self.gallery.point_known:  # no operating point yet: estimated (and stored) alone
            with self.lock.exclusive():
                self.gallery.operating_point()
        with self.workers, self.lock.shared():
            yield self.gallery

    @contextmanager
    def writing(self) -> Iterator[Gallery]:
        """The gallery for one change (enrol, remove), alone."""
        with self.lock.exclusive():
            self.gallery.refresh()
            try:
                yield self.gallery
            finally:
                self._refreshed = 0.0  # the next decision re-reads the operating point


class SharedLock:
    """Many readers or one writer (a writer waits for the readers in progress; new readers
    wait while a writer is waiting, so enrolments are not starved)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._readers = 0
        self._writer = False
        self._waiting = 0

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writer and not self._waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._cond:
            self._waiting += 1
            self._cond.wait_for(lambda: not self._writer and not self._readers)
            self._waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


def error_body(exc: FaceIDError) -> dict[str, Any]:
    return {"error": {"code": exc.exit_code, "type": type(exc).__name__,
                      "message": exc.message}}


def status_of(exc: FaceIDError) -> int:
    return next((code for kind, code in STATUS if isinstance(exc, kind)), 500)


class PersonChange(BaseModel):
    """A rename, a new external id, or (de)activation; absent fields are left as they are."""

    name: str | None = None
    external_id: str | None = None
    active: bool | None = None


def create_app(service: Service) -> FastAPI:
    """The API over ``service``; ``faceid serve`` runs it under uvicorn."""
    app = FastAPI(title="faceid", description="Face recognition for access control.",
                  version="1")
    store = service.gallery.store

    def key_for(scope: str) -> Callable[..., KeyInfo]:
        def check(authorization: Annotated[str | None, Header()] = None,
                  x_api_key: Annotated[str | None, Header()] = None) -> KeyInfo:
            token = x_api_key or (authorization[7:].strip() if authorization and
                                  authorization.lower().startswith("bearer ") else None)
            if not token:
                raise _Refused(401, "no API key (send Authorization: Bearer fid_...)")
            key = check_key(store, token)
            if key is None:
                raise _Refused(401, "unknown or revoked API key")
            if scope == "admin" and key.scope != "admin":
                raise _Refused(403, f"key {key.name!r} is read-only; this needs an admin key")
            return key
        return check

    Reader = Annotated[KeyInfo, Depends(key_for("read"))]
    Admin = Annotated[KeyInfo, Depends(key_for("admin"))]

    @app.exception_handler(FaceIDError)
    def _faceid_error(request: Request, exc: FaceIDError) -> JSONResponse:
        return JSONResponse(error_body(exc), status_code=status_of(exc))

    @app.exception_handler(_Refused)
    def _refused(request: Request, exc: _Refused) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": {"code": 2, "type": "Unauthorized" if exc.status == 401
                                       else "Forbidden", "message": exc.message}},
                            status_code=exc.status, headers=headers)

    @app.exception_handler(RequestValidationError)
    def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return JSONResponse(error_body(UsageError(f"{where}: {first.get('msg', 'invalid')}")),
                            status_code=400)

    @app.middleware("http")
    async def _count(request: Request, call_next: Callable) -> Any:
        start = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        seconds = time.perf_counter() - start
        service.metrics.request(request.method, getattr(route, "path", "other"),
                                response.status_code, seconds)
        # the server's own share of the request's time (queueing inside it included), so a
        # client can tell it from the network's and its own
        response.headers["Server-Timing"] = f"app;dur={1000 * seconds:.1f}"
        return response

    @app.get("/health")
    def health() -> dict[str, str]:
        """The process answers (no database access)."""
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> JSONResponse:
        """The database answers: 200, or 503 with why."""
        try:
            store.revision(service.gallery.model.id)
        except FaceIDError as exc:
            return JSONResponse({"status": "unavailable", **error_body(exc)}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        """Prometheus text format: requests, latency, decisions by reason."""
        return service.metrics.render()

    @app.post("/v1/verify")
    def verify(key: Reader, image: UploadFile, claim: Annotated[str, Form()],
               liveness: Annotated[bool, Form()] = False) -> dict[str, Any]:
        """1:1: is the face in ``image`` the claimed person (``#id``, ``badge:ID``, a name)?"""
        photo = service.take_upload(image)
        with service.reading() as gallery:
            v = verify_photo(gallery, photo, claim, record=f"api:{key.name}:",
                             liveness=_check(service, liveness))
        service.metrics.decision("verify", "match" if v.same else "no_match", v.reason)
        return v.to_dict()

    @app.post("/v1/identify")
    def identify(key: Reader, image: UploadFile, top: Annotated[int, Form(ge=1, le=50)] = 5,
                 liveness: Annotated[bool, Form()] = False) -> dict[str, Any]:
        """1:K: every face in ``image``, named or unknown at the gallery's operating point."""
        photo = service.take_upload(image)
        with service.reading() as gallery:
            rows = identify_photos(gallery, [photo], top=top, record=f"api:{key.name}:",
                                   liveness=_check(service, liveness))
        if rows[0].failure is not None:
            raise rows[0].failure
        faces = []
        for r in rows:
            service.metrics.decision("identify", r.decision or "error", r.reason or "error")
            ident = r.identification
            listed = ident.candidates[:top] if ident is not None and ident.person else []
            faces.append({**r.to_dict(), "candidates": [c.to_dict() for c in listed]})
        return {"faces": faces}

    @app.post("/v1/compare")
    def compare(key: Reader, a: UploadFile, b: UploadFile) -> dict[str, Any]:
        """1:1 on two photos of one face each (no gallery)."""
        first, second = service.take_upload(a), service.take_upload(b)
        with service.workers:
            return service.gallery.fid.compare(first, second).to_dict()

    @app.get("/v1/people")
    def people(key: Reader, q: str | None = None) -> dict[str, Any]:
        """Everyone enrolled (``q``: only names or external ids containing it)."""
        rows = [r.to_dict() for r in store.people()]
        if q:
            needle = q.casefold()
            rows = [r for r in rows if needle in r["name"].casefold()
                    or needle in (r.get("external_id") or "").casefold()]
        return {"people": rows}

    @app.get("/v1/people/{ref}")
    def person(key: Reader, ref: str) -> dict[str, Any]:
        """One person and their templates (``ref``: #id, badge:ID or name)."""
        return store.person_details(ref)

    @app.post("/v1/people", status_code=201)
    def enrol(key: Admin, name: Annotated[str, Form()],
              photos: Annotated[list[UploadFile], File()],
              external_id: Annotated[str | None, Form()] = None,
              allow_duplicate: Annotated[bool, Form()] = False) -> dict[str, Any]:
        """Enrol a person from photos of one face each (all or nothing)."""
        files = [service.take_upload(p) for p in photos]
        with service.writing() as gallery:
            report = enroll_images(gallery, name, files, external_id=external_id,
                                   allow_duplicate=allow_duplicate)
        return report.to_dict()

    @app.patch("/v1/people/{ref}")
    def change(key: Admin, ref: str, body: PersonChange) -> dict[str, Any]:
        """Rename, set the external id, disable or enable."""
        label = store.update_person(ref, name=body.name, external_id=body.external_id,
                                    active=body.active)
        return {"person": label}

    @app.delete("/v1/people/{ref}")
    def remove(key: Admin, ref: str, erase: bool = False) -> dict[str, Any]:
        """Remove a person (``erase``: their event snapshots too, bytes overwritten)."""
        with service.writing() as gallery:
            return {"removed": gallery.remove(ref, erase=erase), "erased": erase}

    @app.get("/v1/events")
    def events(key: Reader, since: datetime | None = None, person: str | None = None,
               kind: Annotated[str | None, Query(pattern="^(decision|admin)$")] = None,
               limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> dict[str, Any]:
        """The audit trail, newest first."""
        if since is not None and since.tzinfo is None:
            since = since.replace(tzinfo=timezone.utc)
        return {"events": [e.to_dict() for e in store.events(since, person, limit, kind)]}

    @app.get("/v1/doors")
    def doors(key: Reader) -> dict[str, Any]:
        """Each door's last heartbeat (``faceid watch --door NAME`` writes one every few
        seconds): running, ok or degraded, frames, fps, last decision."""
        return {"doors": [d.to_dict() for d in store.doors()]}

    @app.get("/", include_in_schema=False)
    def root() -> RedirectResponse:
        """People opening the server in a browser land on the admin page."""
        return RedirectResponse("/admin/people", 303)

    @app.get("/v1/gallery")
    def gallery_status(key: Reader) -> dict[str, Any]:
        """The index and the operating point in force."""
        with service.reading() as gallery:
            return gallery.status()

    mount_admin(app, service)
    return app


class _Refused(Exception):
    """A request refused for its key (401 or 403)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _check(service: Service, wanted: bool) -> PassiveCheck | None:
    if not wanted:
        return None
    if service.liveness is None:
        service.liveness = PassiveCheck.load(None)
    return service.liveness
