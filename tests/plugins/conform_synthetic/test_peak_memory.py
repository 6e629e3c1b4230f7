"""data_size of the synthetic datasets: the sizes of the subjects, known without simulating."""

from __future__ import annotations

import pytest
from conform_synthetic import SyntheticDataset, write_study
from conform_synthetic.dataset import SimulatedFolderDataset

from conform_core.exceptions import ParameterError


def _loaded(dataset, name):
    subject = dataset.load_subject(name)
    trials, series = subject.trials, subject.timeseries
    runs = None if series is None else (sum(r.shape[1] for r in series.runs), len(series.runs),
                                        sum(len(e.onset) for e in series.events))
    return trials.n_units, len(set(trials.stimulus_ids.tolist())), runs


SETTINGS = [
    {"n_subjects": 2, "n_units": 20, "n_stimuli": 30, "n_shared": 10},
    {"n_subjects": 3, "n_units": 30, "n_stimuli": 40, "stimuli_per_subject": 5,
     "unit_dropout": 0.2, "missing_fraction": 0.1, "timeseries": True},
    {"n_subjects": 2, "n_units": 10, "n_stimuli": 47, "n_repeats": 2, "timeseries": True,
     "trials_per_run": 20, "tr": 1.5},
    {"n_subjects": 2, "n_units": 10, "n_stimuli": 50, "timeseries": True, "n_runs": 3},
]


@pytest.mark.parametrize("settings", SETTINGS)
def test_in_memory_sizes_match_the_simulated_subjects(settings):
    dataset = SyntheticDataset(**settings)
    for name in dataset.subjects():
        size = dataset.data_size(name)
        units, conditions, runs = _loaded(dataset, name)
        assert size.n_units >= units  # dropout only removes units
        assert size.n_units == settings["n_units"]
        assert size.n_conditions == conditions
        assert size.n_trials == settings.get("n_repeats", 3)
        if runs is None:
            assert (size.n_timepoints, size.n_runs, size.n_events) == (0, 0, 0)
        else:
            assert (size.n_timepoints, size.n_runs) == runs[:2]
            assert size.n_events >= runs[2]  # planned trials, before missing ones are dropped


def test_folder_sizes_come_from_study_json(tmp_path):
    settings = SETTINGS[1]
    write_study(tmp_path / "study", SyntheticDataset(**settings).simulation_params())
    folder = SimulatedFolderDataset(location=str(tmp_path / "study"))
    for name in folder.subjects():
        size = folder.data_size(name)
        units, conditions, runs = _loaded(folder, name)
        assert (size.n_units, size.n_conditions) == (units, conditions)
        assert (size.n_timepoints, size.n_runs) == runs[:2]
    assert SyntheticDataset(location=str(tmp_path / "study")).data_size("sub-01") == \
        folder.data_size("sub-01")


def test_an_unknown_subject_is_refused():
    with pytest.raises(ParameterError, match="sub-09"):
        SyntheticDataset(n_subjects=2).data_size("sub-09")
