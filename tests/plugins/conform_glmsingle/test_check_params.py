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
    ("extra_options", ["brainthresh"]),
]


@pytest.mark.parametrize(("name", "value"), BAD, ids=[f"{n}={v!r}" for n, v in BAD])
def test_bad_value_is_caught_naming_the_parameter(name, value):
    with pytest.raises(ParameterError) as info:
        GLMsingleDenoiser(**{name: value}).check_params()
    assert f"'{name}' parameter of GLMsingleDenoiser" in str(info.value)


BAD_EXTRA = [
    ({"brainthres": [99, 0.1]}, "Did you mean 'brainthresh'"),
    ({"engine": "fast"}, "engine must be 'native' or 'official'"),
    ({"quirks": "none"}, "quirks must be"),
    ({"brainthresh": "high"}, "brainthresh must be"),
    ({"wantlss": 3}, "wantlss must be 0 or 1"),
    ({"blas_threads": 0}, "blas_threads must be"),
]


@pytest.mark.parametrize(("extra", "pattern"), BAD_EXTRA, ids=[repr(e) for e, _ in BAD_EXTRA])
def test_bad_extra_options_are_caught(extra, pattern):
    with pytest.raises(ParameterError, match=pattern):
        GLMsingleDenoiser(extra_options=extra).check_params()


def test_hrf_files_must_exist(tmp_path):
    with pytest.raises(DataFileError, match=r"'hrf_library' parameter .*no such file"):
        GLMsingleDenoiser(hrf_library=str(tmp_path / "hrfs.tsv")).check_params()
    with pytest.raises(ParameterError, match=r"'hrf_library' .*got '/path/to/hrfs\.tsv'\. That is a placeholder"):
        GLMsingleDenoiser(hrf_library="/path/to/hrfs.tsv").check_params()
    with pytest.raises(DataFileError, match=r"hrf\.tsv' does not exist"):
        GLMsingleDenoiser(extra_options={"hrftoassume": str(tmp_path / "hrf.tsv")}).check_params()


@pytest.mark.parametrize("params", [{}, {"model": "B", "wantlibrary": 0, "wantglmdenoise": False},
                                    {"stimdur": 2, "pcstop": -3, "n_pcs": 3, "fracs": [1.0, 0.5]},
                                    {"extra_options": {"engine": "official",
                                                        "brainthresh": [99, 0.1]}}])
def test_valid_values_pass(params):
    assert GLMsingleDenoiser(**params).check_params() is None
