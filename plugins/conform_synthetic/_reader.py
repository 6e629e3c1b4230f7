"""Read back a study written by :func:`~conform_synthetic.write_study` (``conform simulate``).

Every problem with a file raises :class:`~conform_core.exceptions.DataFileError` naming the
file and the fix, never a bare ``KeyError`` or ``OSError``.
"""

from __future__ import annotations

import csv
import json
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from conform_core.data import (
    ConditionData,
    Events,
    GroundTruth,
    StimulusSet,
    Subject,
    TimeSeriesData,
    TrialData,
    Units,
)
from conform_core.exceptions import ConformError, DataFileError

from ._study import SimulatedStudy
from ._writer import CONFOUNDS_SUFFIX, FORMAT_NAME, FORMAT_VERSION

__all__ = ["read_study_info", "read_stimuli", "read_study_subject", "read_study"]

_FIX = "Re-create the study with `conform simulate OUT` (the file is missing or damaged)."
_SUBJECT_KEYS = ("betas", "stimulus_ids", "sessions", "runs", "train_ids", "test_ids", "stimuli",
                 "unit_ids", "unit_indices", "truth_signal", "truth_stimulus_ids",
                 "truth_noise_ceiling")


def _need(path: Path) -> Path:
    if not path.is_file():
        raise DataFileError(f"Synthetic study file {str(path)!r} is missing. {_FIX}")
    return path


def read_study_info(location: str | Path) -> dict[str, Any]:
    """Read and check ``study.json`` of the study in folder ``location``.

    Raises
    ------
    DataFileError
        If the folder or ``study.json`` is missing, not JSON, or of another format.
    """
    root = Path(location)
    if not root.is_dir():
        raise DataFileError(
            f"Synthetic study folder {str(root)!r} does not exist. Write one with "
            f"`conform simulate {root}`, or pass the folder it wrote."
        )
    path = _need(root / "study.json")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataFileError(f"{str(path)!r} is not valid JSON ({exc}). {_FIX}") from None
    if not isinstance(info, dict) or info.get("format") != FORMAT_NAME:
        got = info.get("format") if isinstance(info, dict) else type(info).__name__
        raise DataFileError(
            f"{str(path)!r} is not a conform synthetic study (format {got!r}, expected "
            f"{FORMAT_NAME!r}). Point the synthetic dataset at a folder written by "
            "`conform simulate`."
        )
    if info.get("layout", "conform") != "conform":
        raise DataFileError(
            f"{str(root)!r} holds a study written with `conform simulate --layout "
            f"{info.get('layout')}` (a BIDS tree with fMRIPrep-style derivatives), which the "
            f"synthetic-folder dataset does not read. Read it with the bids dataset "
            f"(`conform data info bids {root}`), or write the study again without --layout."
        )
    if info.get("format_version") != FORMAT_VERSION:
        raise DataFileError(
            f"{str(path)!r} has format_version {info.get('format_version')!r}; this conform reads "
            f"version {FORMAT_VERSION}. Re-create the study with this version's `conform simulate`."
        )
    missing = [k for k in ("params", "subjects", "n_units", "grid_shape", "shared_ids", "test_ids")
               if k not in info]
    if missing:
        raise DataFileError(f"{str(path)!r} lacks the key(s) {missing}. {_FIX}")
    return info


def _load_npy(path: Path) -> np.ndarray:
    try:
        return np.load(_need(path), allow_pickle=False)
    except DataFileError:
        raise
    except Exception as exc:  # numpy raises ValueError/OSError/EOFError for damaged files
        raise DataFileError(f"Cannot read {str(path)!r} ({exc}). {_FIX}") from None


def _read_tsv(path: Path, columns: list[str]) -> list[dict[str, str]]:
    try:
        with open(_need(path), encoding="utf-8", newline="") as handle:
            rows = list(csv.DictReader(handle, delimiter="\t"))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataFileError(f"Cannot read {str(path)!r} ({exc}). {_FIX}") from None
    header = set(rows[0]) if rows else set()
    lacking = [c for c in columns if c not in header] if rows else []
    if lacking or any(None in row.values() or None in row for row in rows):
        raise DataFileError(
            f"{str(path)!r} must be a tab-separated table with columns {columns}; "
            f"{'missing ' + str(lacking) if lacking else 'some rows are malformed'}. {_FIX}"
        )
    return rows


