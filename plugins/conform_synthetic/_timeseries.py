"""Time series: single-trial amplitudes convolved with per-unit HRFs, plus drift and noise.

Each run is built in percent signal change (PSC) and then put on a scanner-like scale::

    bold[u, t] = baseline[u] * (1 + (response[u, t] + drift[u, t] + noise[u, t]) / 100)

``response`` sums, over the run's events, the trial amplitude times the unit's library HRF
(peak 1, so an amplitude is the height of the response in PSC, GLMsingle's convention)
started at the event's onset. ``drift`` is a random polynomial of degree 2 in time
(sd ``drift`` PSC per term); ``noise`` is AR(1) with coefficient 0.3 and sd
``timeseries_noise`` PSC. With ``motion > 0`` the head moves: six motion parameters per run,
from a stream of their own, enter ``psc`` through random loadings and become the runs'
``confounds`` (:mod:`._motion`).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from scipy.signal import fftconvolve, lfilter

from conform_core.data import Events, TimeSeriesData, Units
from conform_core.hrf import hrf_library

from ._design import SubjectDesign
from ._motion import MOTION_NAMES, draw_loadings, draw_motion, motion_psc
from ._params import SimulationParams

__all__ = ["draw_hrf_index", "build_timeseries"]

AR_COEFFICIENT = 0.3


def draw_hrf_index(n_units: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Draw each unit's HRF from the 20-HRF library (central shapes more likely)."""
    weights = np.exp(-0.5 * ((np.arange(20) - 9.5) / 5.0) ** 2)
    return rng.choice(20, size=n_units, p=weights / weights.sum()).astype(np.int64)


def _run_response(amplitudes: NDArray[np.float32], onsets: NDArray[np.int64], n_volumes: int,
                  library: NDArray[np.float32],
                  hrf_index: NDArray[np.int64]) -> NDArray[np.float32]:
    """Units x time response of one run (events at volume ``onsets``)."""
    n_units = amplitudes.shape[1]
    sticks = np.zeros((n_volumes, n_units), np.float32)
    np.add.at(sticks, onsets, amplitudes)
    out = np.empty((n_units, n_volumes), np.float32)
    for h in np.unique(hrf_index):
        cols = np.flatnonzero(hrf_index == h)
        conv = fftconvolve(sticks[:, cols], library[:, h:h + 1], axes=0)[:n_volumes]
        out[cols] = conv.T
    return out


def build_timeseries(params: SimulationParams, design: SubjectDesign,
                     amplitudes: NDArray[np.float32], stimulus_ids: NDArray[np.str_],
                     hrf_index: NDArray[np.int64], units: Units, subject: str,
                     rng: np.random.Generator, *,
                     motion_rng: np.random.Generator | None = None) -> TimeSeriesData:
    """Build the runs of one subject.

    Parameters
    ----------
    params : SimulationParams
    design : SubjectDesign
        Runs, onsets and run lengths.
    amplitudes : ndarray of shape (n_trials, n_units)
        True single-trial amplitudes (PSC), in the design's trial order.
    stimulus_ids : ndarray of shape (n_trials,), dtype str
    hrf_index : ndarray of shape (n_units,)
    units : Units
    subject : str
    rng : numpy.random.Generator
    motion_rng : numpy.random.Generator or None
        The subject's motion stream; needed when ``params.motion > 0`` (unused otherwise).

    Returns
    -------
    TimeSeriesData
        One run per design run, float32, with its events (null slots are not events), and
        with ``motion > 0`` the motion parameters as ``confounds``.
    """
    library = hrf_library(params.stimdur, params.tr)
    n_units = amplitudes.shape[1]
    baseline = (100.0 * np.exp(rng.normal(0.0, 0.2, size=n_units))).astype(np.float32)
    motion: list[NDArray[np.float64]] | None = None
    if params.motion > 0:
        if motion_rng is None:
            raise ValueError("build_timeseries needs motion_rng when params.motion > 0.")
        motion = draw_motion(motion_rng, design.run_volumes)
        loadings = draw_loadings(motion_rng, params.n_units, params.motion)
        if units.indices is not None:
            loadings = loadings[units.indices]
    runs: list[NDArray[np.float32]] = []
    events: list[Events] = []
    for r, n_volumes in enumerate(design.run_volumes.tolist()):
        trials = np.flatnonzero(design.trial_run == r)
        psc = _run_response(amplitudes[trials], design.onsets_volume[trials], n_volumes,
                            library, hrf_index)
        t = np.linspace(-1.0, 1.0, n_volumes, dtype=np.float32)
        poly = np.stack([np.ones_like(t), t, 1.5 * t * t - 0.5])  # Legendre 0..2
        coef = rng.normal(0.0, params.drift, size=(n_units, 3)).astype(np.float32)
        psc += coef @ poly
        white = rng.standard_normal((n_units, n_volumes), dtype=np.float32)
        ar = lfilter([np.sqrt(1 - AR_COEFFICIENT**2)], [1.0, -AR_COEFFICIENT], white, axis=1)
        psc += np.float32(params.timeseries_noise) * ar.astype(np.float32)
        if motion is not None:
            psc += motion_psc(motion[r], loadings)
        runs.append((baseline[:, None] * (1 + psc / 100)).astype(np.float32))
        events.append(Events(onset=design.onsets_volume[trials] * params.tr,
                             duration=np.full(trials.size, params.stimdur),
                             stimulus_ids=stimulus_ids[trials]))
    return TimeSeriesData(runs=runs, events=events, tr=params.tr, sessions=design.run_sessions,
                          subject=subject, units=units, confounds=motion,
                          confound_names=None if motion is None else MOTION_NAMES)
