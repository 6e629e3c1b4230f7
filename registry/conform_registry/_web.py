"""The registry's web pages: server-rendered HTML (Jinja2), readable without JavaScript.

Pages (all GET unless said): ``/`` the catalog of studies and datasets; ``/studies/NAME``
a study with its coverage plot (``/studies/NAME/coverage.svg``), protocol requests and
datasets; ``/studies/NAME/request`` the protocol request form (GET, POST); ``/datasets/NAME``
and ``/datasets/NAME/VER`` a dataset and one version with its manifest and validation
report, ``/datasets/NAME/VER/archive.zip`` the version as one download; ``/jobs/ID`` a
submission's validation job with its log (POST ``/jobs/ID/retry``); ``/login`` (GET, POST)
and ``/logout`` (POST).

Signing in stores the registry token in an HttpOnly, SameSite=Strict cookie; every form
that changes something also carries a token derived from it (:func:`form_token`), so a
page of another site can neither read nor use it. Reading published data needs no sign-in,
as in the API. Pages call the same :class:`~conform_registry._service.RegistryService`
operations as the API, so a page never shows what the API would refuse.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import math
import urllib.parse
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from ._auth import Principal
from ._service import RegistryService
from ._service_base import RegistryError
from ._web_zip import zip_stream

__all__ = ["COOKIE", "STATIC_DIR", "build_web_router", "error_page", "form_token", "is_page"]

COOKIE = "conform_token"
"""Name of the cookie that holds the signed-in site's registry token."""
STATIC_DIR = Path(__file__).with_name("static")
_TEMPLATES = Path(__file__).with_name("templates")
_FIGURES_KEPT = 16


def form_token(token: str) -> str:
    """Return the anti-forgery value that forms of a session signed in with ``token`` carry."""
    return hashlib.sha256(b"conform-registry-form:" + token.encode()).hexdigest()[:32]


def is_page(request: Request) -> bool:
    """Whether a request is for a web page (its errors are shown as HTML, not JSON)."""
    path = request.url.path
    return not (path.startswith("/api/") or path in ("/docs", "/openapi.json", "/redoc")
                or path.startswith("/docs/"))


def _human_bytes(size: Any) -> str:
    value = float(size or 0)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"  # pragma: no cover - the loop returns


def _when(text: Any) -> str:
    """ISO time as 'YYYY-MM-DD HH:MM UTC'."""
    if not text:
        return ""
    return str(text)[:16].replace("T", " ") + " UTC"


