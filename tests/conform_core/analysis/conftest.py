"""A simulated dataset whose units carry ids, vertex indices and ROI labels of their own,
with three units whose held-out noise ceiling is 0 for a known reason each."""

from __future__ import annotations

import dataclasses
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conform_synthetic.dataset import SyntheticDataset

from conform_core.components import Dataset
from conform_core.data import Subject, TrialData, Units
from conform_core.registry import ComponentRegistry

ROI_CYCLE = ("V1", "V2", "")
"""ROI label of unit i is ROI_CYCLE[i % 3] ("" = no label)."""

ZERO_NOISE, NO_SIGNAL, FEW_REPEATS = 0, 1, 2
"""Units whose noise ceiling is 0: constant; repeats that average to 0 for every stimulus;
one measured trial per test stimulus."""


def toy_units(n_units: int) -> Units:
    """Ids and vertex indices that differ from positions (indices run backwards)."""
    indices = 5000 - 7 * np.arange(n_units)
    return Units(ids=np.array([f"vtx{i:05d}" for i in indices]), space="toy-surface",
                 indices=indices, roi=np.array([ROI_CYCLE[i % 3] for i in range(n_units)]))


class RoiToyDataset(SyntheticDataset):
    """SyntheticDataset with labelled units and three zero-ceiling units (no ground truth)."""

    def roi_labels(self) -> list[str]:
        """The labels of :func:`toy_units`."""
        return sorted(label for label in ROI_CYCLE if label)

    def _load_subject(self, name: str) -> Subject:
        subject = super()._load_subject(name)
        trials = subject.trials
        assert trials is not None
        betas = np.array(trials.betas, dtype=np.float64)
        stimuli = trials.stimulus_ids
        betas[:, ZERO_NOISE] = 1.5
        repeat = np.zeros(stimuli.size)
        count = np.zeros(stimuli.size)
        for sid in np.unique(stimuli):
            where = np.flatnonzero(stimuli == sid)
            repeat[where] = np.arange(where.size)
            count[where] = where.size
        betas[:, NO_SIGNAL] = repeat - (count - 1) / 2  # each stimulus' repeats average to 0
        later_test = np.isin(stimuli, subject.test_ids) & (repeat > 0)
        betas[later_test, FEW_REPEATS] = np.nan
        trials = TrialData(
            betas=betas,
            stimulus_ids=stimuli,
            sessions=trials.sessions,
            runs=trials.runs,
            subject=trials.subject,
            units=toy_units(trials.n_units),
        )
        return dataclasses.replace(subject, trials=trials, truth=None)


SPEC = """
denoiser = ["trial-average", "pca"]
aligner = ["procrustes"]
encoder = ["ridge"]
features = "precomputed"

[analysis]
name = "roi-toy"
seed = 0

[dataset]
plugin = "roi-toy"

[dataset.params]
n_subjects = 3
n_units = 12
n_stimuli = 60
n_shared = 30
snr = 2.0

[evaluation]
metrics = ["pearson_r", "r2", "nc_r2"]
"""


@pytest.fixture(scope="module")
def roi_toy() -> Iterator[str]:
    """Register RoiToyDataset as dataset 'roi-toy' in the process-wide registry, then forget it."""
    from conform_core.plugins import default_registry, reset_default_registry

    reset_default_registry()
    default_registry().add("dataset", "roi-toy", RoiToyDataset)
    try:
        yield "roi-toy"
    finally:
        reset_default_registry()


@pytest.fixture(scope="module")
def roi_toy_spec(roi_toy: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a spec over the 'roi-toy' dataset (two denoisers, procrustes, ridge)."""
    path = tmp_path_factory.mktemp("roi-toy") / "roi-toy.toml"
    path.write_text(textwrap.dedent(SPEC))
    return path


@pytest.fixture(scope="module")
def roi_toy_facts() -> SimpleNamespace:
    """What the tests may rely on about 'roi-toy': its units and its zero-ceiling unit positions."""
    return SimpleNamespace(
        units=toy_units,
        dataset=RoiToyDataset,
        zero_noise=ZERO_NOISE,
        no_signal=NO_SIGNAL,
        few_repeats=FEW_REPEATS,
    )


@pytest.fixture
def registry_with() -> Callable[..., ComponentRegistry]:
    """A new registry holding the installed components plus the given datasets.

    ``registry_with(name=DatasetClass, ...)``; the process-wide registry is not touched.
    """
    from conform_core.plugins import default_registry

    def make(**datasets: type[Dataset]) -> ComponentRegistry:
        registry = ComponentRegistry()
        for entry in default_registry().entries():
            registry.add(entry.kind, entry.name, entry.cls)
        for name, cls in datasets.items():
            registry.add("dataset", name, cls)
        return registry

    return make