def read_stimuli(location: str | Path) -> tuple[StimulusSet, np.ndarray]:
    """Read ``stimuli.tsv``, ``stimuli_embeddings.npy`` and ``stimuli_latent.npy``.

    Returns
    -------
    stimuli : StimulusSet
        Every stimulus, with the features as embeddings.
    latent : ndarray of shape (n_stimuli, n_latent)
    """
    root = Path(location)
    rows = _read_tsv(root / "stimuli.tsv", ["stimulus_id", "source", "category", "shared", "split"])
    embeddings = _load_npy(root / "stimuli_embeddings.npy")
    latent = _load_npy(root / "stimuli_latent.npy")
    for path, arr in ((root / "stimuli_embeddings.npy", embeddings),
                      (root / "stimuli_latent.npy", latent)):
        if arr.ndim != 2 or arr.shape[0] != len(rows):
            raise DataFileError(
                f"{str(path)!r} must hold one row per stimulus in stimuli.tsv ({len(rows)}); "
                f"got shape {arr.shape}. {_FIX}"
            )
    try:
        stimuli = StimulusSet(ids=np.array([r["stimulus_id"] for r in rows]),
                              sources=np.array([r["source"] for r in rows]),
                              embeddings=embeddings,
                              categories=np.array([r["category"] for r in rows]))
    except ConformError as exc:
        raise DataFileError(f"{str(root / 'stimuli.tsv')!r} is inconsistent: {exc}") from None
    return stimuli, latent


def _load_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(_need(path), allow_pickle=False) as archive:
            arrays = {k: archive[k] for k in archive.files}
    except DataFileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, NotImplementedError,
            zlib.error) as exc:  # a damaged zip can claim an unknown compression method
        raise DataFileError(f"Cannot read {str(path)!r} ({exc}). {_FIX}") from None
    missing = [k for k in _SUBJECT_KEYS if k not in arrays]
    if missing:
        raise DataFileError(f"{str(path)!r} lacks the array(s) {missing}. {_FIX}")
    return arrays


def _read_bold(path: Path, unit_indices: np.ndarray | None) -> np.ndarray:
    import nibabel as nib

    try:
        image = nib.load(str(_need(path)))
        data = np.asarray(image.dataobj, dtype=np.float32)  # type: ignore[attr-defined]
    except DataFileError:
        raise
    except Exception as exc:  # nibabel raises many types for damaged files
        raise DataFileError(f"Cannot read NIfTI file {str(path)!r} ({exc}). {_FIX}") from None
    if data.ndim != 4:
        raise DataFileError(
            f"{str(path)!r} must be a 4-D NIfTI (x, y, z, time); got shape {data.shape}. {_FIX}"
        )
    flat = data.reshape(-1, data.shape[3])
    if unit_indices is None:  # no voxel map: every voxel is a unit
        return flat
    if unit_indices.size and unit_indices.max() >= flat.shape[0]:
        raise DataFileError(
            f"{str(path)!r} has {flat.shape[0]} voxels but the units need voxel index "
            f"{int(unit_indices.max())}. {_FIX}"
        )
    return flat[unit_indices]


def _read_confounds(path: Path) -> tuple[list[str], np.ndarray]:
    """Read a run's confounds table (``n/a`` is not allowed: the simulator writes none)."""
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            table = list(csv.reader(handle, delimiter="\t"))
        values = np.array([[float(v) for v in row] for row in table[1:]], dtype=np.float64)
    except (OSError, UnicodeDecodeError, csv.Error, ValueError, IndexError) as exc:
        raise DataFileError(f"Cannot read the confounds table {str(path)!r} ({exc}). "
                            f"{_FIX}") from None
    if not table or values.shape != (len(table) - 1, len(table[0])):
        raise DataFileError(f"{str(path)!r} must be a tab-separated table of numbers with one "
                            f"named column per confound. {_FIX}")
    return table[0], values


