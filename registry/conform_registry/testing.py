"""Simulated site data for tests and demos of the study loop (nothing is downloaded).

:func:`simulate_contribution` plays a site that ran the protocol package the registry gave
it: for every participant of the package it writes the events of every run as recorded
(``sub-XX/ses-YY/func/*_events.tsv``, the protocol's rows) and one MOSAIC file of
single-trial betas (``sub-XX_<CODE>.hdf5``), simulated from a linear encoding model of the
pool's embeddings that every simulated brain shares (so that ``conform fit`` on the merged
catalog finds signal), plus each participant's own noise. ``deviate=True`` swaps two stimuli
of one run, as a site that did not follow its protocol would upload.
"""

from __future__ import annotations

import csv
import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from conform_core.data import TrialData
from conform_core.exceptions import DataFileError

if TYPE_CHECKING:
    from ._dataset_plugin import RegistryDataset

__all__ = ["cached_toy_dataset", "simulate_contribution"]

_METADATA = {
    "visual_angle": 8.0, "sex": "n/a", "age": "n/a",
    "publication_url": "https://example.org/conform-simulated",
    "github_url": "https://github.com/example/conform-simulated",
    "owner_name": "Simulated Site", "owner_email": "site@example.org",
    "preprocessing_pipeline": "simulated", "beta_pipeline": "simulated",
}
_FIRST_UNIT = 1000
"""The simulated units are grayordinates 1000, 1001, ... (read them with ``rois=[1000, ...]``);
every other grayordinate holds 0 (not NaN: MOSAIC stores NaN positions per trial)."""
N_VERTICES = 91_282


