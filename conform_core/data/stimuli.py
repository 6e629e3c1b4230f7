"""The stimuli of a study: ids, where the images are, checksums and optional embeddings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ShapeError
from ..validation import check_float_array, check_ids, read_only
from .conditions import positions_of

__all__ = ["StimulusSet"]


@dataclass(frozen=True, eq=False)
class StimulusSet:
    """A set of stimuli.

    Parameters
    ----------
    ids : ndarray of shape (n_stimuli,), dtype str
        Unique stimulus ids.
    sources : ndarray of shape (n_stimuli,), dtype str, or None
        File path or URI of each stimulus (empty strings when None).
    sha256 : ndarray of shape (n_stimuli,), dtype str, or None
        SHA-256 of each file (empty strings when None).
    embeddings : ndarray of shape (n_stimuli, n_features), or None
        Feature vectors, cast to float32 (e.g. CLIP embeddings, or the simulator's features).
    categories : ndarray of shape (n_stimuli,), dtype str, or None
        Optional category label per stimulus.
    """

    ids: NDArray[np.str_]
    sources: NDArray[np.str_] = None  # type: ignore[assignment]  # None -> empty strings
    sha256: NDArray[np.str_] = None  # type: ignore[assignment]  # None -> empty strings
    embeddings: NDArray[np.float32] | None = None
    categories: NDArray[np.str_] | None = None

    def __post_init__(self) -> None:
        ids = check_ids(self.ids, n=None, name="StimulusSet.ids")
        n = ids.shape[0]
        object.__setattr__(self, "ids", read_only(ids))
        for name in ("sources", "sha256", "categories"):
            value = getattr(self, name)
            if value is None:
                value = np.full(n, "", dtype=str) if name != "categories" else None
            else:
                value = check_ids(value, n=n, name=f"StimulusSet.{name}", axis_name="stimuli",
                                  unique=False)
            object.__setattr__(self, name, None if value is None else read_only(value))
        if self.embeddings is not None:
            emb = check_float_array(self.embeddings, ndim=2, name="StimulusSet.embeddings",
                                    axes="(stimuli, features)")
            if emb.shape[0] != n:
                raise ShapeError(
                    f"StimulusSet.embeddings must have one row per stimulus ({n}); got "
                    f"{emb.shape[0]} rows. Pass embeddings in the order of ids."
                )
            object.__setattr__(self, "embeddings", read_only(emb.astype(np.float32, copy=False)))

    @property
    def n_stimuli(self) -> int:
        """Number of stimuli."""
        return int(self.ids.shape[0])

    def select(self, ids: Sequence[str] | NDArray[np.str_]) -> StimulusSet:
        """Return the stimuli with these ids, in the order given."""
        pos = positions_of(self.ids, ids, what="StimulusSet")
        return StimulusSet(
            ids=self.ids[pos],
            sources=self.sources[pos],
            sha256=self.sha256[pos],
            embeddings=None if self.embeddings is None else self.embeddings[pos],
            categories=None if self.categories is None else self.categories[pos],
        )
