"""check_params of the baseline components: every bad value is caught before any data is seen."""

from __future__ import annotations

import numpy as np
import pytest
from conform_baselines import (
    PCADenoiser,
    PrecomputedFeatures,
    RidgeEncoder,
    TrialAverageDenoiser,
)

from conform_core.data import StimulusSet
from conform_core.exceptions import ParameterError, ShapeError
from conform_core.testing.fakes import make_condition_trials, make_features

BAD = [
    (PCADenoiser, "n_components", -3),
    (PCADenoiser, "n_components", "5"),
    (PCADenoiser, "n_components", 2.5),
    (PCADenoiser, "n_components", True),
    (PCADenoiser, "max_components", 0),
    (PCADenoiser, "max_components", "all"),
    (RidgeEncoder, "alphas", []),
    (RidgeEncoder, "alphas", [1.0, -1.0]),
    (RidgeEncoder, "alphas", "big"),
    (RidgeEncoder, "cv", 1),
    (RidgeEncoder, "cv", "kfold"),
    (RidgeEncoder, "cv", 2.5),
    (RidgeEncoder, "fit_intercept", "yes"),
    (RidgeEncoder, "alpha_per_unit", 1),
    (RidgeEncoder, "solver", "primall"),
    (RidgeEncoder, "dtype", "float16"),
    (RidgeEncoder, "n_targets_batch", 0),
    (RidgeEncoder, "random_state", "seed"),
    (RidgeEncoder, "random_state", -1),
    (PrecomputedFeatures, "normalize", "yes"),
]


@pytest.mark.parametrize(("cls", "name", "value"), BAD,
                         ids=[f"{c.__name__}-{n}={v!r}" for c, n, v in BAD])
def test_bad_value_is_caught_naming_the_parameter(cls, name, value):
    with pytest.raises(ParameterError) as info:
        cls(**{name: value}).check_params()
    message = str(info.value)
    assert f"'{name}' parameter of {cls.__name__}" in message
    assert "got " in message


@pytest.mark.parametrize(("cls", "name", "value"), BAD,
                         ids=[f"{c.__name__}-{n}={v!r}" for c, n, v in BAD])
def test_bad_value_error_is_structured(cls, name, value):
    """The error carries the parameter, the value, what is allowed and the owner."""
    with pytest.raises(ParameterError) as info:
        cls(**{name: value}).check_params()
    error = info.value
    assert error.param == name and error.owner == cls.__name__ and error.allowed
    assert error.value is value or error.value == value


@pytest.mark.parametrize("cls", [PCADenoiser, RidgeEncoder,
                                 PrecomputedFeatures])
def test_parameters_are_declared_not_hand_checked(cls):
    """Each parameter is declared, and check_params is the base class's (the engine)."""
    from conform_core.components import Component

    assert sorted(cls._parameter_constraints) == sorted(cls.param_names())
    assert cls.check_params is Component.check_params


@pytest.mark.parametrize("cls", [PCADenoiser, RidgeEncoder,
                                 PrecomputedFeatures, TrialAverageDenoiser])
def test_defaults_pass(cls):
    assert cls().check_params() is None


def test_pca_negative_rank_names_value_and_fix():
    with pytest.raises(ParameterError, match=r"'n_components' parameter of PCADenoiser must be an "
                                             r"int in \[0, inf\) or None; got -3\. Use None"):
        PCADenoiser(n_components=-3).check_params()


def test_fit_runs_check_params_first():
    """A bad value fails in fit with the same message, whatever the data."""
    trials = make_condition_trials(n_units=5, n_conditions=12)
    with pytest.raises(ParameterError, match="'max_components' parameter of PCADenoiser"):
        PCADenoiser(max_components=0).fit(trials)
    X, Y = make_features()
    with pytest.raises(ParameterError, match="'random_state' parameter of RidgeEncoder"):
        RidgeEncoder(random_state="seed").fit(X, Y)


def test_bounds_from_the_data_stay_in_fit():
    PCADenoiser(n_components=500).check_params()
    with pytest.raises(ParameterError, match=r"'n_components' parameter of PCADenoiser must be an "
                                             r"int in \[0, 5\]"):
        PCADenoiser(n_components=500).fit(make_condition_trials(n_units=5, n_conditions=12))


def test_precomputed_check_stimuli_wants_embeddings():
    PrecomputedFeatures().check_stimuli(StimulusSet(ids=["a"], embeddings=np.ones((1, 2))))
    with pytest.raises(ShapeError, match=r"embeddings file, or use features = \"clip\""):
        PrecomputedFeatures().check_stimuli(StimulusSet(ids=["a", "b"]))
