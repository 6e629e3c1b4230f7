"""Piecewise alignment (``labels``): one whole-space aligner per parcel, fitted in threads.

Private to :mod:`conform_core.components.aligner`. The parcels' aligners live in
``aligner.parcels_`` (in sorted label order); the aligner also keeps each subject's labels
(``_labels``) and each parcel's shared width (``_widths``). Shared units are named
``p<label>:<unit>`` and concatenated in the parcels' order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from ..data import ConditionData, Units
from ..exceptions import ParameterError, ShapeError

if TYPE_CHECKING:
    from .aligner import Aligner


def labels_of(aligner: Aligner, subjects: list[ConditionData], fitted: bool = False,
              ) -> dict[str, NDArray[np.str_]] | None:
    """Each subject's parcel label per unit (as str), or None without ``labels``.

    ``fitted``: also check that the units fall in the fitted parcels (add_subject).
    """
    labels = aligner._param("labels")
    if labels is None:
        return None
    out = {}
    for s in subjects:
        if isinstance(labels, str):
            if s.units.roi is None:
                raise ShapeError(
                    f"{type(aligner).__name__} has labels='roi' but the units of subject "
                    f"{s.subject!r} carry no ROI labels (units.roi is None). Load the data "
                    "with ROI labels, or pass labels=<one parcel label per unit>.")
            out[s.subject] = np.asarray(s.units.roi).astype(str)
            continue
        array = np.asarray(labels)
        if array.ndim != 1 or array.shape[0] != s.n_units:
            raise ParameterError(
                f"$labels has {array.size} labels but subject {ParameterError.quote(repr(s.subject))} "
                f"has {s.n_units} units. Give one parcel label per unit (every subject then "
                "needs that many units), or use $labels='roi' to read each subject's "
                "units.roi.", param="labels", value=labels, owner=aligner)
        out[s.subject] = array.astype(str)
    if fitted:
        known = list(aligner.parcels_)
        for name, lab in out.items():
            extra = sorted(set(lab.tolist()) - set(known))
            missing = sorted(set(known) - set(lab.tolist()))
            if extra or missing:
                raise ShapeError(
                    f"Subject {name!r} has units in parcels {extra} that the aligner was not "
                    f"fitted on and none in {missing}; fitted parcels: {known}. Give it "
                    "units in every fitted parcel and no other (e.g. data.take_units(mask)).")
    return out


def fit_piecewise(aligner: Aligner, paired: list[ConditionData],
                  labels: dict[str, NDArray[np.str_]]) -> None:
    """Fit one whole-space clone of ``aligner`` per parcel (``n_jobs`` threads)."""
    from joblib import Parallel, delayed

    parcels = np.unique(np.concatenate(list(labels.values()))).tolist()
    for s in paired:
        missing = sorted(set(parcels) - set(labels[s.subject].tolist()))
        if missing:
            raise ShapeError(
                f"Subject {s.subject!r} has no unit in parcel(s) {missing[:5]} that other "
                "subjects have; piecewise alignment needs every parcel in every subject. "
                "Drop those parcels' units, or merge them into a neighbouring parcel.")

    def fit_one(label: str) -> Aligner:
        part = aligner._whole_clone()
        part._clip_components = True
        return part.fit([s.take_units(labels[s.subject] == label) for s in paired])

    fitted = Parallel(n_jobs=aligner._param("n_jobs"), prefer="threads")(
        delayed(fit_one)(label) for label in parcels)
    aligner.parcels_ = dict(zip(parcels, fitted))
    first = paired[0]
    aligner._widths = {
        label: part.transform(first.take_units(labels[first.subject] == label)).n_units
        for label, part in aligner.parcels_.items()}
    aligner._labels = dict(labels)
    aligner.subjects_ = [s.subject for s in paired]
    sizes = [part.n_components_ for part in aligner.parcels_.values()]
    aligner.n_components_ = (None if any(n is None for n in sizes)
                             else int(sum(int(n) for n in sizes if n is not None)))


def add_piecewise(aligner: Aligner, data: ConditionData, labels: NDArray[np.str_]) -> None:
    """Add a subject to every parcel's aligner (``n_jobs`` threads)."""
    from joblib import Parallel, delayed

    def add_one(label: str, part: Aligner) -> None:
        part.add_subject(data.take_units(labels == label))

    Parallel(n_jobs=aligner._param("n_jobs"), prefer="threads")(
        delayed(add_one)(label, part) for label, part in aligner.parcels_.items())
    aligner._labels[data.subject] = labels


def transform_piecewise(aligner: Aligner, data: ConditionData) -> ConditionData:
    """Map each parcel of a known subject and concatenate the shared blocks."""
    labels = aligner._labels[data.subject]
    blocks: list[NDArray[np.floating]] = []
    ids: list[str] = []
    for label, part in aligner.parcels_.items():
        out = part.transform(data.take_units(labels == label))
        blocks.append(np.asarray(out.data))
        ids.extend(f"p{label}:{uid}" for uid in out.units.ids.tolist())
    return ConditionData(np.concatenate(blocks, axis=0), data.stimulus_ids, "",
                         Units(ids=np.array(ids), space="shared"))


def inverse_piecewise(aligner: Aligner, shared: ConditionData, subject: str) -> ConditionData:
    """Split shared responses by parcel and map each block back into ``subject``'s units."""
    total = sum(aligner._widths.values())
    if shared.n_units != total:
        raise ShapeError(
            f"{type(aligner).__name__} has a shared space of {total} units over "
            f"{len(aligner.parcels_)} parcels; got {shared.n_units}. Pass what transform "
            "returned (or an average of such outputs).")
    labels = aligner._labels[subject]
    start, backs = 0, []
    for label, part in aligner.parcels_.items():
        width = aligner._widths[label]
        piece = shared.take_units(np.arange(start, start + width))
        backs.append((labels == label, part.inverse_transform(piece, subject)))
        start += width
    dtype = np.result_type(*[b.data.dtype for _, b in backs])
    out = np.empty((labels.size, shared.n_conditions), dtype=dtype)
    for mask, back in backs:
        out[mask] = back.data
    return ConditionData(out, shared.stimulus_ids, subject, aligner._units[subject])
