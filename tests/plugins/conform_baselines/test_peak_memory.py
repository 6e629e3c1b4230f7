"""peak_memory of pca and trial-average against numpy's measured peak of fit + transform."""

from __future__ import annotations

import pytest
from conform_baselines.pca import PCADenoiser
from conform_baselines.trial_average import TrialAverageDenoiser
from threadpoolctl import threadpool_limits

from conform_core.memory import DataSize
from conform_core.testing import measured_peak
from conform_core.testing.fakes import make_condition_trials

SIZES = [(300, 300, 3), (600, 150, 2), (500, 400, 4), (200, 1000, 3)]
COMPONENTS = {
    "pca": lambda: PCADenoiser(),
    "pca-fixed": lambda: PCADenoiser(n_components=5),
    "trial-average": lambda: TrialAverageDenoiser(),
}


def _measured_peak(component, data) -> int:
    return measured_peak(lambda: (component.fit(data), component.transform(data)))


@pytest.mark.parametrize("name", list(COMPONENTS))
def test_peak_memory_bounds_the_measured_peak(name):
    with threadpool_limits(1):
        _measured_peak(COMPONENTS[name](), make_condition_trials(20, 30))  # first-use imports
        for units, conditions, trials in SIZES:
            data = make_condition_trials(units, conditions, trials, rank=10, snr=0.5)
            component = COMPONENTS[name]()
            peak = _measured_peak(component, data)
            predicted = component.peak_memory(DataSize(units, conditions, trials))
            # Never under; over by at most 3x: the formula adds temporaries that are not all
            # alive at once (measured 1.15-1.95x here).
            assert peak <= predicted <= 3 * peak, (name, units, conditions, peak, predicted)
