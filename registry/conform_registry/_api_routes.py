"""The routes of the registry API (mounted under ``/api/v1`` by :func:`._api.create_app`).

Each route authenticates the caller (``Authorization: Bearer <token>``; reading published
data needs none) and calls one :class:`~conform_registry._service.RegistryService`
operation. Routes are plain functions (FastAPI runs them in its thread pool), except the
chunk upload, which reads the body itself so that an oversized chunk is refused before it
is read whole.
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Iterator
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, Query, Request, Response, Security
from fastapi.responses import JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ._auth import Principal
from ._service import RegistryService
from ._service_base import RegistryError
from ._store import BlobNotFoundError

__all__ = ["build_router"]

_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$")
_BLOCK = 1 << 20


class DatasetCreate(BaseModel):
    """A new dataset."""

    name: str = Field(description="lower-case letters, digits, '_', '.', '-'", examples=["cam-mosaic"])
    kind: str | None = Field(None, description="mosaic, protocol, bids, other, or null (detect)")
    protocol: str | None = Field(None, description="NAME@VERSION of a published protocol dataset")
    study: str | None = Field(None, description="the study this dataset contributes to")


class UploadCreate(BaseModel):
    """A file to upload into the draft."""

    path: str = Field(description="relative path in the dataset", examples=["sub-01/sub-01_CAM.hdf5"])
    size: int = Field(description="bytes of the whole file")
    sha256: str = Field(description="sha256 (hex) of the whole file")
    chunk_bytes: int | None = Field(None, description="chunk size (default: the server's)")
    unpack: bool = Field(False, description="the file is an archive: add its members instead")


def _byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """Return (start, end inclusive) of a single ``Range: bytes=...``; None: send everything."""
    match = _RANGE.match(header or "")
    if match is None or (not match[1] and not match[2]):
        return None  # absent, multi-range or malformed: RFC 9110 lets us ignore it
    if not match[1]:
        start, end = max(0, size - int(match[2])), size - 1
        if int(match[2]) == 0:
            start = size
    else:
        start = int(match[1])
        end = min(int(match[2]), size - 1) if match[2] else size - 1
    if start >= size or start > end:
        if size == 0 and start == 0:
            return None
        raise _Unsatisfiable(size)
    return start, end


class _Unsatisfiable(Exception):
    def __init__(self, size: int) -> None:
        self.size = size


def _stream(handle: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    try:
        if start:
            handle.seek(start)
        left = length
        while left > 0:
            block = handle.read(min(_BLOCK, left))
            if not block:
                break
            left -= len(block)
            yield block
    finally:
        handle.close()


_bearer = HTTPBearer(auto_error=False, description="A registry token (cfr_...).")


def _caller(request: Request,
            _: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]) -> Principal | None:
    header = request.headers.get("authorization")
    service: RegistryService = request.app.state.service
    return None if header is None else service.authenticate_header(header)


def _required(principal: Annotated[Principal | None, Depends(_caller)]) -> Principal:
    if principal is None:
        raise RegistryError(401, "auth.required", "This request needs a registry token.",
                            "Send 'Authorization: Bearer <token>' (the client reads "
                            "$CONFORM_REGISTRY_TOKEN or the file `conform registry login` writes).")
    return principal


Caller = Annotated[Principal | None, Depends(_caller)]
"""The caller, or None without an Authorization header (a wrong header is refused: 401)."""
Required = Annotated[Principal, Depends(_required)]
"""The caller; 401 without a token."""


def build_router(service: RegistryService) -> APIRouter:
    """Return the API's routes bound to ``service``."""
    router = APIRouter()
    # ------------------------------------------------------------------ basics
    @router.get("/health", tags=["basics"])
    def health() -> dict[str, Any]:
        """Say the server is up, with its conform and validator versions and limits."""
        return service.health()

    @router.get("/me", tags=["basics"])
    def me(principal: Required) -> dict[str, Any]:
        """Return the site and role of the token."""
        return {"site": principal.site, "role": principal.role.value}

    # ------------------------------------------------------------------ datasets
    @router.post("/datasets", status_code=201, tags=["datasets"])
    def create_dataset(body: DatasetCreate, principal: Required) -> dict[str, Any]:
        """Create a dataset of the caller's site, with an empty draft."""
        return service.create_dataset(principal, body.name, body.kind, body.protocol, body.study)

    @router.get("/datasets", tags=["datasets"])
    def list_datasets(principal: Caller) -> dict[str, Any]:
        """List published datasets, and the caller's site's drafts (curators: all)."""
        return {"datasets": service.list_datasets(principal)}

    @router.get("/datasets/{name}", tags=["datasets"])
    def get_dataset(name: str, principal: Caller) -> dict[str, Any]:
        """Describe a dataset: versions, and its draft for the owner site and curators."""
        return service.get_dataset(principal, name)

    @router.get("/datasets/{name}/versions/{ver}", tags=["datasets"])
    def get_version(name: str, ver: str,
                    principal: Caller) -> dict[str, Any]:
        """List a version's files (ver: a number, 'latest' or 'draft')."""
        return service.get_version(principal, name, ver)

    @router.get("/datasets/{name}/versions/{ver}/files/{path:path}", tags=["datasets"],
                response_class=StreamingResponse)
    def get_file(name: str, ver: str, path: str, request: Request, principal: Caller) -> Response:
        """Download a file; ``Range: bytes=N-`` resumes (206)."""
        return file_response(name, ver, path, request, principal)

    @router.head("/datasets/{name}/versions/{ver}/files/{path:path}", tags=["datasets"])
    def head_file(name: str, ver: str, path: str, request: Request, principal: Caller) -> Response:
        """Answer a file's headers (size, sha256) without its bytes."""
        return file_response(name, ver, path, request, principal)

    def file_response(name: str, ver: str, path: str, request: Request,
                      principal: Principal | None) -> Response:
        ref = service.file_ref(principal, name, ver, path)
        try:
            span = _byte_range(request.headers.get("range"), ref.size)
        except _Unsatisfiable as exc:
            error = RegistryError(416, "range.unsatisfiable", f"The range {request.headers['range']!r} "
                                  f"is outside the file's {exc.size} bytes.",
                                  "Ask for bytes=N- with N below the file's size.")
            return JSONResponse(error.to_dict(), status_code=416,
                                headers={"Content-Range": f"bytes */{exc.size}"})
        start, end = span if span is not None else (0, ref.size - 1)
        length = max(0, end - start + 1)
        filename = urllib.parse.quote(ref.path.rsplit("/", 1)[-1])
        headers = {"ETag": f'"{ref.sha256}"', "X-Content-SHA256": ref.sha256,
                   "Accept-Ranges": "bytes", "Content-Length": str(length),
                   "Content-Disposition": f"attachment; filename*=UTF-8''{filename}"}
        status = 200
        if span is not None:
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{ref.size}"
        if request.method == "HEAD":
            return Response(status_code=status, headers=headers,
                            media_type="application/octet-stream")
        try:
            handle = service.store.open(ref.sha256)
        except BlobNotFoundError:
            raise RegistryError(500, "store.missing", f"The content of {ref.path!r} is missing from "
                                "the blob store.", "Tell the registry operator to run "
                                "`conform registry fsck` and restore the store.") from None
        return StreamingResponse(_stream(handle, start, length), status_code=status,
                                 headers=headers, media_type="application/octet-stream")

    @router.delete("/datasets/{name}/draft/files/{path:path}", status_code=204, tags=["datasets"])
    def delete_file(name: str, path: str, principal: Required) -> Response:
        """Remove a file from the draft (a validation job is queued)."""
        service.delete_file(principal, name, path)
        return Response(status_code=204)

    @router.post("/datasets/{name}/publish", status_code=201, tags=["datasets"])
    def publish(name: str, principal: Required) -> dict[str, Any]:
        """Publish the draft as the next version (curators; needs a passed validation)."""
        return service.publish(principal, name)

    # ------------------------------------------------------------------ uploads
    @router.post("/datasets/{name}/uploads", status_code=201, tags=["uploads"])
    def create_upload(name: str, body: UploadCreate, response: Response,
                      principal: Required) -> dict[str, Any]:
        """Start an upload (201), or find the open one with the same file to resume (200)."""
        upload, created = service.create_upload(principal, name, path=body.path, size=body.size,
                                                sha256=body.sha256, chunk_bytes=body.chunk_bytes,
                                                unpack=body.unpack)
        response.status_code = 201 if created else 200
        return upload

    @router.get("/uploads/{upload_id}", tags=["uploads"])
    def get_upload(upload_id: str, principal: Required) -> dict[str, Any]:
        """Describe an upload; ``received`` lists the chunks the server holds."""
        return service.get_upload(principal, upload_id)

    @router.put("/uploads/{upload_id}/chunks/{index}", tags=["uploads"])
    async def put_chunk(upload_id: str, index: int, request: Request,
                        principal: Required) -> dict[str, Any]:
        """Store one chunk (raw body, header X-Chunk-SHA256); 200 means it is on disk."""
        limit = service.config.max_upload_chunk_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _chunk_too_large(int(declared), limit)
        body = bytearray()
        async for part in request.stream():
            body += part
            if len(body) > limit:
                raise _chunk_too_large(len(body), limit)
        return await run_in_threadpool(service.put_chunk, principal, upload_id, index, bytes(body),
                                       request.headers.get("x-chunk-sha256"))

    @router.post("/uploads/{upload_id}/complete", tags=["uploads"])
    def complete_upload(upload_id: str, principal: Required) -> dict[str, Any]:
        """Verify the whole file and add it (or the archive's members) to the draft."""
        return service.complete_upload(principal, upload_id)

    @router.delete("/uploads/{upload_id}", status_code=204, tags=["uploads"])
    def abort_upload(upload_id: str, principal: Required) -> Response:
        """Abort an upload and discard its chunks."""
        service.abort_upload(principal, upload_id)
        return Response(status_code=204)

    # ------------------------------------------------------------------ jobs
    @router.post("/datasets/{name}/validate", status_code=202, tags=["jobs"])
    def validate(name: str, principal: Required) -> dict[str, Any]:
        """Queue a validation of the draft's current content."""
        return service.request_validation(principal, name)

    @router.get("/datasets/{name}/jobs", tags=["jobs"])
    def list_jobs(name: str, principal: Required,
                  limit: Annotated[int, Query(ge=1, le=1000)] = 50) -> dict[str, Any]:
        """List the draft's jobs, newest first."""
        return {"jobs": service.list_jobs(principal, name, limit=limit)}

    @router.get("/jobs/{job_id}", tags=["jobs"])
    def get_job(job_id: int, principal: Required) -> dict[str, Any]:
        """Describe a job: state, log and report."""
        return service.get_job(principal, job_id)

    @router.post("/jobs/{job_id}/retry", status_code=202, tags=["jobs"])
    def retry_job(job_id: int, principal: Required) -> dict[str, Any]:
        """Run a failed job again."""
        return service.retry_job(principal, job_id)

    return router


def _chunk_too_large(size: int, limit: int) -> RegistryError:
    return RegistryError(413, "chunk.too_large", f"The chunk has {size} bytes or more; the server "
                         f"accepts at most {limit} per chunk.",
                         f"Upload with chunk_bytes of at most {limit}.")
