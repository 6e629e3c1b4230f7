"""The client's study calls: create a study, ask for a protocol, read coverage."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._client_base import ClientBase
from ._client_types import api_path

__all__ = ["StudyMixin"]


class StudyMixin(ClientBase):
    """Study calls of :class:`~conform_registry.RegistryClient`."""

    def create_study(self, name: str, embeddings: NDArray[np.floating], ids: Sequence[str], *,
                     params: Mapping[str, Any] | None = None,
                     images: Sequence[Mapping[str, str]] | None = None,
                     description: str = "") -> dict[str, Any]:
        """Create a study over a pool (a curator's token); return the study.

        Parameters
        ----------
        name : str
            The study's name; its catalog dataset is ``<name>-catalog``.
        embeddings : ndarray of shape (n_pool, n_features)
            The pool's embeddings, sent exactly (as a ``.npy`` file).
        ids : sequence of str
            Stimulus id per row.
        params : mapping or None, default=None
            ``conform design`` parameters (core, overlap, repeats, sessions, runs, seed, ...).
        images : sequence of mapping or None, default=None
            Per row ``{"source", "sha256"}``: the images by reference.
        description : str, default=""
            Shown on the study's page.
        """
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(embeddings), allow_pickle=False)
        body = {"name": name, "ids": [str(i) for i in ids], "params": dict(params or {}),
                "embeddings_npy": base64.b64encode(buffer.getvalue()).decode("ascii"),
                "images": None if images is None else [dict(i) for i in images],
                "description": description}
        return self.request("POST", api_path("studies"), json=body, timeout=600).json()

    def list_studies(self) -> list[dict[str, Any]]:
        """Return every study's summary."""
        return list(self._get("studies")["studies"])

    def get_study(self, name: str) -> dict[str, Any]:
        """Return a study: design, core, datasets and protocol requests."""
        return self._get("studies", name)

    def study_pool(self, name: str) -> tuple[list[str], NDArray[np.floating]]:
        """Return a study's pool: the stimulus ids and their embeddings (as created)."""
        found = self._get("studies", name, "pool")
        array = np.load(io.BytesIO(base64.b64decode(found["embeddings_npy"])), allow_pickle=False)
        return list(found["ids"]), array

    def study_coverage(self, name: str, *, table: bool = True) -> dict[str, Any]:
        """Return the coverage of the pool by the allocated and by the collected images."""
        return self._get("studies", name, "coverage", table=str(table).lower())

    def request_protocol(self, study: str, participants: int,
                         session_minutes: float) -> dict[str, Any]:
        """Allocate participants of the token's site; return the published package's name.

        Not repeated on a dropped connection (a repeat would allocate twice): pull the
        package named in the answer, or see the study's requests.
        """
        return self.request("POST", api_path("studies", study, "requests"), timeout=600,
                            json={"participants": participants,
                                  "session_minutes": session_minutes}).json()
