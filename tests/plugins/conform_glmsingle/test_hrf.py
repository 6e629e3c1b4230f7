"""The HRF library and assumed HRF, regenerated to the official package's exact values."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from conform_glmsingle._hrf import (
    canonical_table,
    library_table,
    official_canonical,
    official_library,
)
from conform_glmsingle._options import resolve_options

#: SHA-256 of the official tables as float64 (little endian), parsed from
#: glmsingle/hrf/getcanonicalhrflibrary.tsv (501 x 20) and gethrf.basichrf (490) at commit
#: 1ab54a6 of cvnlab/GLMsingle. Only the checksums are kept here, not the tables.
LIBRARY_SHA256 = "ebe6855c1715345b0bfd31d251213f9d5de098133f8580f8c326465f0f213576"
CANONICAL_SHA256 = "c2bb6583049537777c2d2d712562a945d78ffefc24ddfa5f585ad49c297c9462"


def _sha(table: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(table, "<f8").tobytes()).hexdigest()


def test_generated_tables_are_the_official_tables():
    """Every one of the 10,020 + 490 rounded values equals the official one, bit for bit."""
    lib, canon = library_table(), canonical_table()
    assert lib.shape == (501, 20) and canon.shape == (490,)
    assert _sha(lib) == LIBRARY_SHA256
    assert _sha(canon) == CANONICAL_SHA256


@pytest.mark.parametrize(("stimdur", "tr", "n"), [(3.0, 1.0, 53), (1.0, 2.0, 26),
                                                  (2.0, 1.5, 35), (0.5, 0.5, 102)])
def test_resampled_library_follows_the_official_sampling(stimdur, tr, n):
    """0, tr, ... < ceil(n_fine * 0.1): (0.5 s, 0.5 s) has the official extra 102nd sample."""
    lib = official_library(stimdur, tr)
    assert lib.shape == (n, 20) and lib.dtype == np.float32
    np.testing.assert_array_equal(lib.max(axis=0), 1.0)
    assert np.argmax(lib[:, 0]) < np.argmax(lib[:, 19])  # fastest first
    canon = official_canonical(stimdur, tr)
    assert canon.dtype == np.float32 and canon.max() == 1.0


def test_library_file_gives_the_same_library(tmp_path):
    """Passing the official TSV (here: the same values written by us) reproduces the default."""
    path = tmp_path / "getcanonicalhrflibrary.tsv"
    np.savetxt(path, library_table(), fmt="%.5g", delimiter="\t")
    default = resolve_options({}, stimdur=3.0, tr=1.0, n_times=[100])
    from_file = resolve_options({"hrflibrary": str(path)}, stimdur=3.0, tr=1.0, n_times=[100])
    np.testing.assert_array_equal(from_file.hrflibrary, default.hrflibrary)
