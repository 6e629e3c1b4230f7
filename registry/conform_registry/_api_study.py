"""The study routes of the registry API (mounted under ``/api/v1`` with the others).

A study is created by a curator from a pool: ``ids`` and the embeddings as a ``.npy``
file, base64-encoded in the JSON body (the exact bytes, so the study's sha256 of its
normalised embeddings is the one the site's ``conform design`` computes). Protocol requests
answer with the published package's dataset and version, which the client then pulls.
"""

from __future__ import annotations

import base64
import binascii
import io
from typing import Any

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, Field

from ._api_routes import Caller, Required
from ._service import RegistryService
from ._service_base import RegistryError

__all__ = ["build_study_router"]


class StudyCreate(BaseModel):
    """A new study over a pool of images."""

    name: str = Field(description="the study's name (its catalog is NAME-catalog)",
                      examples=["vision-1"])
    ids: list[str] = Field(description="unique stimulus id per pool row")
    embeddings_npy: str = Field(description="base64 of a .npy file, shape (n_pool, n_features)")
    params: dict[str, Any] = Field(default_factory=dict,
                                   description="conform design parameters (core, overlap, ...)")
    images: list[dict[str, str]] | None = Field(
        None, description="per pool row {source, sha256}: the images by reference")
    description: str = ""


class ProtocolAsk(BaseModel):
    """What a site can offer."""

    participants: int = Field(description="new participants the site will scan", examples=[4])
    session_minutes: float = Field(description="scanning minutes per session", examples=[60])


def decode_npy(text: str) -> np.ndarray:
    """Return the array of a base64-encoded ``.npy`` file (no pickles)."""
    try:
        return np.load(io.BytesIO(base64.b64decode(text, validate=True)), allow_pickle=False)
    except (binascii.Error, ValueError, OSError) as exc:
        raise RegistryError(422, "study.bad_embeddings", f"embeddings_npy is not a base64 .npy "
                            f"file: {exc}.", "Send base64 of the bytes np.save writes.") from None


def build_study_router(service: RegistryService) -> APIRouter:
    """Return the study routes bound to ``service``."""
    router = APIRouter()

    @router.post("/studies", status_code=201, tags=["studies"])
    def create_study(body: StudyCreate, principal: Required) -> dict[str, Any]:
        """Create a study from a pool (curators only), with its empty catalog dataset."""
        return service.create_study(principal, body.name, embeddings=decode_npy(body.embeddings_npy),
                                    ids=body.ids, params=body.params, images=body.images,
                                    description=body.description)

    @router.get("/studies", tags=["studies"])
    def list_studies(principal: Caller) -> dict[str, Any]:
        """List the studies (public)."""
        return {"studies": service.list_studies(principal)}

    @router.get("/studies/{name}", tags=["studies"])
    def get_study(name: str, principal: Caller) -> dict[str, Any]:
        """Describe a study: design, core, datasets, protocol requests."""
        return service.get_study(principal, name)

    @router.get("/studies/{name}/pool", tags=["studies"])
    def pool(name: str, principal: Caller) -> dict[str, Any]:
        """Return the pool: stimulus ids and their embeddings (base64 .npy, as created)."""
        state = service.study_state(name)
        buffer = io.BytesIO()
        np.save(buffer, service.study_embeddings(name), allow_pickle=False)
        return {"study": name, "ids": list(state.ids),
                "embeddings_npy": base64.b64encode(buffer.getvalue()).decode("ascii")}

    @router.get("/studies/{name}/coverage", tags=["studies"])
    def coverage(name: str, principal: Caller, table: bool = True) -> dict[str, Any]:
        """Covering radius and counts of the allocated and of the collected images."""
        return service.study_coverage(principal, name, table=table)

    @router.post("/studies/{name}/requests", status_code=201, tags=["studies"])
    def request_protocol(name: str, body: ProtocolAsk, principal: Required) -> dict[str, Any]:
        """Allocate participants of the caller's site; publish and return their package."""
        return service.request_protocol(principal, name, n_participants=body.participants,
                                        session_minutes=body.session_minutes)

    @router.get("/studies/{name}/requests", tags=["studies"])
    def list_requests(name: str, principal: Caller) -> dict[str, Any]:
        """List a study's protocol requests."""
        return {"requests": service.get_study(principal, name)["requests_list"]}

    return router