def _read_timeseries(folder: Path, name: str, tr: float, units: Units) -> TimeSeriesData:
    rows = _read_tsv(folder / f"{name}_runs.tsv", ["run", "session", "bold", "events", "n_volumes"])
    runs, events, sessions = [], [], []
    confounds: list[np.ndarray] = []
    names: list[str] | None = None
    for row in rows:
        runs.append(_read_bold(folder / row["bold"], units.indices))
        table = folder / row["bold"].replace("bold.nii.gz", CONFOUNDS_SUFFIX)
        if table.is_file():
            names, values = _read_confounds(table)
            confounds.append(values)
        path = folder / row["events"]
        ev = _read_tsv(path, ["onset", "duration", "trial_type", "stimulus_id"])
        try:
            events.append(Events(onset=np.array([float(e["onset"]) for e in ev]),
                                 duration=np.array([float(e["duration"]) for e in ev]),
                                 stimulus_ids=np.array([e["stimulus_id"] for e in ev], dtype=str)))
            sessions.append(int(row["session"]))
        except (ValueError, ConformError) as exc:
            raise DataFileError(f"{str(path)!r} has bad values ({exc}). {_FIX}") from None
    if confounds and len(confounds) != len(runs):
        raise DataFileError(
            f"Only {len(confounds)} of the {len(runs)} runs of {name} in {str(folder)!r} have a "
            f"confounds table (*_{CONFOUNDS_SUFFIX}); every run must have one, or none. {_FIX}")
    try:
        return TimeSeriesData(runs=runs, events=events, tr=tr, sessions=np.array(sessions),
                              subject=name, units=units, confounds=confounds or None,
                              confound_names=names if confounds else None)
    except ConformError as exc:
        raise DataFileError(
            f"The runs of {name} in {str(folder)!r} do not fit together: {exc} {_FIX}"
        ) from None


def read_study_subject(location: str | Path, name: str, *, info: dict[str, Any] | None = None,
                       stimuli: StimulusSet | None = None) -> Subject:
    """Read subject ``name`` of the study in ``location`` (trials, truth, and runs if written).

    Parameters
    ----------
    location : path-like
        The folder ``conform simulate`` wrote.
    name : str
        Subject label, e.g. ``"sub-01"``.
    info, stimuli : optional
        ``study.json`` content and the study's stimuli, when already read.

    Raises
    ------
    DataFileError
        If a file is missing or damaged (the message names it).
    """
    root = Path(location)
    info = read_study_info(root) if info is None else info
    stimuli = read_stimuli(root)[0] if stimuli is None else stimuli
    folder = root / name
    path = folder / f"{name}_trials.npz"
    a = _load_npz(path)
    try:
        units = Units(ids=a["unit_ids"], space="synthetic", indices=a["unit_indices"])
        trials = TrialData(betas=a["betas"], stimulus_ids=a["stimulus_ids"], sessions=a["sessions"],
                           runs=a["runs"], subject=name, units=units)
        amplitudes = a.get("truth_trial_amplitudes", trials.betas)
        shared_space = None
        if "truth_shared_space" in a and "truth_shared_space_ids" in a:  # older studies lack it
            shared_space = ConditionData(
                a["truth_shared_space"], a["truth_stimulus_ids"], subject=name,
                units=Units(ids=a["truth_shared_space_ids"], space="synthetic-latent"))
        truth = GroundTruth(
            signal=ConditionData(a["truth_signal"], a["truth_stimulus_ids"], subject=name,
                                 units=units),
            trial_amplitudes=amplitudes, hrf_index=a.get("truth_hrf_index"),
            noise_ceiling=a["truth_noise_ceiling"], shared_space=shared_space,
            unit_positions=a.get("truth_unit_positions"))
        timeseries = None
        if (folder / f"{name}_runs.tsv").exists():
            timeseries = _read_timeseries(folder, name, float(info["params"]["tr"]), units)
        return Subject(name=name, stimuli=stimuli.select(a["stimuli"]), trials=trials,
                       timeseries=timeseries, train_ids=a["train_ids"], test_ids=a["test_ids"],
                       truth=truth)
    except DataFileError:
        raise
    except ConformError as exc:
        raise DataFileError(f"{str(path)!r} is inconsistent: {exc} {_FIX}") from None


def read_study(location: str | Path) -> SimulatedStudy:
    """Read a whole study written by ``conform simulate`` into a :class:`SimulatedStudy`."""
    info = read_study_info(location)
    stimuli, latent = read_stimuli(location)
    subjects = [read_study_subject(location, s["name"], info=info, stimuli=stimuli)
                for s in info["subjects"]]
    return SimulatedStudy(subjects=subjects, stimuli=stimuli, params=dict(info["params"]),
                          latent=latent, shared_ids=np.array(info["shared_ids"], dtype=str),
                          test_ids=np.array(info["test_ids"], dtype=str))
