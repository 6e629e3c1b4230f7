"""SimulationParams: the one place the simulator's settings are written, checked when made.

simulate_study's signature and docstring are derived from it here; the dataset's parameters
and the command's options are checked in test_dataset.py and test_cli.py.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest
from conform_synthetic import SimulationParams, simulate_study

from conform_core.exceptions import ParameterError


def test_every_setting_has_a_help_text_a_type_and_a_constraint() -> None:
    types = SimulationParams.types()
    for name in SimulationParams.names():
        assert SimulationParams.help(name).endswith("."), name
        assert types[name] in (int, float, bool, int | None, float | None), name
        assert name in SimulationParams._parameter_constraints, name


def test_help_of_an_unknown_setting_lists_the_settings() -> None:
    with pytest.raises(KeyError, match="'n_unit' is not a setting of SimulationParams; "
                                       "settings: n_subjects, n_units"):
        SimulationParams.help("n_unit")


def test_none_defaults_are_resolved_so_the_record_reproduces_its_study() -> None:
    params = SimulationParams(n_stimuli=31, random_state=None)
    assert params.n_shared == 10 and isinstance(params.random_state, int)
    assert SimulationParams(**params.as_dict()) == params
    assert SimulationParams().n_shared == 40  # a third of the default 120 stimuli


def test_the_record_is_checked_when_made_and_when_replaced() -> None:
    with pytest.raises(ParameterError, match="'n_units' parameter of simulate_study"):
        SimulationParams(n_units=0)
    with pytest.raises(ParameterError, match="'timeseries' parameter of simulate_study"):
        SimulationParams(timeseries="yes")
    with pytest.raises(ParameterError, match="Lower n_shared or raise n_stimuli"):
        dataclasses.replace(SimulationParams(), n_stimuli=20, n_shared=30)
    assert SimulationParams.from_kwargs(n_units=5) == SimulationParams(n_units=5)


def test_simulate_study_signature_is_derived_from_the_fields() -> None:
    parameters = inspect.signature(simulate_study).parameters
    assert list(parameters) == SimulationParams.names()
    assert {k: p.default for k, p in parameters.items()} == SimulationParams.defaults()
    kinds = [p.kind for p in parameters.values()]
    assert kinds[:3] == [inspect.Parameter.POSITIONAL_OR_KEYWORD] * 3
    assert set(kinds[3:]) == {inspect.Parameter.KEYWORD_ONLY}


def test_simulate_study_docstring_documents_every_setting() -> None:
    doc = inspect.getdoc(simulate_study)
    for name in SimulationParams.names():
        assert f"\n{name} : " in doc, name
    assert "{parameters}" not in doc and "Returns\n-------" in doc


def test_simulate_study_takes_sizes_by_position_and_refuses_unknown_keywords() -> None:
    a = simulate_study(1, 8, 12, n_repeats=2)
    b = simulate_study(n_subjects=1, n_units=8, n_stimuli=12, n_repeats=2)
    np.testing.assert_array_equal(a.subjects[0].trials.betas, b.subjects[0].trials.betas)
    with pytest.raises(TypeError, match="n_unit"):
        simulate_study(n_unit=8)
    with pytest.raises(TypeError):
        simulate_study(1, 8, 12, 4)  # only the three sizes may be positional


def test_numpydoc_entries_give_type_and_default() -> None:
    doc = SimulationParams.numpydoc()
    assert "n_shared : int or None, default=None\n    Stimuli every subject sees" in doc
    assert "snr : float, default=1.0\n" in doc
    assert "Parameters\n----------\nn_subjects : int, default=3" in inspect.getdoc(SimulationParams)
