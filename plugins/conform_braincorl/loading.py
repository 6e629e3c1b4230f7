"""Subject pools from any dataset plugin and any features plugin, test stimuli left out.

:func:`load_subject_pools` loads the named subjects' condition means, leaves out each
subject's test stimuli (the split ``conform fit`` scores on) and, by default, every stimulus
of any subject's test split, embeds the rest with the features component and returns one
:class:`~conform_braincorl.tasks.SubjectPool` per subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ParameterError, ShapeError

from .tasks import SubjectPool

__all__ = ["feature_space_of", "held_out_stimuli", "load_subject_pools"]


def held_out_stimuli(subject: Any, *, split_seed: int = 0, test_fraction: float = 0.2
                     ) -> NDArray[np.str_]:
    """Return the ids of ``subject``'s test stimuli (sorted), as ``conform fit`` holds them out.

    The dataset's own split when it has one; otherwise ``conform fit``'s fallback split
    (:func:`conform_core.analysis.split_stimuli` with ``[analysis] seed = split_seed``;
    conform fit's defaults are 0 and 0.2).
    """
    from conform_core.analysis import split_stimuli

    if subject.trials is not None:
        shown = subject.trials.unique_stimulus_ids()
    else:
        shown = np.unique(subject.timeseries.stimulus_ids())
    test = split_stimuli(subject, shown, seed=split_seed, test_fraction=test_fraction)[1]
    return np.sort(test).astype(str)


@dataclass
class _Loaded:
    """A subject's condition means and stimuli, loaded once."""

    name: str
    means: Any  # ConditionData (units x stimuli)
    stimuli: Any  # StimulusSet
    test_ids: NDArray[np.str_]


def _load(dataset: Any, name: str, rois: Sequence[str], split_seed: int,
          test_fraction: float) -> _Loaded:
    subject = dataset.load_subject(name)
    if subject.trials is None:
        raise ShapeError(
            f"Subject {name!r} has time series but no single trials; meta-training reads "
            "condition means of single trials. Estimate trials first (e.g. `conform glmsingle`) "
            "and train on a dataset that has them.")
    trials = subject.trials
    if rois:
        trials = trials.take_units(trials.units.in_rois(list(rois)))
    return _Loaded(name, trials.mean(), subject.stimuli,
                   held_out_stimuli(subject, split_seed=split_seed, test_fraction=test_fraction))


def load_subject_pools(dataset: Any, features: Any, subjects: Sequence[str], *,
                       exclude: str = "all", rois: Sequence[str] = (), split_seed: int = 0,
                       test_fraction: float = 0.2, all_subjects: Sequence[str] | None = None,
                       ) -> tuple[dict[str, SubjectPool], list[str]]:
    """Load ``subjects`` through any dataset plugin as pools, leaving test stimuli out.

    Parameters
    ----------
    dataset : Dataset
        Any dataset component (``synthetic``, ``mosaic``, a third party's).
    features : Features
        Any features component; fitted on each subject's stimuli.
    subjects : sequence of str
        The subjects to load (training and validation).
    exclude : {"all", "own"}, default="all"
        ``"all"``: leave out every stimulus of any subject's test split (every subject of
        the dataset, ``all_subjects``); ``"own"``: only each subject's own test stimuli.
    rois : sequence of str, default=()
        Keep only the voxels of these ROIs.
    split_seed, test_fraction
        The fallback split of subjects without one (see :func:`held_out_stimuli`).
    all_subjects : sequence of str, optional
        The dataset's subjects whose test splits ``"all"`` leaves out (default: all of
        ``dataset.subjects()``).

    Returns
    -------
    pools : dict of str to SubjectPool
        By subject, in the order of ``subjects``.
    excluded : list of str
        The stimulus ids left out of every pool (sorted). With ``"own"``, the union of the
        subjects' own test stimuli (each pool leaves out its own).
    """
    if exclude not in ("all", "own"):
        raise ParameterError(param="exclude_test_stimuli", value=exclude, owner="[dataset]",
                             allowed="'all' or 'own'",
                             fix="Training on test stimuli would leak them into the scores of "
                                 "`conform fit`; use 'all' (default) or 'own'.")
    loaded = {name: _load(dataset, name, rois, split_seed, test_fraction) for name in subjects}
    excluded = set()
    for item in loaded.values():
        excluded.update(item.test_ids.tolist())
    if exclude == "all":
        for name in (dataset.subjects() if all_subjects is None else all_subjects):
            if name not in loaded:
                subject = dataset.load_subject(name)
                excluded.update(held_out_stimuli(subject, split_seed=split_seed,
                                             test_fraction=test_fraction).tolist())
    pools = {}
    for name, item in loaded.items():
        left_out = excluded if exclude == "all" else set(item.test_ids.tolist())
        ids = item.means.stimulus_ids
        keep = ~np.isin(ids, np.array(sorted(left_out), dtype=str))
        allowed_ids = ids[keep]
        stimuli = item.stimuli.select(allowed_ids)
        x = features.fit(stimuli).transform(stimuli)
        if not np.isfinite(x).all():
            raise ShapeError(
                f"The features of subject {name!r} hold NaN or infinite values. Check the "
                "features plugin's inputs (a missing embedding, a broken image).")
        pools[name] = SubjectPool.from_arrays(name, x, item.means.data[:, keep].T,
                                              stimulus_ids=allowed_ids)
        assert not set(pools[name].stimulus_ids.tolist()) & left_out  # invariant
    return pools, sorted(excluded)


def feature_space_of(features: Any, plugin: str = "") -> str:
    """Return the id of the embedding space of a fitted features component.

    Its ``feature_space_`` (``clip:<model>:<weights sha256>``, ``precomputed``, ...); for a
    plugin that does not report one, ``<plugin>:<fingerprint_>`` when it has a fingerprint,
    else ``""`` (unknown: a checkpoint is then checked by dimension only).
    """
    space = getattr(features, "feature_space_", "")
    if space:
        return str(space)
    fingerprint = getattr(features, "fingerprint_", "")
    return f"{plugin}:{fingerprint}" if plugin and fingerprint else ""