def _number(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(bytes=_human_bytes, when=_when, num=_number,
                       quote=lambda text: urllib.parse.quote(str(text)))
    return env


class _Pages:
    """Renders templates and reads the signed-in caller from the cookie."""

    def __init__(self, service: RegistryService) -> None:
        self.service = service
        self.env = _environment()
        self.figures: OrderedDict[tuple[str, int], bytes] = OrderedDict()

    def caller(self, request: Request) -> tuple[Principal | None, str]:
        """Return the signed-in caller and its form token (None, "" when signed out)."""
        token = request.cookies.get(COOKIE)
        if not token:
            return None, ""
        try:
            return self.service.authenticate(token), form_token(token)
        except RegistryError:  # revoked or unknown: read as signed out
            return None, ""

    def render(self, request: Request, template: str, *, status: int = 200,
               **context: Any) -> HTMLResponse:
        me, form = self.caller(request)
        html = self.env.get_template(template).render(
            request=request, me=me, form=form, path=request.url.path, **context)
        return HTMLResponse(html, status_code=status)

    def check_form(self, request: Request, value: str) -> Principal:
        """Return the signed-in caller of a form post, refusing a post without its form token."""
        me, form = self.caller(request)
        if me is None:
            raise RegistryError(401, "auth.required", "This form needs you to be signed in.",
                                "Sign in with your site's registry token, then send the form again.")
        if not hmac.compare_digest(form.encode(), (value or "").encode()):
            raise RegistryError(403, "form.stale", "The form was not sent from this registry's own "
                                "page, or it was opened before you last signed in.",
                                "Reload the page and send the form again.")
        return me


def error_page(request: Request, error: RegistryError) -> HTMLResponse:
    """Return a refused page request as HTML: status, message, fix (and sign-in when needed)."""
    pages: _Pages | None = getattr(request.app.state, "pages", None)
    try:
        if pages is not None:
            return pages.render(request, "error.html", status=error.status, error=error,
                                next=request.url.path)
    except Exception:  # noqa: BLE001 - the database may be what failed: a bare page still says why
        pass
    text = html.escape(f"{error.message} {error.fix}")
    return HTMLResponse(f"<!doctype html><title>{error.status}</title><h1>{error.status}</h1>"
                        f"<p>{text}</p>", error.status)


def _local(target: str | None) -> str:
    """Return ``target`` if it is a path on this site, else ``/`` (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def _see(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _parse_number(text: str, kind: type, name: str, example: str) -> tuple[Any, str | None]:
    try:
        return kind(text.strip()), None
    except ValueError:
        return None, f"{name} must be a {'whole ' if kind is int else ''}number, like {example} " \
                     f"(got {text.strip()!r:.40})."


def build_web_router(service: RegistryService) -> tuple[APIRouter, _Pages]:
    """Return the web pages' routes bound to ``service``, and their renderer."""
    router = APIRouter(include_in_schema=False)
    pages = _Pages(service)

    # ------------------------------------------------------------------ catalog
    @router.get("/", response_class=HTMLResponse)
    def catalog(request: Request) -> HTMLResponse:
        me, _ = pages.caller(request)
        return pages.render(request, "catalog.html", studies=service.list_studies(me),
                            datasets=service.list_datasets(me))

    # ------------------------------------------------------------------ signing in
    @router.get("/login", response_class=HTMLResponse)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return pages.render(request, "login.html", next=_local(next), problem=None)

    @router.post("/login", response_model=None)
    def login(request: Request, token: Annotated[str, Form()] = "",
              next: Annotated[str, Form()] = "/") -> Response:
        try:
            service.authenticate(token.strip())
        except RegistryError as exc:
            return pages.render(request, "login.html", status=exc.status, next=_local(next),
                                problem=exc)
        response = _see(_local(next))
        response.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/")
        return response

    @router.post("/logout")
    def logout() -> RedirectResponse:
        response = _see("/")
        response.delete_cookie(COOKIE, path="/")
        return response

    # ------------------------------------------------------------------ studies
    @router.get("/studies/{name}", response_class=HTMLResponse)
    def study(request: Request, name: str) -> HTMLResponse:
        me, _ = pages.caller(request)
        about = service.get_study(me, name)
        coverage = service.study_coverage(me, name)
        return pages.render(request, "study.html", study=about, coverage=coverage)

    @router.get("/studies/{name}/coverage.svg")
    def coverage_figure(request: Request, name: str) -> Response:
        from stimulus_design import study_coverage_figure

        state = service.study_state(name)
        key = (name, int(state.revision))
        figure = pages.figures.get(key)
        if figure is None:
            figure = study_coverage_figure(state, service.study_embeddings(name), fmt="svg")
            pages.figures[key] = figure
            while len(pages.figures) > _FIGURES_KEPT:
                pages.figures.popitem(last=False)
        return Response(figure, media_type="image/svg+xml",
                        headers={"Cache-Control": "no-cache", "ETag": f'"{name}-{key[1]}"'})

    @router.get("/studies/{name}/request", response_class=HTMLResponse)
    def request_form(request: Request, name: str) -> HTMLResponse:
        me, _ = pages.caller(request)
        return pages.render(request, "request.html", study=service.get_study(me, name),
                            values={"participants": "4", "session_minutes": "60"}, problem=None)

    @router.post("/studies/{name}/request", response_model=None)
    async def request_protocol(request: Request, name: str,
                               participants: Annotated[str, Form()] = "",
                               session_minutes: Annotated[str, Form()] = "",
                               form: Annotated[str, Form()] = "") -> Response:
        me = pages.check_form(request, form)
        values = {"participants": participants, "session_minutes": session_minutes}
        n, problem = _parse_number(participants, int, "Participants", "4")
        minutes, problem_m = _parse_number(session_minutes, float, "Session minutes", "60")
        problem = problem or problem_m
        if problem is None:
            try:
                done = await run_in_threadpool(service.request_protocol, me, name,
                                               n_participants=n, session_minutes=minutes)
            except RegistryError as exc:
                if exc.status != 422:
                    raise
                problem = f"{exc.message} {exc.fix}"
            else:
                return _see(f"/datasets/{done['dataset']}/{done['version']}?request={done['request']}")
        about = await run_in_threadpool(service.get_study, me, name)
        return pages.render(request, "request.html", status=422, study=about, values=values,
                            problem=problem)

    # ------------------------------------------------------------------ datasets
    @router.get("/datasets/{name}", response_class=HTMLResponse)
    def dataset(request: Request, name: str) -> HTMLResponse:
        me, _ = pages.caller(request)
        about = service.get_dataset(me, name)
        jobs = service.list_jobs(me, name, limit=20) if "draft" in about else []
        return pages.render(request, "dataset.html", dataset=about, jobs=jobs)

    @router.get("/datasets/{name}/{ver}", response_class=HTMLResponse)
    def version(request: Request, name: str, ver: str) -> HTMLResponse:
        me, _ = pages.caller(request)
        about = service.get_version(me, name, ver, report=True)
        return pages.render(request, "version.html", version=about,
                            dataset=service.get_dataset(me, name),
                            requested=request.query_params.get("request"))

    @router.get("/datasets/{name}/{ver}/archive.zip")
    def archive(request: Request, name: str, ver: str) -> StreamingResponse:
        me, _ = pages.caller(request)
        about = service.get_version(me, name, ver)
        label = f"{name}-v{about['version']}" if about["version"] != "draft" else f"{name}-draft"
        return StreamingResponse(zip_stream(service.store, about["files"]),
                                 media_type="application/zip",
                                 headers={"Content-Disposition": f'attachment; filename="{label}.zip"',
                                          "X-Manifest-SHA256": about["manifest_sha256"]})

    # ------------------------------------------------------------------ jobs
    @router.get("/jobs/{job_id}", response_class=HTMLResponse)
    def job(request: Request, job_id: int) -> HTMLResponse:
        me, _ = pages.caller(request)
        return pages.render(request, "job.html", job=service.get_job(me, job_id))

    @router.post("/jobs/{job_id}/retry")
    def retry(request: Request, job_id: int,
              form: Annotated[str, Form()] = "") -> RedirectResponse:
        me = pages.check_form(request, form)
        return _see(f"/jobs/{service.retry_job(me, job_id)['id']}")

    return router, pages
