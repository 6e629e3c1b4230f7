"""peak_memory of psn and gsn against numpy's measured peak (tracemalloc) of fit + transform."""

from __future__ import annotations

import pytest
from conform_psn.components import GSNDenoiser, PSNDenoiser
from threadpoolctl import threadpool_limits

from conform_core.memory import DataSize
from conform_core.testing import measured_peak
from conform_core.testing.fakes import make_condition_trials

# (units, conditions, trials): units^2 terms dominate the first, the data the second
SIZES = [(300, 300, 3), (600, 150, 2)]

COMPONENTS = {
    "auto": lambda: PSNDenoiser(),
    "standard": lambda: PSNDenoiser(preset="standard"),
    "conservative": lambda: PSNDenoiser(preset="conservative"),
    "aggressive": lambda: PSNDenoiser(preset="aggressive"),
    "compare": lambda: PSNDenoiser(preset="compare"),
    "wiener": lambda: PSNDenoiser(preset="wiener"),
    "hybrid": lambda: PSNDenoiser(preset="standard", threshold_method="hybrid"),
    "cv": lambda: PSNDenoiser(preset="cv"),
    "gsn": lambda: GSNDenoiser(),
    "lowrank": lambda: PSNDenoiser(covariance="lowrank", rank=40),
    "lowrank-wiener": lambda: PSNDenoiser(preset="wiener", covariance="lowrank", rank=40),
    "pieces": lambda: PSNDenoiser(max_parcel=16),  # warmed up on 20 units: 2 pieces
    "parcels": lambda: PSNDenoiser(preset="standard", parcels=3, overlap=0.2, n_jobs=2),
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
            # Never under (a budget built on it must hold); over by at most 3x: the formula
            # adds arrays of stages that are not all alive at once, counts float64 and the
            # re-ordering copy of unsorted stimuli (measured 1.1-2.1x on 150-1,600 units).
            assert peak <= predicted <= 3 * peak, (name, units, conditions, peak, predicted)


def test_peak_memory_follows_the_preset():
    size = DataSize(5000, 1000, 3)
    auto = PSNDenoiser(max_parcel=5000).peak_memory(size)  # one exact fit of all units
    standard = PSNDenoiser("standard", max_parcel=5000).peak_memory(size)
    assert auto > standard
    assert PSNDenoiser(basis="compare", max_parcel=5000).peak_memory(size) > standard
    assert PSNDenoiser().peak_memory(size) < auto / 3  # by default in 1,000-unit blocks
    # about 14 dense 5,000 x 5,000 float64 matrices measured for the default: the estimate
    # is above that and within 2x of it
    assert 14 * 8 * 5000**2 < auto < 2 * 14 * 8 * 5000**2
