"""Condition-level responses: one value per unit and condition (stimulus)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..exceptions import ShapeError
from ..validation import check_float_array, check_ids, read_only
from .units import Units, resolve_units

__all__ = ["ConditionData", "positions_of"]


def positions_of(available: NDArray[np.str_], wanted: Sequence[str] | NDArray[np.str_],
                 *, what: str) -> NDArray[np.intp]:
    """Positions of the ``wanted`` ids in ``available``; raise naming any that are missing."""
    lookup = {sid: i for i, sid in enumerate(available.tolist())}
    wanted_list = np.asarray(wanted).astype(str).tolist()
    missing = [sid for sid in wanted_list if sid not in lookup]
    if missing:
        raise ShapeError(
            f"{what} has no stimulus id(s) {missing[:5]} ({len(missing)} missing). "
            "Select only ids that are present (see .stimulus_ids)."
        )
    return np.array([lookup[sid] for sid in wanted_list], dtype=np.intp)


@dataclass(frozen=True, eq=False)
class ConditionData:
    """Responses of units to conditions: one value per unit and stimulus.

    Parameters
    ----------
    data : ndarray of shape (n_units, n_conditions)
        float32 or float64. NaN marks a unit that was not measured (e.g. a MOSAIC NaN vertex).
    stimulus_ids : ndarray of shape (n_conditions,), dtype str
        Unique stimulus id of each condition, in the order of axis 1.
    subject : str, default=""
        Whose responses these are (empty for a shared or template space).
    units : Units or None
        Unit metadata; default ids ``u00000``... when None.
    """

    data: NDArray[np.floating]
    stimulus_ids: NDArray[np.str_]
    subject: str = ""
    units: Units = None  # type: ignore[assignment]  # None -> default units

    def __post_init__(self) -> None:
        data = check_float_array(self.data, ndim=2, name="ConditionData.data",
                                 axes="(units, conditions)", allow_nan=True,
                                 nan_meaning="unit not measured")
        ids = check_ids(self.stimulus_ids, n=data.shape[1], name="ConditionData.stimulus_ids",
                        axis_name="conditions, axis 1 of data")
        object.__setattr__(self, "data", read_only(data))
        object.__setattr__(self, "stimulus_ids", read_only(ids))
        object.__setattr__(self, "subject", str(self.subject))
        object.__setattr__(self, "units", resolve_units(self.units, data.shape[0], "ConditionData"))

    @property
    def n_units(self) -> int:
        """Number of units (axis 0)."""
        return int(self.data.shape[0])

    @property
    def n_conditions(self) -> int:
        """Number of conditions (axis 1)."""
        return int(self.data.shape[1])

    def as_targets(self) -> NDArray[np.floating]:
        """Return the data as conditions x units (the ``Y`` of a scikit-learn encoder)."""
        return self.data.T

    def select(self, stimulus_ids: Sequence[str] | NDArray[np.str_]) -> ConditionData:
        """Return the conditions with these stimulus ids, in the order given."""
        pos = positions_of(self.stimulus_ids, stimulus_ids, what="ConditionData")
        return self.take_conditions(pos)

    def take_conditions(self, index: NDArray[np.integer]) -> ConditionData:
        """Return the conditions at integer positions ``index``."""
        index = np.asarray(index)
        return ConditionData(
            self.data[:, index], self.stimulus_ids[index], self.subject, self.units
        )

    def take_units(self, index: NDArray[np.integer] | NDArray[np.bool_]) -> ConditionData:
        """Return the units at ``index`` (positions or boolean mask)."""
        index = np.asarray(index)
        return ConditionData(
            self.data[index], self.stimulus_ids, self.subject, self.units.take(index)
        )

    def with_data(self, data: NDArray[np.floating]) -> ConditionData:
        """Return a copy with new data of the same shape (same ids, subject and units)."""
        if np.shape(data) != self.data.shape:
            raise ShapeError(
                f"with_data needs data of shape {self.data.shape}; got {np.shape(data)}."
            )
        return ConditionData(data, self.stimulus_ids, self.subject, self.units)
