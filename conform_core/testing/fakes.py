"""Tiny, deterministic inputs for the contract checks (seconds, not minutes)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..data import ConditionData, ConditionTrials, Events, StimulusSet, TimeSeriesData, Units

__all__ = ["make_condition_trials", "make_subject_conditions", "make_subject_stimuli",
           "make_features", "make_timeseries", "make_stimuli"]


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
                            rank: int = 3, random_state: int = 0, *,
                            unit_counts: Sequence[int] | None = None,
                            n_shared: int | None = None, n_features: int = 0,
                            roi: bool = False) -> list[ConditionData]:
    """Several subjects' responses: a shared latent signal, each subject's own mixing.

    Parameters
    ----------
    n_subjects, n_units, n_conditions, rank, random_state : int
        Subject ``s`` has ``n_units + s`` units (so counts differ) and sees ``n_conditions``
        stimuli; the latent signal has ``rank`` dimensions.
    unit_counts : sequence of int or None, default=None
        Each subject's number of units instead (one per subject).
    n_shared : int or None, default=None
        None: every subject sees the same ``n_conditions`` stimuli. An int: the first
        ``n_shared`` stimuli are seen by all, the other ``n_conditions - n_shared`` of each
        subject by it alone (0: no stimulus in common, the unpaired case). The ids are those
        of :func:`make_subject_stimuli` with the same arguments.
    n_features : int, default=0
        > 0: the latent signal is a linear function of the stimuli's embeddings (those of
        :func:`make_subject_stimuli`), so an encoder can predict it.
    roi : bool, default=False
        Give the units ROI labels: the first half ``"A"``, the rest ``"B"``.

    Returns
    -------
    list of ConditionData
        Subjects ``sub-01``, ``sub-02``, ... With every option at its default, the same data
        as always.
    """
    rng = np.random.default_rng(random_state)
    ids = _stimulus_ids(n_subjects, n_conditions, n_shared)
    if n_features > 0:
        embeddings = np.asarray(make_subject_stimuli(
            n_subjects, n_conditions, n_shared=n_shared, n_features=n_features,
            random_state=random_state).embeddings, dtype=np.float64)
        weights = np.random.default_rng([random_state, 2]).standard_normal((rank, n_features))
        latent = weights @ embeddings.T / np.sqrt(n_features)
    else:
        latent = rng.standard_normal((rank, ids.size))
    counts = list(unit_counts) if unit_counts is not None else [
        n_units + s for s in range(n_subjects)]
    if len(counts) != n_subjects:
        raise ValueError(f"unit_counts needs {n_subjects} counts; got {len(counts)}.")
    out = []
    for s in range(n_subjects):
        seen = _seen_by(s, n_subjects, n_conditions, n_shared)
        mixing = rng.standard_normal((counts[s], rank))
        data = mixing @ latent[:, seen] + 0.05 * rng.standard_normal((counts[s], seen.size))
        units = Units.default(counts[s])
        if roi:
            labels = np.where(np.arange(counts[s]) < counts[s] // 2, "A", "B")
            units = Units(ids=units.ids, roi=labels)
        out.append(ConditionData(data, ids[seen], subject=f"sub-{s + 1:02d}", units=units))
    return out


def make_subject_stimuli(n_subjects: int = 3, n_conditions: int = 12, *,
                         n_shared: int | None = None, n_features: int = 4,
                         random_state: int = 0) -> StimulusSet:
    """Return the stimuli of :func:`make_subject_conditions` (same arguments), with embeddings.

    Returns
    -------
    StimulusSet
        Every stimulus any subject saw, with ``n_features`` random embeddings each.
    """
    ids = _stimulus_ids(n_subjects, n_conditions, n_shared)
    rng = np.random.default_rng([random_state, 1])
    return StimulusSet(ids=ids, embeddings=rng.standard_normal((ids.size, n_features))
                       .astype(np.float32))


def _stimulus_ids(n_subjects: int, n_conditions: int, n_shared: int | None) -> np.ndarray:
    if n_shared is not None and not 0 <= n_shared <= n_conditions:
        raise ValueError(f"n_shared must be in [0, n_conditions={n_conditions}]; got {n_shared}.")
    total = n_conditions if n_shared is None else n_shared + n_subjects * (n_conditions - n_shared)
    return np.array([f"stim{i:03d}" for i in range(total)])


def _seen_by(s: int, n_subjects: int, n_conditions: int, n_shared: int | None) -> np.ndarray:
    if n_shared is None:
        return np.arange(n_conditions)
    own = n_conditions - n_shared
    return np.concatenate([np.arange(n_shared), n_shared + s * own + np.arange(own)])


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
