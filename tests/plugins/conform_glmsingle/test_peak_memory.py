"""GLMsingleDenoiser.peak_memory: the documented formula on the time-series size."""

from __future__ import annotations

import warnings

from conform_glmsingle._memory import predict_peak_bytes
from conform_glmsingle.component import GLMsingleDenoiser
from conform_synthetic import SyntheticDataset
from threadpoolctl import threadpool_limits

from conform_core.memory import DataSize
from conform_core.testing import measured_peak


def test_peak_memory_is_the_formula_with_runs_split_evenly():
    size = DataSize(5000, 100, 3, n_timepoints=900, n_runs=3, n_events=301)
    expected = predict_peak_bytes(5000, [300, 300, 300], [101, 100, 100], chunklen=50000)
    assert GLMsingleDenoiser().peak_memory(size) == expected
    assert GLMsingleDenoiser(model="B").peak_memory(size) == predict_peak_bytes(
        5000, [300] * 3, [101, 100, 100], denoise=False)
    assert GLMsingleDenoiser(wantlibrary=0).peak_memory(size) == predict_peak_bytes(
        5000, [300] * 3, [101, 100, 100], n_hrfs=1)


def test_no_time_series_no_estimate():
    assert GLMsingleDenoiser().peak_memory(DataSize(100, 20, 3)) is None


def _measured_peak(denoiser, runs) -> int:
    return measured_peak(lambda: (denoiser.fit(runs), denoiser.transform(runs)))


def _simulated(n_units: int) -> tuple[SyntheticDataset, str]:
    dataset = SyntheticDataset(n_subjects=1, n_units=n_units, n_stimuli=40, n_repeats=3,
                               timeseries=True, trials_per_run=40, random_state=0)
    return dataset, dataset.subjects()[0]


def test_peak_memory_bounds_a_fit_on_simulated_runs():
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        small, name = _simulated(20)  # first-use imports allocate once
        _measured_peak(GLMsingleDenoiser(stimdur=3.0), small.load_subject(name).timeseries)
        dataset, name = _simulated(400)
        denoiser = GLMsingleDenoiser(stimdur=3.0)
        peak = _measured_peak(denoiser, dataset.load_subject(name).timeseries)
    predicted = denoiser.peak_memory(dataset.data_size(name))
    # Never under; within 3x: the formula also counts the input runs, which were loaded before
    # the measurement started, and the HRF samples of a 1 s TR (32) as 50.
    assert peak <= predicted <= 3 * peak, (peak, predicted)
