"""check_params of the glmsingle denoiser: bad values fail before any time series is read."""

from __future__ import annotations

import pytest
from conform_glmsingle import GLMsingleDenoiser

from conform_core.exceptions import DataFileError, ParameterError

BAD = [
    ("stimdur", 0), ("stimdur", -1.0), ("stimdur", "3"),
    ("model", "A"), ("model", "E"), ("model", "d"),
    ("wantlibrary", 2), ("wantglmdenoise", "yes"), ("wantfracridge", -1),
    ("n_pcs", -1), ("n_pcs", 2.5), ("n_pcs", "10"),
    ("pcstop", "1.05"), ("pcstop", float("nan")), ("pcstop", -20), ("pcstop", -2.5),
    ("fracs", [0.0, 0.5]), ("fracs", [1.5]), ("fracs", []), ("fracs", "all"),
    ("chunklen", 0), ("chunklen", 1.5),
    ("verbose", "no"),
    ("options", ["brainthresh"]),
]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_bad_value_is_caught_naming_the_parameter(name, value):
    with pytest.raises(ParameterError) as info:
        GLMsingleDenoiser(**{name: value}).check_params()
    assert f"'{name}' parameter of GLMsingleDenoiser" in str(info.value)


BAD_OPTIONS = [
    ({"brainthres": [99, 0.1]}, "Did you mean 'brainthresh'"),
    ({"engine": "fast"}, "'engine' parameter of GLM_single must be one of 'native', 'official'"),
    ({"quirks": "none"}, "'quirks' parameter of GLM_single must be one of 'official', 'fixed'"),
    ({"brainthresh": "high"}, r"'brainthresh' parameter .* must be \[percentile, fraction\]"),
    ({"wantlss": 3}, "'wantlss' parameter .* must be one of 0, 1.*got 3. Use 0 or 1"),
    ({"blas_threads": 0}, r"'blas_threads' .* must be an int in \[1, inf\) or None; got 0"),
    ({"fracs": [0.0, 0.5]}, r"'fracs' .* must be a non-empty list of fractions in \(0, 1\]"),
]


@pytest.mark.parametrize(("options", "pattern"), BAD_OPTIONS, ids=[repr(e) for e, _ in BAD_OPTIONS])
def test_bad_options_are_caught(options, pattern):
    with pytest.raises(ParameterError, match=pattern):
        GLMsingleDenoiser(options=options).check_params()


def test_hrf_files_must_exist(tmp_path):
    with pytest.raises(DataFileError, match=r"'hrf_library' parameter .*no such file"):
        GLMsingleDenoiser(hrf_library=str(tmp_path / "hrfs.tsv")).check_params()
    with pytest.raises(
        ParameterError, match=r"'hrf_library' .*got '/path/to/hrfs\.tsv'\. That is a placeholder"
    ):
        GLMsingleDenoiser(hrf_library="/path/to/hrfs.tsv").check_params()
    with pytest.raises(
        DataFileError, match=r"'hrftoassume' parameter .*hrf\.tsv' \(no such file\)"
    ):
        GLMsingleDenoiser(options={"hrftoassume": str(tmp_path / "hrf.tsv")}).check_params()


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"model": "B", "wantlibrary": 0, "wantglmdenoise": False},
        {"stimdur": 2, "pcstop": -3, "n_pcs": 3, "fracs": [1.0, 0.5]},
        {"options": {"engine": "official", "brainthresh": [99, 0.1]}},
    ],
)
def test_valid_values_pass(params):
    assert GLMsingleDenoiser(**params).check_params() is None


def test_every_option_is_declared_once():
    """The constraint table is the list of GLM_single's options: defaults and ignored names."""
    from conform_glmsingle._options import DEFAULTS, IGNORED, OPTION_CONSTRAINTS

    assert set(OPTION_CONSTRAINTS) == set(DEFAULTS) | set(IGNORED)


BAD_PARAMS = [
    *BAD_OPTIONS,
    ({"pcstop": -4, "n_pcs": 3}, "'pcstop' parameter of GLM_single.*Raise n_pcs to at least 4"),
    ({"pcstop": -1.5}, "'pcstop' parameter of GLM_single.*Pass -K"),
]


@pytest.mark.parametrize(("options", "pattern"), BAD_PARAMS, ids=[repr(e) for e, _ in BAD_PARAMS])
def test_glm_single_checks_its_options_when_built(options, pattern):
    """The drop-in refuses the same options, with the same message, before any data."""
    from conform_glmsingle import GLM_single

    with pytest.raises(ParameterError, match=pattern):
        GLM_single(options)


def test_glm_single_params_must_be_a_dict():
    from conform_glmsingle import GLM_single

    with pytest.raises(ParameterError, match="'params' parameter of GLM_single must be a dict"):
        GLM_single([("n_pcs", 3)])