def _read_tsv(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _participants(package: Path) -> dict[str, list[Path]]:
    """Participant label -> its runs' events files, in session and run order."""
    runs: dict[str, list[Path]] = {}
    for path in sorted(package.glob("site-*/sub-*/ses-*/*_events.tsv")):
        runs.setdefault(path.parts[-3], []).append(path)
    if not runs:
        raise DataFileError(f"{str(package)!r} holds no site-*/sub-*/ses-*/*_events.tsv: give the "
                            "folder of a protocol package (conform registry protocol request).")
    return runs


def _core(package: Path) -> set[str]:
    table = package / "stimuli.tsv"
    if not table.is_file():
        return set()
    return {row["stimulus_id"] for row in _read_tsv(table) if row.get("group") == "core"}


def _brain(embeddings: NDArray[np.floating], n_units: int, seed: int) -> NDArray[np.float64]:
    """Return the shared encoding weights (n_features, n_units), fixed by ``seed``."""
    rng = np.random.default_rng([seed, 0x5EED])
    return rng.standard_normal((embeddings.shape[1], n_units)) / np.sqrt(embeddings.shape[1])


def simulate_contribution(package: str | os.PathLike[str], out: str | os.PathLike[str], *,
                          embeddings: NDArray[np.floating], ids: list[str] | NDArray[np.str_],
                          n_units: int = 64, noise: float = 0.5, seed: int = 0,
                          code: str = "CONFORM", deviate: bool = False) -> dict[str, Any]:
    """Write what a site uploads after running a protocol package: events and MOSAIC betas.

    Parameters
    ----------
    package : path-like
        A protocol package folder (``site-*/sub-*/ses-*/*_events.tsv``, ``stimuli.tsv``).
    out : path-like
        Folder to write into (created; files in it are replaced).
    embeddings : ndarray of shape (n_pool, n_features)
        The study pool's embeddings; betas are ``embeddings @ W + noise``.
    ids : sequence of str
        Stimulus id of each pool row.
    n_units : int, default=64
        Units per participant (grayordinates 1000, 1001, ...; the others hold 0).
    noise : float, default=0.5
        Standard deviation of each trial's noise (the signal has variance about 1).
    seed : int, default=0
        Seeds the shared weights (same for every call with this seed) and the noise.
    code : str, default="CONFORM"
        MOSAIC dataset code of the files (``sub-XX_<CODE>.hdf5``).
    deviate : bool, default=False
        Swap the first two stimuli of the first participant's first run in the events
        written (the betas follow the swapped order): data that do not follow the protocol.

    Returns
    -------
    dict
        ``participants`` (labels), ``files`` (paths written, relative to ``out``) and
        ``trials`` per participant.
    """
    from conform_mosaic import write_subject

    package, out = Path(package), Path(out)
    x = np.asarray(embeddings, dtype=np.float64)
    row_of = {str(name): i for i, name in enumerate(ids)}
    weights = _brain(x, n_units, seed)
    core = _core(package)
    out.mkdir(parents=True, exist_ok=True)
    written: list[str] = []
    trials_of: dict[str, int] = {}
    for number, (label, runs) in enumerate(sorted(_participants(package).items())):
        stimuli, sessions, run_index = [], [], []
        for k, events in enumerate(runs):
            rows = _read_tsv(events)
            shown = [i for i, row in enumerate(rows) if row.get("trial_type") == "stimulus"]
            if deviate and number == 0 and k == 0 and len(shown) >= 2:
                a, b = shown[0], shown[1]
                rows[a]["stimulus_id"], rows[b]["stimulus_id"] = (rows[b]["stimulus_id"],
                                                                  rows[a]["stimulus_id"])
                rows[a]["stim_file"], rows[b]["stim_file"] = rows[b]["stim_file"], rows[a]["stim_file"]
            session = events.parts[-2]
            target = out / label / session / "func" / events.name
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(rows[0]), delimiter="\t",
                                        lineterminator="\n")
                writer.writeheader()
                writer.writerows(rows)
            written.append(target.relative_to(out).as_posix())
            for i in shown:
                stimulus = rows[i]["stimulus_id"]
                if stimulus not in row_of:
                    raise DataFileError(f"{events.name}: stimulus {stimulus!r} is not in the pool "
                                        "given as ids. Pass the study's embeddings and ids.")
                stimuli.append(stimulus)
                sessions.append(int(session.split("-")[1]) - 1)
                run_index.append(k)
        digest = hashlib.sha256(f"{seed}/{label}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(digest[:8], "little"))
        rows = np.array([row_of[s] for s in stimuli])
        betas = np.zeros((rows.size, N_VERTICES), np.float32)  # zeros compress to nothing
        betas[:, _FIRST_UNIT:_FIRST_UNIT + n_units] = (
            x[rows] @ weights + noise * rng.standard_normal((rows.size, n_units)))
        trials = TrialData(betas, np.array(stimuli), sessions=np.array(sessions),
                           runs=np.array(run_index), subject=f"{label}_{code}")
        phases = np.array(["test" if s in core else "train" for s in stimuli])
        path = write_subject(out, trials, phases=phases, metadata=_METADATA, side_tables=False,
                             noise_ceilings=False, overwrite=True)
        written.append(path.relative_to(out).as_posix())
        trials_of[label] = int(rows.size)
    return {"participants": sorted(trials_of), "files": sorted(written), "trials": trials_of}



def cached_toy_dataset(folder: str | os.PathLike[str]) -> RegistryDataset:
    """Return a ``registry`` dataset over the MOSAIC toy subject, cached as if pulled.

    The toy folder (:func:`conform_mosaic.testing.toy_folder`) is written where a pull of
    ``toy@1`` from ``http://127.0.0.1:9`` (a port nothing listens on) would have put it,
    with the marker of a verified pull, so the dataset reads it without a server. Three
    vertices keep the contract kit fast.
    """
    import json

    from conform_mosaic.testing import toy_folder

    from ._dataset_plugin import MARKER, RegistryDataset, cache_folder

    url = "http://127.0.0.1:9"
    local = cache_folder(folder, url, "toy", 1)
    toy_folder(local)
    (local / MARKER).write_text(json.dumps({"url": url, "name": "toy", "version": 1,
                                            "study": None}), encoding="utf-8")
    return RegistryDataset(location=url, name="toy", version=1, cache_dir=str(folder),
                           rois=[1000, 1001, 24576], nan_vertices="keep")
