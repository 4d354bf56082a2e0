"""The web admin page that ``faceid serve`` also serves, under ``/admin``: a guard or an
administrator signs in with an admin API key and sees people (search, enrol from photos or
a camera snapshot, disable, remove with confirmation, each person's templates as
thumbnails), the events with their snapshots and filters, each door's live status, and can
run an identify on a photo.

Server-rendered Jinja2 pages over the same library calls and the same gallery lock as the
JSON API (no front-end build step; the only script is the camera snapshot). A sign-in opens
a server-side session: the cookie holds a random token only, HttpOnly and SameSite=Strict
(so another site's form cannot post with it), and the session ends after ``ttl_s`` idle, at
sign-out, or as soon as its key is revoked (the key is checked on every request). Sessions
live in the server's memory: a restart signs everyone out, which is the safe side.

Every form posts and then redirects (post/redirect/get), so a reload never repeats an
enrolment; a refused input comes back as the page with a one-line error, the same message
the CLI and the API give.

The endpoints read annotations at run time (forms, uploads), so no postponed annotations.
"""

import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from db.keys import KeyInfo, check_key
from faceid.decisions import identify_photos
from faceid.enrolment import enroll_images
from faceid.errors import FaceIDError, UnknownPerson, UsageError

COOKIE = "faceid_session"
DEFAULT_TTL_S = 30 * 60
PAGE = 50  # events per page


@dataclass
class Session:
    token: str       # the admin key it was opened with (server memory only)
    key_name: str
    expires: float   # monotonic time


