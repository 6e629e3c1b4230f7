"""Metadata about the measured units (voxels or vertices)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ShapeError
from ..validation import check_ids, check_int_array, describe, read_only

__all__ = ["Units"]


@dataclass(frozen=True, eq=False)
class Units:
    """Who the units are: ids, the space they live in, their indices and ROI labels.

    Parameters
    ----------
    ids : ndarray of shape (n_units,), dtype str
        Unique id of each unit (e.g. ``"v012345"``), in the order of the data's unit axis.
    space : str, default="unknown"
        The space the units live in, e.g. ``"fsLR32k"``, ``"MNI152NLin2009cAsym"``, ``"synthetic"``.
    indices : ndarray of shape (n_units,), dtype int, or None
        Vertex or voxel index of each unit in ``space`` (None when not applicable).
    roi : ndarray of shape (n_units,), dtype str, or None
        ROI label of each unit (``""`` for none), e.g. HCP-MMP names such as ``"V1"``.
    """

    ids: NDArray[np.str_]
    space: str = "unknown"
    indices: NDArray[np.int64] | None = None
    roi: NDArray[np.str_] | None = field(default=None)

    def __post_init__(self) -> None:
        ids = check_ids(self.ids, n=None, name="Units.ids")
        n = ids.shape[0]
        object.__setattr__(self, "ids", read_only(ids))
        if not isinstance(self.space, str):
            raise ShapeError(f"Units.space must be a str; got {describe(self.space)}.")
        if self.indices is not None:
            object.__setattr__(self, "indices",
                               read_only(check_int_array(self.indices, n=n, name="Units.indices")))
        if self.roi is not None:
            roi = check_ids(self.roi, n=n, name="Units.roi", axis_name="units", unique=False)
            object.__setattr__(self, "roi", read_only(roi))

    @classmethod
    def default(cls, n_units: int, space: str = "unknown") -> Units:
        """Units named ``u00000``, ``u00001``, ... with no indices or ROI labels."""
        width = max(5, len(str(max(n_units - 1, 0))))
        return cls(ids=np.array([f"u{i:0{width}d}" for i in range(n_units)]), space=space)

    @property
    def n_units(self) -> int:
        """Number of units."""
        return int(self.ids.shape[0])

    def take(self, index: NDArray[np.integer] | NDArray[np.bool_]) -> Units:
        """Return the units at ``index`` (integer positions or a boolean mask)."""
        index = np.asarray(index)
        return Units(
            ids=self.ids[index],
            space=self.space,
            indices=None if self.indices is None else self.indices[index],
            roi=None if self.roi is None else self.roi[index],
        )

    def in_rois(self, names: str | list[str]) -> NDArray[np.bool_]:
        """Boolean mask of the units whose ROI label is in ``names``."""
        if self.roi is None:
            raise ShapeError(
                "These units carry no ROI labels, so they cannot be restricted to ROIs. "
                "Load the dataset with ROI labels, or select units by index instead."
            )
        wanted = [names] if isinstance(names, str) else list(names)
        return np.isin(self.roi, wanted)


def resolve_units(units: Units | None, n_units: int, owner: str) -> Units:
    """Return ``units`` checked against ``n_units``, or default units when None."""
    if units is None:
        return Units.default(n_units)
    if not isinstance(units, Units):
        raise ShapeError(f"{owner}.units must be a Units instance or None; got {describe(units)}.")
    if units.n_units != n_units:
        raise ShapeError(
            f"{owner}.units describes {units.n_units} units but the data has {n_units}. "
            "Pass Units for exactly the units in the data, in the same order."
        )
    return units
