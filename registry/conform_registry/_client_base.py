"""The plumbing and the API calls of the registry client (see :mod:`._client`).

:class:`ClientBase` sends requests (with retries for the repeatable ones), turns refusals
into :class:`~conform_registry._client_types.RegistryClientError` and has one method per
API route; the transfers (:mod:`._client_transfer`, :mod:`._client_pull`) build on it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import httpx

from conform_core.exceptions import ParameterError

from ._client_types import RETRY_STATUS, RegistryClientError, api_path
from ._settings import TOKEN_ENV, URL_ENV, check_url

__all__ = ["ClientBase"]

_FINAL = ("passed", "failed")
_C = TypeVar("_C", bound="ClientBase")


class ClientBase:
    """Requests and API calls of :class:`~conform_registry.RegistryClient` (documented there)."""

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 60.0,
                 retries: int = 5, workers: int = 4,
                 transport: httpx.BaseTransport | None = None) -> None:
        from conform_core import __version__

        self.url = check_url(url)
        self.token = token.strip() if token else None
        if self.token and not (self.token.isprintable() and " " not in self.token):
            raise ParameterError(param="token", value="<hidden>", owner="RegistryClient",
                                 allowed="one word of printable characters (cfr_...)",
                                 fix="Copy the whole token, without spaces or line breaks.")
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.workers = max(1, int(workers))
        headers = {"User-Agent": f"conform-registry-client/{__version__}"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self._http = httpx.Client(base_url=self.url, headers=headers, transport=transport,
                                  timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 10.0)),
                                  follow_redirects=True)
        self._reached = False
        self._limits: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"RegistryClient({self.url!r}, token={'set' if self.token else None})"

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    # ------------------------------------------------------------------ plumbing
    def _unreachable(self, exc: httpx.HTTPError) -> RegistryClientError:
        reason = str(exc).strip() or type(exc).__name__
        if isinstance(exc, httpx.TimeoutException):
            return RegistryClientError(None, "connection.timeout", f"The registry at {self.url} did "
                                       f"not answer in time ({type(exc).__name__}).",
                                       "Retry later (an interrupted upload or pull resumes); "
                                       "if it persists, the server is overloaded.")
        return RegistryClientError(None, "connection.failed", f"Cannot reach the registry at "
                                   f"{self.url}: {reason}.",
                                   "Check that the server runs (`conform registry serve` starts "
                                   f"one) and the URL (${URL_ENV} or `conform registry login "
                                   "--url URL`).")

    def _refusal(self, response: httpx.Response) -> RegistryClientError:
        try:
            body = response.json()["error"]
            code, message, fix = str(body["code"]), str(body["message"]), str(body.get("fix") or "")
        except (ValueError, KeyError, TypeError):
            text = " ".join(response.text.split())[:200]
            return RegistryClientError(response.status_code, f"http.{response.status_code}",
                                       f"The registry at {self.url} answered {response.status_code} "
                                       f"{response.reason_phrase} to {response.request.method} "
                                       f"{response.request.url.path}" + (f": {text}" if text else "."),
                                       "Check that the URL points at a conform registry.")
        if response.status_code == 401 and not self.token:
            fix = (f"Log in with `conform registry login --url {self.url}` or set ${TOKEN_ENV} "
                   "(a curator makes tokens with `conform registry token create`).")
        return RegistryClientError(response.status_code, code, message, fix)

    def request(self, method: str, path: str, *, idempotent: bool = False,
                expect: tuple[int, ...] = (200, 201, 202, 204), timeout: float | None = None,
                **kwargs: Any) -> httpx.Response:
        """Send one request to ``path`` (under the server's URL) and return the answer.

        Parameters
        ----------
        method : str
            HTTP method.
        path : str
            Path such as ``"/api/v1/me"``.
        idempotent : bool, default=False
            Whether repeating it is safe: then a dropped connection or a 502/503/504 answer
            is retried (see ``retries``).
        expect : tuple of int, default=(200, 201, 202, 204)
            Statuses that are success.
        timeout : float or None, default=None
            Seconds to wait for the answer (default: the client's ``timeout``).
        **kwargs
            Passed to :meth:`httpx.Client.request` (``json``, ``content``, ``headers``).

        Returns
        -------
        httpx.Response
            The answer, with a status in ``expect``.

        Raises
        ------
        RegistryClientError
            The server's refusal, or the server could not be reached.
        """
        if timeout is not None:
            kwargs["timeout"] = httpx.Timeout(timeout, connect=min(self.timeout, 10.0))
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, **kwargs)
            except httpx.TransportError as exc:
                # a refused first connection means "no server there": say so at once
                first = isinstance(exc, httpx.ConnectError) and not self._reached
                if not idempotent or first or attempt >= self.retries:
                    raise self._unreachable(exc) from None
            except httpx.HTTPError as exc:
                raise self._unreachable(exc) from None
            else:
                self._reached = True
                if response.status_code in expect:
                    return response
                if not (idempotent and response.status_code in RETRY_STATUS
                        and attempt < self.retries):
                    raise self._refusal(response)
            time.sleep(min(0.5 * 2 ** attempt, 4.0))
            attempt += 1

    def _get(self, *parts: str | int, **params: Any) -> Any:
        return self.request("GET", api_path(*parts), idempotent=True, params=params or None).json()

    # ------------------------------------------------------------------ basics
    def health(self) -> dict[str, Any]:
        """Return the server's health: status, conform version, validator version, limits."""
        return self._get("health")

    def limits(self) -> dict[str, Any]:
        """Return the server's limits (``chunk_bytes``, ``max_file_bytes``, ...), cached.

        A server that does not announce them gets :class:`RegistryConfig`'s defaults.
        """
        if self._limits is None:
            from ._config import RegistryConfig, parse_size

            keys = ("max_file_bytes", "chunk_bytes", "max_upload_chunk_bytes",
                    "pack_threshold_files", "archive_max_members")
            limits = {f.name: parse_size(f.default, key=f.name)
                      for f in dataclasses.fields(RegistryConfig) if f.name in keys}
            found = self.health().get("limits")
            limits.update(found if isinstance(found, Mapping) else {})
            self._limits = limits
        return dict(self._limits)

    def me(self) -> dict[str, Any]:
        """Return the token's ``{"site", "role"}`` (401 without a valid token)."""
        return self._get("me")

    # ------------------------------------------------------------------ datasets
    def create_dataset(self, name: str, kind: str | None = None,
                       protocol: str | None = None, study: str | None = None) -> dict[str, Any]:
        """Create a dataset of the token's site, with an empty draft; return its JSON.

        Parameters
        ----------
        name : str
            Lower-case letters, digits, ``_ . -``.
        kind : {"mosaic", "protocol", "bids", "other"} or None, default=None
            What it holds (None: the validator detects it).
        protocol : str or None, default=None
            ``NAME@VERSION`` of a published protocol dataset the events are checked against.
        study : str or None, default=None
            The study the dataset contributes to (its published versions join the catalog).
        """
        body = {"name": name, "kind": kind, "protocol": protocol}
        if study is not None:
            body["study"] = study
        return self.request("POST", api_path("datasets"), json=body).json()

    def list_datasets(self) -> list[dict[str, Any]]:
        """Return the datasets the caller may see (published ones, and its site's drafts)."""
        return list(self._get("datasets")["datasets"])

    def get_dataset(self, name: str) -> dict[str, Any]:
        """Return a dataset's JSON (``draft`` only for its site and curators)."""
        return self._get("datasets", name)

    def get_version(self, name: str, version: str | int = "latest") -> dict[str, Any]:
        """Return a version's JSON: ``files`` (path, size, sha256), ``manifest_sha256``, ...

        Parameters
        ----------
        name : str
            The dataset.
        version : int or {"latest", "draft"}, default="latest"
            The version.
        """
        return self._get("datasets", name, "versions", str(version))

    def delete_file(self, name: str, path: str) -> None:
        """Remove ``path`` from the dataset's draft (a validation job is queued)."""
        self.request("DELETE", api_path("datasets", name, "draft", "files", path))

    def publish(self, name: str) -> dict[str, Any]:
        """Publish the draft as the next version (curators); return the version's JSON."""
        return self.request("POST", api_path("datasets", name, "publish")).json()

    # ------------------------------------------------------------------ uploads
    def create_upload(self, name: str, path: str, size: int, sha256: str, *,
                      chunk_bytes: int | None = None, unpack: bool = False) -> dict[str, Any]:
        """Start an upload, or get the open one of the same file (``received``: chunks held)."""
        body = {"path": path, "size": size, "sha256": sha256, "chunk_bytes": chunk_bytes,
                "unpack": unpack}
        return self.request("POST", api_path("datasets", name, "uploads"), json=body,
                            idempotent=True).json()

    def get_upload(self, upload_id: str) -> dict[str, Any]:
        """Return an upload's JSON (``received``: the chunks the server holds)."""
        return self._get("uploads", upload_id)

    def put_chunk(self, upload_id: str, index: int, data: bytes, sha256: str) -> dict[str, Any]:
        """Send chunk ``index`` with its sha256 (the server checks it before keeping it)."""
        return self.request("PUT", api_path("uploads", upload_id, "chunks", index), content=data,
                            headers={"X-Chunk-SHA256": sha256,
                                     "Content-Type": "application/octet-stream"},
                            idempotent=True).json()

    def complete_upload(self, upload_id: str, *, size: int = 0) -> dict[str, Any]:
        """Ask the server to verify the whole file and add it to the draft.

        Parameters
        ----------
        upload_id : str
            The upload.
        size : int, default=0
            The file's size: the wait for the answer grows with it (the server re-hashes
            the whole file, at 20 MB/s or more).
        """
        return self.request("POST", api_path("uploads", upload_id, "complete"), idempotent=True,
                            timeout=self.timeout + size / 20e6).json()

    def abort_upload(self, upload_id: str) -> None:
        """Abort an upload; the server discards its chunks."""
        self.request("DELETE", api_path("uploads", upload_id))

    # ------------------------------------------------------------------ jobs
    def validate(self, name: str) -> dict[str, Any]:
        """Queue a validation job of the draft's current content; return the job."""
        return self.request("POST", api_path("datasets", name, "validate")).json()

    def get_job(self, job_id: int) -> dict[str, Any]:
        """Return a job: state, attempts, times, log and report."""
        return self._get("jobs", int(job_id))

    def list_jobs(self, name: str, limit: int = 50) -> list[dict[str, Any]]:
        """Return the draft's jobs, newest first."""
        return list(self._get("datasets", name, "jobs", limit=limit)["jobs"])

    def retry_job(self, job_id: int) -> dict[str, Any]:
        """Run a failed job again; return it (queued)."""
        return self.request("POST", api_path("jobs", int(job_id), "retry")).json()

    def wait_job(self, job_id: int, *, timeout: float | None = None, poll_s: float = 0.5,
                 on_change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
        """Poll a job until it has passed or failed; follow a job that superseded it.

        Parameters
        ----------
        job_id : int
            The job.
        timeout : float or None, default=None
            Most seconds to wait (None: no limit).
        poll_s : float, default=0.5
            First pause between polls; it grows to 2 s.
        on_change : callable or None, default=None
            Called with the job's JSON whenever its id or state changes.

        Returns
        -------
        dict
            The finished job, with its log and report. A job superseded by a newer one
            (the draft changed before it ran) is followed to that one.

        Raises
        ------
        RegistryClientError
            ``job.timeout`` if ``timeout`` passes first, or the server's refusal.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        seen: tuple[int, str] | None = None
        pause = poll_s
        while True:
            job = self.get_job(job_id)
            if on_change is not None and seen != (job["id"], job["state"]):
                on_change(job)
            seen = (job["id"], job["state"])
            if job["state"] == "failed" and job.get("superseded_by"):
                job_id = int(job["superseded_by"])
                continue
            if job["state"] in _FINAL:
                return job
            if deadline is not None and time.monotonic() + pause > deadline:
                raise RegistryClientError(None, "job.timeout", f"Job {job['id']} of "
                                          f"{job.get('dataset')!r} is still {job['state']} after "
                                          f"{timeout:g} s.", "Check it later with `conform registry "
                                          f"status {job.get('dataset')} --job {job['id']}`.")
            time.sleep(pause)
            pause = min(pause * 1.5, 2.0)