class Sessions:
    """Signed-in browsers: cookie value -> :class:`Session`, with idle expiry."""

    def __init__(self, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.ttl_s = ttl_s
        self._open: dict[str, Session] = {}
        self._lock = threading.Lock()

    def open(self, key: KeyInfo, token: str) -> str:
        cookie = secrets.token_urlsafe(32)
        with self._lock:
            self._open[cookie] = Session(token, key.name, time.monotonic() + self.ttl_s)
        return cookie

    def touch(self, cookie: str | None) -> tuple[Session | None, bool]:
        """The live session for ``cookie`` (its idle clock restarted) and whether a session
        had just expired (so the sign-in page can say so)."""
        if not cookie:
            return None, False
        now = time.monotonic()
        with self._lock:
            for stale in [c for c, s in self._open.items() if s.expires <= now and c != cookie]:
                del self._open[stale]
            session = self._open.get(cookie)
            if session is None:
                return None, False
            if session.expires <= now:
                del self._open[cookie]
                return None, True
            session.expires = now + self.ttl_s
            return session, False

    def close(self, cookie: str | None) -> None:
        with self._lock:
            self._open.pop(cookie or "", None)


class _SignIn(Exception):
    """Raised by a page that needs a session it does not have: back to the sign-in page."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


def admin_router(service: Any) -> APIRouter:
    """The ``/admin`` pages over ``service`` (a :class:`faceid.service.app.Service`)."""
    router = APIRouter(prefix="/admin", include_in_schema=False)
    pages = Jinja2Templates(directory=str(resources.files("faceid.service") / "pages"))
    store = service.gallery.store
    sessions: Sessions = service.sessions

    def signed_in(request: Request) -> Session:
        session, expired = sessions.touch(request.cookies.get(COOKIE))
        if session is None:
            raise _SignIn("expired" if expired else "")
        if check_key(store, session.token) is None:  # revoked since sign-in
            sessions.close(request.cookies.get(COOKIE))
            raise _SignIn("revoked")
        return session

    def render(request: Request, name: str, session: Session | None, **context: Any) -> Response:
        return pages.TemplateResponse(request, name, {
            "session": session, "note": request.query_params.get("note"),
            "error": request.query_params.get("error"), **context})

    def back(path: str, **params: Any) -> RedirectResponse:
        query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
        return RedirectResponse(f"/admin{path}" + (f"?{query}" if query else ""), 303)

    @router.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, why: str = "") -> Response:
        return render(request, "login.html", None, why=why)

    @router.post("/login")
    def login(request: Request, key: Annotated[str, Form()] = "") -> Response:
        info = check_key(store, key.strip())
        if info is None:
            return back("/login", error="unknown or revoked API key")
        if info.scope != "admin":
            return back("/login", error=f"key {info.name!r} is read-only; "
                                        "the admin page needs an admin key")
        response = back("/people", note=f"signed in as {info.name}")
        response.set_cookie(COOKIE, sessions.open(info, key.strip()), httponly=True,
                            samesite="strict", secure=request.url.scheme == "https",
                            path="/admin")
        return response

    @router.post("/logout")
    def logout(request: Request) -> Response:
        sessions.close(request.cookies.get(COOKIE))
        response = back("/login", note="signed out")
        response.delete_cookie(COOKIE, path="/admin")
        return response

    @router.get("", include_in_schema=False)
    @router.get("/", include_in_schema=False)
    def home(request: Request) -> Response:
        signed_in(request)
        return back("/people")

    @router.get("/people", response_class=HTMLResponse)
    def people(request: Request, q: str = "") -> Response:
        session = signed_in(request)
        rows = store.people()
        if q:
            needle = q.casefold()
            rows = [r for r in rows if needle in r.name.casefold()
                    or needle in (r.external_id or "").casefold()]
        return render(request, "people.html", session, people=rows, q=q,
                      max_mb=service.max_upload / 1024 / 1024)

    @router.post("/people")
    def enrol(request: Request, name: Annotated[str, Form()] = "",
              photos: Annotated[list[UploadFile | str], Form()] = [],  # noqa: B006
              external_id: Annotated[str, Form()] = "") -> Response:
        # an empty file field arrives as "" (a form posted with no photo chosen)
        session = signed_in(request)
        chosen = [p for p in photos if not isinstance(p, str) and p.filename]
        if not chosen:
            return back("/people", error="choose a photo or take a camera snapshot")
        try:
            files = [service.take_upload(p) for p in chosen]
            with service.writing() as gallery:
                report = enroll_images(gallery, name, files, external_id=external_id or None)
        except FaceIDError as exc:
            return back("/people", error=exc.message)
        note = (f"enrolled {report.label} ({report.added} template"
                f"{'s' if report.added != 1 else ''}) by {session.key_name}")
        return back(f"/people/{report.person_id}", note=note)

    def person_page(request: Request, person_id: int, page: str) -> Response:
        """``page`` about one person; back to the list when they are gone."""
        session = signed_in(request)
        try:
            details = store.person_details(person_id)
        except UnknownPerson as exc:
            return back("/people", error=exc.message)
        return render(request, page, session, person=details)

    @router.get("/people/{person_id}", response_class=HTMLResponse)
    def person(request: Request, person_id: int) -> Response:
        return person_page(request, person_id, "person.html")

    @router.post("/people/{person_id}/active")
    def set_active(request: Request, person_id: int,
                   active: Annotated[bool, Form()] = False) -> Response:
        signed_in(request)
        try:
            label = store.update_person(person_id, active=active)
        except FaceIDError as exc:
            return back("/people", error=exc.message)
        return back(f"/people/{person_id}",
                    note=f"{label} {'enabled' if active else 'disabled'}")

    @router.get("/people/{person_id}/remove", response_class=HTMLResponse)
    def confirm_remove(request: Request, person_id: int) -> Response:
        return person_page(request, person_id, "remove.html")

    @router.post("/people/{person_id}/remove")
    def remove(request: Request, person_id: int,
               confirm: Annotated[str, Form()] = "", erase: Annotated[bool, Form()] = False
               ) -> Response:
        signed_in(request)
        if confirm != "remove":
            return back(f"/people/{person_id}/remove",
                        error="type 'remove' to confirm, or cancel")
        try:
            with service.writing() as gallery:
                label = gallery.remove(person_id, erase=erase)
        except FaceIDError as exc:
            return back("/people", error=exc.message)
        return back("/people", note=f"removed {label}" + (" and erased its snapshots"
                                                          if erase else ""))

    @router.get("/templates/{template_id}.jpg")
    def template_face(request: Request, template_id: int) -> Response:
        signed_in(request)
        return _jpeg(store.template_face(template_id))

    @router.get("/identify", response_class=HTMLResponse)
    def identify_page(request: Request) -> Response:
        return render(request, "identify.html", signed_in(request), rows=None)

    @router.post("/identify", response_class=HTMLResponse)
    def identify(request: Request, photo: Annotated[UploadFile | str, Form()] = "") -> Response:
        session = signed_in(request)
        if isinstance(photo, str) or not photo.filename:
            return render(request, "identify.html", session, rows=None,
                          failed="choose a photo")
        try:
            image = service.take_upload(photo)
            with service.reading() as gallery:
                rows = identify_photos(gallery, [image], record=f"web:{session.key_name}:")
        except FaceIDError as exc:
            return render(request, "identify.html", session, rows=None, failed=exc.message)
        return render(request, "identify.html", session, rows=rows, photo=image.name)

    @router.get("/events", response_class=HTMLResponse)
    def events(request: Request, person: str = "", decision: str = "", door: str = "",
               kind: str = "", since: str = "", before: int | None = None) -> Response:
        session = signed_in(request)
        filters = {"person": person, "decision": decision, "door": door, "kind": kind,
                   "since": since}
        try:
            when = _day(since)
            rows = store.events(when, person or None, PAGE, kind or None, door=door or None,
                                decision=decision or None, before=before)
        except FaceIDError as exc:
            return render(request, "events.html", session, events=[], filters=filters,
                          failed=exc.message, older=None)
        older = (f"/admin/events?{urlencode({**filters, 'before': rows[-1].id})}"
                 if len(rows) == PAGE else None)
        return render(request, "events.html", session, events=rows, filters=filters,
                      older=older)

    @router.get("/events/{event_id}.jpg")
    def snapshot(request: Request, event_id: int) -> Response:
        signed_in(request)
        return _jpeg(store.event_snapshot(event_id))

    @router.get("/doors", response_class=HTMLResponse)
    def doors(request: Request) -> Response:
        session = signed_in(request)
        now = datetime.now(timezone.utc)
        shown = [(d, (now - _utc(d.last_seen)).total_seconds()) for d in store.doors()]
        return render(request, "doors.html", session, doors=shown)

    return router


def mount_admin(app: Any, service: Any) -> None:
    """Add the admin pages, their stylesheet and script, and the sign-in redirect to
    ``app``."""
    app.include_router(admin_router(service))
    app.mount("/admin/static", StaticFiles(
        directory=str(resources.files("faceid.service") / "static")), name="admin-static")

    @app.exception_handler(_SignIn)
    def _to_sign_in(request: Request, exc: _SignIn) -> RedirectResponse:
        where = "/admin/login" + (f"?why={exc.why}" if exc.why else "")
        response = RedirectResponse(where, 303)
        response.delete_cookie(COOKIE, path="/admin")
        return response


def _jpeg(data: bytes | None) -> Response:
    if data is None:
        return Response(status_code=404)
    return Response(data, media_type="image/jpeg",
                    headers={"Cache-Control": "private, max-age=300"})


def _utc(when: datetime) -> datetime:
    """SQLite hands back naive times (stored as UTC); PostgreSQL aware ones."""
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _day(text: str) -> datetime | None:
    """A ``since`` filter typed in a form: ``2026-12-06`` or a full ISO time (UTC if no zone)."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"since: {text!r} is not a date (YYYY-MM-DD)") from None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
