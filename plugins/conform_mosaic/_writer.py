"""Write any ``TrialData`` as a MOSAIC-compliant per-subject HDF5 file (plus side tables).

The file follows ``docs/mosaic.md`` section 3 exactly: the eleven root attributes, a
``noiseceilings`` group, a ``betas`` group with one float64 (91282,) dataset per trial named
``sub-XX_<CODE>_stimulus-<stem>_phase-<train|test>_rep-<r>`` (test trials first, then train,
then artificial), the four per-trial attributes and ``nan_indices_all``. Groups keep insertion
order (``track_order``). It is written under a temporary name in the destination folder and
renamed into place, so a crash never leaves half a file.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
from numpy.typing import NDArray

from conform_core.data import TrialData
from conform_core.exceptions import ConformWarning, DataFileError, ParameterError, ShapeError
from conform_core.io import atomic_path

from ._noiseceiling import mosaic_noise_ceiling
from ._spec import (
    LONG_NAMES,
    N_VERTICES,
    REQUIRED_ATTRIBUTES,
    format_beta_key,
    format_ceiling_key,
    parse_file_name,
    stimulus_stem,
)
from ._tables import update_split_files, update_stiminfo

__all__ = ["NAN_WARN_LIMIT", "write_subject"]

NAN_WARN_LIMIT = 8000
"""Above this many entries a ``nan_indices`` attribute needs HDF5 dense attribute storage."""
_SPLITS = ("test", "train", "artificial")
_BLOCK = 8192  # vertices per block when computing noise ceilings (bounds extra memory)


def _names(trials: TrialData, subject: str | None, code: str | None) -> tuple[str, str]:
    parts = trials.subject.split("_", 1)
    subject = subject or (parts[0] if parts[0].startswith("sub-") else None)
    code = code or (parts[1] if len(parts) == 2 else None)
    if subject is None or not subject.startswith("sub-") or not subject[4:].isdigit():
        raise ParameterError(
            f"subject must look like 'sub-01' (got {subject!r} and TrialData.subject="
            f"{trials.subject!r}). Pass subject='sub-XX'."
        )
    if not code or "_" in code or not code.isalnum():
        raise ParameterError(
            f"code must be a dataset code of letters and digits without '_' (MOSAIC splits "
            f"file names on '_'); got {code!r}. Pass e.g. code='NSD'."
        )
    return subject, code


def _trial_splits(trials: TrialData, phases: Any) -> NDArray[np.str_]:
    if isinstance(phases, Mapping):
        missing = sorted(set(trials.stimulus_ids.tolist()) - set(phases))
        if missing:
            raise ParameterError(
                f"phases has no split for stimulus id(s) {missing[:5]}. Give every "
                "stimulus 'train', 'test' or 'artificial'."
            )
        out = np.array([phases[s] for s in trials.stimulus_ids.tolist()], dtype=str)
    else:
        out = np.asarray(phases).astype(str)
        if out.shape != (trials.n_trials,):
            raise ShapeError(
                f"phases must give one split per trial ({trials.n_trials}); got shape {out.shape}. "
                "Pass an array of 'train'/'test'/'artificial' or a dict stimulus id -> split."
            )
    bad = sorted(set(out.tolist()) - set(_SPLITS))
    if bad:
        raise ParameterError(f"phases must be 'train', 'test' or 'artificial'; got {bad[:5]}.")
    return out


def _metadata(metadata: Mapping[str, Any], subject: str, code: str) -> dict[str, Any]:
    attrs = dict(metadata)
    attrs.setdefault("subjectID", subject)
    attrs.setdefault("dataset_name", LONG_NAMES.get(code, code))
    missing = [k for k in REQUIRED_ATTRIBUTES if k not in attrs or attrs[k] in (None, "")]
    if missing:
        raise ParameterError(
            f"metadata lacks required MOSAIC attribute(s) {missing}. A compliant file names "
            "owner_name, owner_email, github_url (public code), publication_url, preprocessing_pipeline, "
            "beta_pipeline, sex, age and visual_angle; pass them in metadata={...}."
        )
    if attrs["subjectID"] != subject:
        raise ParameterError(
            f"metadata['subjectID']={attrs['subjectID']!r} disagrees with subject {subject!r}."
        )
    attrs["visual_angle"] = float(attrs["visual_angle"])
    return {
        k: (v if k in ("visual_angle", "age") and not isinstance(v, str) else str(v))
        for k, v in attrs.items()
    }


def _full_vectors(trials: TrialData) -> tuple[NDArray[np.floating], NDArray[np.int64] | None]:
    """Betas and where their columns go in the 91,282-vector (None: already full)."""
    indices = trials.units.indices
    if indices is None or (
        trials.n_units == N_VERTICES and np.array_equal(indices, np.arange(N_VERTICES))
    ):
        if trials.n_units != N_VERTICES:
            raise ShapeError(
                f"MOSAIC betas are vectors of {N_VERTICES} fsLR 91k grayordinates; TrialData has "
                f"{trials.n_units} units and no Units.indices. Resample to fsLR 91k, or give Units.indices "
                "(vertex of each unit) so unmeasured vertices are written as NaN."
            )
        return trials.betas, None
    if indices.min() < 0 or indices.max() >= N_VERTICES or np.unique(indices).size != indices.size:
        raise ShapeError(
            f"Units.indices must be unique grayordinates in [0, {N_VERTICES - 1}] to be written "
            "as MOSAIC vectors."
        )
    return trials.betas, indices


def _ceilings(
    betas: NDArray[np.floating], ids: NDArray[np.str_], columns: NDArray[np.int64] | None
) -> dict[str, NDArray[np.float64]]:
    out: dict[str, NDArray[np.float64]] = {}
    for n in (1, "avg"):
        full = np.full(N_VERTICES, np.nan)
        for start in range(0, betas.shape[1], _BLOCK):
            block = slice(start, start + _BLOCK)
            values = mosaic_noise_ceiling(betas[:, block], ids, n)[1]
            if columns is None:
                full[block] = values
            else:
                full[columns[block]] = values
        out[str(n)] = full
    return out


def write_subject(
    destination: str | os.PathLike[str],
    trials: TrialData,
    *,
    phases: Any,
    metadata: Mapping[str, Any],
    subject: str | None = None,
    code: str | None = None,
    noise_ceilings: bool | Mapping[str, Any] = True,
    compression: str | None = "gzip",
    compression_opts: int | None = 4,
    side_tables: bool = True,
    source: str = "",
    overwrite: bool = False,
) -> Path:
    """Write ``trials`` as a MOSAIC per-subject file ``sub-XX_<CODE>.hdf5``.

    Parameters
    ----------
    destination : path
        A folder (the file is named ``sub-XX_<CODE>.hdf5`` in it) or the file path itself.
    trials : TrialData
        Single-trial betas, ideally z-scored per session as MOSAIC's are; either 91,282 units,
        or units with ``Units.indices`` into the 91k grayordinates (other vertices become NaN).
    phases : array of str of shape (n_trials,) or dict stimulus id -> str
        ``"train"``, ``"test"`` or ``"artificial"`` (stored as phase ``"test"``).
    metadata : dict
        The root attributes (``owner_name``, ``owner_email``, ``github_url``, ``publication_url``,
        ``preprocessing_pipeline``, ``beta_pipeline``, ``sex``, ``age``, ``visual_angle``;
        ``dataset_name`` and ``subjectID`` default from ``code`` and ``subject``).
    subject, code : str or None
        ``"sub-01"`` and ``"NSD"``; default from ``TrialData.subject`` = ``"sub-01_NSD"``.
    noise_ceilings : bool or dict, default=True
        True computes MOSAIC's ceilings per split with a repeated stimulus; a dict
        ``{"<split>_n-<1|avg>": (91282,) array}`` stores given ones; False stores none.
    compression, compression_opts : default="gzip", 4
        Per-dataset filter (with shuffle); ``compression=None`` writes uncompressed as the
        released files are.
    side_tables : bool, default=True
        Also merge this subject into ``<code>_stiminfo.tsv`` and the three split JSONs next to it.
    source : str, default=""
        ``source`` column of the stimulus table for naturalistic stimuli (artificial ones get
        ``"Artificial"``).
    overwrite : bool, default=False
        Replace an existing file.

    Returns
    -------
    Path
        The file written.
    """
    subject, code = _names(trials, subject, code)
    split = _trial_splits(trials, phases)
    attrs = _metadata(metadata, subject, code)
    dest = Path(destination)
    path = dest / f"{subject}_{code}.hdf5" if dest.is_dir() or not dest.suffix else dest
    parsed = parse_file_name(path)
    if parsed is None or parsed.name != f"{subject}_{code}":
        raise ParameterError(
            f"The file must be named {subject}_{code}.hdf5 (MOSAIC readers find subjects by "
            f"file name); got {path.name!r}. Pass the folder instead."
        )
    if path.exists() and not overwrite:
        raise DataFileError(f"{str(path)!r} already exists. Pass overwrite=True to replace it.")
    betas, columns = _full_vectors(trials)
    plan = _plan(trials, split, subject, code)
    path.parent.mkdir(parents=True, exist_ok=True)
    filters = (
        {}
        if compression is None
        else {"compression": compression, "compression_opts": compression_opts, "shuffle": True}
    )
    with atomic_path(path) as tmp, h5py.File(tmp, "w", track_order=True) as h5:
        for key, value in attrs.items():
            h5.attrs[key] = value
        union: set[int] = set()
        ceilings = _ceiling_plan(noise_ceilings, betas, trials.stimulus_ids, split, columns)
        if ceilings:
            group = h5.create_group("noiseceilings", track_order=True)
            for (name, n), values in ceilings.items():
                nan = np.flatnonzero(~np.isfinite(values)).astype(np.int64)
                union.update(nan.tolist())
                data = group.create_dataset(
                    format_ceiling_key(subject, code, name, n),
                    data=np.asarray(values, np.float64),
                    chunks=(N_VERTICES,),
                    track_order=True,
                    **filters,
                )
                data.attrs["nan_indices"] = nan
                data.attrs["n"] = n
                data.attrs["phase"] = "train" if name == "train" else "test"
        group = h5.create_group("betas", track_order=True)
        vector = np.empty(N_VERTICES, np.float64)
        for row, key, phase, rep, filename in plan:
            if columns is None:
                vector[:] = betas[row]
            else:
                vector.fill(np.nan)
                vector[columns] = betas[row]
            nan = np.flatnonzero(~np.isfinite(vector)).astype(np.int64)
            if nan.size == N_VERTICES:
                continue  # all-NaN rows are padding in MOSAIC, never written
            if nan.size > NAN_WARN_LIMIT:
                warnings.warn(
                    f"Trial {key!r} has {nan.size} NaN vertices; attributes above ~64 KB need "
                    "HDF5 dense attribute storage, which some older tools cannot read. Write "
                    "full 91k vectors if you can.",
                    ConformWarning,
                    stacklevel=2,
                )
            union.update(nan.tolist())
            data = group.create_dataset(
                key, data=vector, chunks=(N_VERTICES,), track_order=True, **filters
            )
            data.attrs["nan_indices"] = nan
            data.attrs["phase"] = phase
            data.attrs["repetition"] = np.int64(rep)
            data.attrs["presented_stimulus_filename"] = filename
        h5.create_dataset("nan_indices_all", data=np.array(sorted(union), dtype=np.int64))
    if side_tables:
        _write_side_tables(path.parent, subject, code, plan, split, trials, source)
    return path


def _plan(
    trials: TrialData, split: NDArray[np.str_], subject: str, code: str
) -> list[tuple[int, str, str, int, str]]:
    """Return (row, key, phase, repetition, filename) in MOSAIC's order.

    Test, train, artificial; stimuli in order of first presentation; repeats in trial order.
    """
    plan, seen = [], {}
    for name in _SPLITS:
        rows = np.flatnonzero(split == name)
        ids = trials.stimulus_ids[rows]
        _, first = np.unique(ids, return_index=True)
        for stimulus in ids[np.sort(first)].tolist():
            stem = stimulus_stem(stimulus)
            phase = "train" if name == "train" else "test"
            if (stem, phase) in seen and seen[(stem, phase)] != stimulus:
                raise ParameterError(
                    f"Stimuli {seen[(stem, phase)]!r} and {stimulus!r} share the stem {stem!r} "
                    "in one phase, so their MOSAIC keys would collide. Rename one."
                )
            seen[(stem, phase)] = stimulus
            for rep, row in enumerate(rows[ids == stimulus].tolist()):
                plan.append(
                    (row, format_beta_key(subject, code, stem, phase, rep), phase, rep, stimulus)
                )
    return plan


def _ceiling_plan(
    noise_ceilings: bool | Mapping[str, Any],
    betas: NDArray[np.floating],
    ids: NDArray[np.str_],
    split: NDArray[np.str_],
    columns: NDArray[np.int64] | None,
) -> dict[tuple[str, str], NDArray[np.float64]]:
    if isinstance(noise_ceilings, Mapping):
        out = {}
        for key, values in noise_ceilings.items():
            name, _, n = key.partition("_n-")
            values = np.asarray(values, np.float64)
            if name not in _SPLITS or n not in ("1", "avg") or values.shape != (N_VERTICES,):
                raise ParameterError(
                    f"noise_ceilings[{key!r}] must be keyed '<train|test|artificial>_n-<1|avg>' "
                    f"and hold a ({N_VERTICES},) array; got shape {values.shape}."
                )
            out[(name, n)] = values
        return out
    if not noise_ceilings:
        return {}
    out = {}
    for name in _SPLITS:
        rows = np.flatnonzero(split == name)
        if rows.size and np.unique(ids[rows]).size < rows.size:
            for n, values in _ceilings(betas[rows], ids[rows], columns).items():
                out[(name, n)] = values
    return out


def _write_side_tables(
    folder: Path,
    subject: str,
    code: str,
    plan: Sequence[tuple[int, str, str, int, str]],
    split: NDArray[np.str_],
    trials: TrialData,
    source: str,
) -> None:
    entries: dict[str, dict[str, list[str]]] = {}
    reps: dict[str, int] = {}
    kind: dict[str, str] = {}
    for row, key, _phase, _rep, filename in plan:
        entries.setdefault(str(split[row]), {}).setdefault(filename, []).append(key)
        reps[filename] = reps.get(filename, 0) + 1
        kind[filename] = str(split[row])
    update_split_files(folder, f"{subject}_{code}", entries)
    rows = pd.DataFrame(
        {
            "filename": list(reps),
            "alias": list(reps),
            "source": ["Artificial" if kind[f] == "artificial" else source for f in reps],
            "test_train": ["train" if kind[f] == "train" else "test" for f in reps],
            "reps": list(reps.values()),
        }
    )
    update_stiminfo(folder, code, subject, rows)
