"""ParameterError: structured (parameter, value, allowed, fix, owner), rendered for Python or a CLI."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from conform_core.exceptions import ConformError, ParameterError


def test_structured_error_follows_the_template():
    error = ParameterError(param="n_components", value=-3, owner="PCADenoiser",
                           allowed="an int in [0, inf) or None",
                           fix="Use None to choose the rank by cross-validation.")
    assert str(error) == ("The 'n_components' parameter of PCADenoiser must be an int in "
                          "[0, inf) or None; got -3. Use None to choose the rank by "
                          "cross-validation.")
    assert (error.param, error.value, error.owner) == ("n_components", -3, "PCADenoiser")
    assert error.structured and isinstance(error, (ConformError, ValueError))
    assert error.args == (str(error),)


def test_plain_message_is_kept_as_it_is():
    """Older raise sites pass a message; it prints unchanged, $ included."""
    error = ParameterError("The price is $x or $$y.")
    assert str(error) == "The price is $x or $$y." and not error.structured
    assert error.param is None and error.value is ParameterError.UNSET
    with pytest.raises(TypeError):
        ParameterError()


def test_owner_may_be_an_instance_and_arrays_are_described():
    class Thing:
        pass

    error = ParameterError(param="w", value=np.zeros((3, 2)), owner=Thing(), allowed="1-D")
    assert str(error) == ("The 'w' parameter of Thing must be 1-D; got array of shape (3, 2) "
                          "and dtype float64.")


def test_render_spells_parameters_with_the_given_flags():
    error = ParameterError(param="n_shared", value=20, owner="simulate_study",
                           allowed="at most $n_stimuli=10",
                           fix="Lower $n_shared or raise $n_stimuli ($$5 each).")
    assert str(error) == ("The 'n_shared' parameter of simulate_study must be at most "
                          "n_stimuli=10; got 20. Lower n_shared or raise n_stimuli ($5 each).")
    flags = {"n_shared": "--shared", "n_stimuli": "--stimuli"}
    assert error.render(flags) == ("The --shared option must be at most --stimuli=10; got 20. "
                                   "Lower --shared or raise --stimuli ($5 each).")
    assert error.render({}) == str(error)


def test_message_template_replaces_the_standard_sentence():
    error = ParameterError("$core=300 is larger than the pool of 200 images.", param="core",
                           value=300, fix="Lower $core.")
    assert str(error) == "core=300 is larger than the pool of 200 images. Lower core."
    assert error.render({"core": "--core"}) == ("--core=300 is larger than the pool of 200 "
                                                "images. Lower --core.")


def test_upper_case_dollar_words_are_left_alone():
    """Environment variables in a fix are not parameter names."""
    error = ParameterError(param="location", value="x", allowed="a folder",
                           fix="None reads $CONFORM_MOSAIC_DIR.")
    assert str(error).endswith("None reads $CONFORM_MOSAIC_DIR.")


def test_quote_protects_user_text():
    path = "/home/$user/data"
    error = ParameterError(f"{ParameterError.quote(path)} is not $location.", param="location")
    assert str(error) == "/home/$user/data is not location."


def test_pickling_keeps_the_structure():
    """Errors travel through Dask workers intact, even with an unpicklable value."""
    error = ParameterError(param="cv", value="lo", owner="RidgeEncoder", allowed="'loo'",
                           fix="Use $cv='loo'.")
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is ParameterError and back.param == "cv" and str(back) == str(error)
    assert back.render({"cv": "--cv"}).endswith("Use --cv='loo'.")
    odd = ParameterError(param="f", value=lambda x: x, allowed="an int")
    back = pickle.loads(pickle.dumps(odd))
    assert back.param == "f" and "<function" in str(back)
