"""Tiny, deterministic inputs for the contract checks (seconds, not minutes)."""

from __future__ import annotations

import numpy as np

from ..data import ConditionData, ConditionTrials, Events, StimulusSet, TimeSeriesData

__all__ = ["make_condition_trials", "make_subject_conditions", "make_features",
           "make_timeseries", "make_stimuli"]


def make_condition_trials(n_units: int = 12, n_conditions: int = 10, n_trials: int = 3,
                          rank: int = 3, snr: float = 1.0, dtype: type = np.float64,
                          random_state: int = 0) -> ConditionTrials:
    """Low-rank signal plus independent noise, units x conditions x trials."""
    rng = np.random.default_rng(random_state)
    signal = rng.standard_normal((n_units, rank)) @ rng.standard_normal((rank, n_conditions))
    signal /= signal.std() or 1.0
    noise = rng.standard_normal((n_units, n_conditions, n_trials)) / snr
    data: np.ndarray = (signal[:, :, None] + noise).astype(dtype)
    ids = np.array([f"stim{i:03d}" for i in range(n_conditions)])
    return ConditionTrials(data, ids, subject="sub-01")


def make_subject_conditions(n_subjects: int = 3, n_units: int = 10, n_conditions: int = 12,
                            rank: int = 3, random_state: int = 0) -> list[ConditionData]:
    """Several subjects' responses to the same stimuli: shared latent signal, own mixing."""
    rng = np.random.default_rng(random_state)
    latent = rng.standard_normal((rank, n_conditions))
    ids = np.array([f"stim{i:03d}" for i in range(n_conditions)])
    out = []
    for s in range(n_subjects):
        mixing = rng.standard_normal((n_units + s, rank))
        data = mixing @ latent + 0.05 * rng.standard_normal((n_units + s, n_conditions))
        out.append(ConditionData(data, ids, subject=f"sub-{s + 1:02d}"))
    return out


def make_features(n_stimuli: int = 30, n_features: int = 5, n_units: int = 4,
                  random_state: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(X, Y) for an encoder: linear responses plus noise."""
    rng = np.random.default_rng(random_state)
    X = rng.standard_normal((n_stimuli, n_features))
    weights = rng.standard_normal((n_features, n_units))
    Y = X @ weights + 0.1 * rng.standard_normal((n_stimuli, n_units))
    return X, Y


def make_stimuli(n_stimuli: int = 6, n_features: int = 4, random_state: int = 0) -> StimulusSet:
    """Return a StimulusSet with random embeddings and small random PNG images as sources.

    The images live in a temporary folder made once per process (removed at exit), so
    both embedding-based and image-based feature plugins can be checked.
    """
    rng = np.random.default_rng(random_state)
    ids = np.array([f"stim{i:03d}" for i in range(n_stimuli)])
    sources = [str(_fake_image(i, random_state)) for i in range(n_stimuli)]
    return StimulusSet(ids=ids, sources=np.array(sources),
                       embeddings=rng.standard_normal((n_stimuli, n_features)).astype(np.float32))


_IMAGE_DIR: list[str] = []


def _fake_image(index: int, random_state: int) -> str:
    import atexit
    import os
    import shutil
    import tempfile

    from PIL import Image

    if not _IMAGE_DIR:
        folder = tempfile.mkdtemp(prefix="conform-fake-images-")
        atexit.register(shutil.rmtree, folder, True)
        _IMAGE_DIR.append(folder)
    path = os.path.join(_IMAGE_DIR[0], f"img{random_state}_{index:03d}.png")
    if not os.path.exists(path):
        rng = np.random.default_rng([random_state, index])
        pixels = rng.integers(0, 255, (40, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(path)
    return path


def make_timeseries(n_units: int = 8, n_runs: int = 4, n_conditions: int = 6, repeats: int = 2,
                    tr: float = 1.0, stimdur: float = 2.0, random_state: int = 0) -> TimeSeriesData:
    """Return a few short runs in which each condition appears ``repeats`` times overall."""
    from ..hrf import canonical_hrf

    rng = np.random.default_rng(random_state)
    hrf = canonical_hrf(stimdur, tr).astype(np.float64)
    ids = np.array([f"stim{i:03d}" for i in range(n_conditions)])
    order = rng.permutation(np.repeat(np.arange(n_conditions), repeats))
    per_run = np.array_split(order, n_runs)
    amplitude = rng.standard_normal((n_units, n_conditions))
    runs, events = [], []
    for trials in per_run:
        gap = 6.0
        onset = 4.0 + gap * np.arange(len(trials))
        n_time = int(np.ceil((onset[-1] + 20.0) / tr))
        x = np.zeros((n_time, len(trials)))
        x[(onset / tr).astype(int), np.arange(len(trials))] = 1.0
        design = np.stack([np.convolve(x[:, j], hrf)[:n_time] for j in range(x.shape[1])], axis=1)
        y = 100 + (design @ amplitude[:, trials].T).T + rng.standard_normal((n_units, n_time))
        runs.append(y)
        events.append(Events(onset, np.full(len(trials), stimdur), ids[trials]))
    return TimeSeriesData(tuple(runs), tuple(events), tr, subject="sub-01")
