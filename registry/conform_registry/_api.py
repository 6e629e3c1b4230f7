"""The registry's HTTP API (FastAPI): the app factory, error answers and ``serve``.

:func:`create_app` builds the app over a :class:`~conform_registry._service.RegistryService`
(it migrates the database when the app is built, so it works with FastAPI's ``TestClient``
with or without ``with``) and starts the job runner while the app runs (the lifespan).
Every non-2xx answer has the body ``{"error": {"code", "message", "fix"}}``: the service's
:class:`~conform_registry._service_base.RegistryError`, FastAPI's own request validation
errors (422, or 400 for a body that is not JSON), unknown routes (404) and methods (405),
and unexpected failures (500, logged with the traceback). The routes are in
:mod:`._api_routes`; the interactive OpenAPI documentation is at ``/docs``. The web pages
(:mod:`._web`) are served from ``/``; their refusals are HTML pages with the same message
and fix.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from conform_core.exceptions import ConformError

from ._api_routes import build_router
from ._api_study import build_study_router
from ._config import RegistryConfig
from ._jobs import JobRunner
from ._service import RegistryService
from ._service_base import RegistryError, registry_error
from ._web import STATIC_DIR, build_web_router, error_page, is_page

__all__ = ["create_app", "error_response", "serve"]

logger = logging.getLogger("conform_registry.api")

_DESCRIPTION = """\
Sites upload data into a dataset's **draft** (chunked, resumable, sha256-verified uploads);
the server validates the draft in background **jobs** with the same pinned validator the
client runs; **curators** publish immutable versions with frozen manifests. Reading
published data needs no token; everything else needs `Authorization: Bearer <token>`.
Every error answer is `{"error": {"code", "message", "fix"}}`.
"""


def error_response(error: RegistryError) -> JSONResponse:
    """Return the JSON answer of a refused request (401s also say how to authenticate)."""
    headers = {"WWW-Authenticate": 'Bearer realm="conform-registry"'} if error.status == 401 else None
    return JSONResponse(error.to_dict(), status_code=error.status, headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[int, str, str]:
    problems = []
    for item in exc.errors()[:5]:
        if item.get("type") == "json_invalid":
            return 400, "request.malformed", "The request body is not valid JSON."
        where = ".".join(str(p) for p in item.get("loc", ()) if p != "body") or "body"
        value = item.get("input")
        shown = "" if isinstance(value, (dict, list)) or value is None else f" (got {value!r:.60})"
        problems.append(f"{where}: {item.get('msg', 'invalid')}{shown}")
    return 422, "request.invalid", "The request is invalid: " + "; ".join(problems) + "."


def _answer(request: Request, error: RegistryError) -> Response:
    """Return a refusal as a web page for page requests, else as the API's JSON."""
    if is_page(request):
        return error_page(request, error)
    return error_response(error)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RegistryError)
    async def _registry(request: Request, exc: RegistryError) -> Response:
        return _answer(request, exc)

    @app.exception_handler(ConformError)
    async def _conform(request: Request, exc: ConformError) -> Response:
        return _answer(request, registry_error(exc))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        status, code, message = _validation_message(exc)
        return _answer(request, RegistryError(status, code, message,
                                              "See the API's schema at /docs for the expected fields."))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404 and is_page(request):
            error = RegistryError(404, "page.not_found", f"There is no page {request.url.path}.",
                                  "Start from the catalog at /.")
        elif exc.status_code == 404:
            error = RegistryError(404, "route.not_found", f"There is no API route "
                                  f"{request.method} {request.url.path}.", "See the routes at /docs.")
        elif exc.status_code == 405:
            error = RegistryError(405, "route.method_not_allowed", f"{request.url.path} does not take "
                                  f"{request.method}.", "See the routes at /docs.")
        else:
            error = RegistryError(exc.status_code, f"http.{exc.status_code}", str(exc.detail),
                                  "See the API's documentation at /docs.")
        return _answer(request, error)

    @app.exception_handler(Exception)
    async def _crash(request: Request, exc: Exception) -> Response:
        logger.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return _answer(request, registry_error(exc))


def create_app(source: RegistryConfig | RegistryService | None = None, *, workers: int = 1,
               poll_s: float = 2.0) -> FastAPI:
    """Build the registry's FastAPI app.

    Parameters
    ----------
    source : RegistryConfig, RegistryService or None, default=None
        The settings (a service is made and closed with the app), or a service to use as it
        is (the caller closes it); None reads ``CONFORM_REGISTRY_*`` variables.
    workers : int, default=1
        Job runner threads started while the app runs; 0 starts none (the jobs then wait
        for another server, or for :meth:`JobRunner.run_pending` called by a test).
    poll_s : float, default=2.0
        Longest wait of an idle worker before it looks at the queue again.

    Returns
    -------
    fastapi.FastAPI
        The app; ``app.state.service`` is the service and ``app.state.runner`` the job runner
        (None when ``workers=0``).

    Examples
    --------
    >>> from fastapi.testclient import TestClient  # doctest: +SKIP
    >>> with TestClient(create_app(RegistryConfig(data_dir=tmp))) as client:  # doctest: +SKIP
    ...     client.get("/api/v1/health").json()["status"]
    'ok'
    """
    from conform_core import __version__

    owned = not isinstance(source, RegistryService)
    service = source if isinstance(source, RegistryService) else RegistryService(source)
    service.startup()
    runner = JobRunner(service, workers=workers, poll_s=poll_s) if workers else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if runner is not None:
            runner.start()
        try:
            yield
        finally:
            if runner is not None:
                await run_in_threadpool(runner.stop)
            if owned:
                service.close()

    app = FastAPI(title="CONFORM registry", version=__version__, description=_DESCRIPTION,
                  lifespan=lifespan, docs_url="/docs", openapi_url="/openapi.json")
    app.state.service = service
    app.state.runner = runner
    _install_error_handlers(app)
    app.include_router(build_router(service), prefix="/api/v1")
    app.include_router(build_study_router(service), prefix="/api/v1")
    web, app.state.pages = build_web_router(service)
    app.include_router(web)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def serve(config: RegistryConfig | None = None, host: str = "127.0.0.1", port: int = 8765, *,
          workers: int = 1, log_level: str = "info", **uvicorn_options: Any) -> None:
    """Run the registry with uvicorn until interrupted.

    Parameters
    ----------
    config : RegistryConfig or None, default=None
        The settings (None: from ``CONFORM_REGISTRY_*`` variables).
    host : str, default="127.0.0.1"
        Address to listen on (``0.0.0.0`` for every interface).
    port : int, default=8765
        Port to listen on (0: any free port; uvicorn logs the one it took).
    workers : int, default=1
        Job runner threads.
    log_level : str, default="info"
        uvicorn's log level.
    **uvicorn_options
        Passed to :func:`uvicorn.run`.
    """
    import uvicorn

    app = create_app(config, workers=workers)
    uvicorn.run(app, host=host, port=port, log_level=log_level, **uvicorn_options)
