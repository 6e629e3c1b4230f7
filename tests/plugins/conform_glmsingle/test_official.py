"""engine="official": the wrapper around the official glmsingle package, against the native engine.

The official package (cvnlab/GLMsingle) is never a dependency of conform; these tests run only
where a developer installed it (e.g. in a scratch virtualenv: ``pip install --no-deps
<GLMsingle checkout>`` plus ``fracridge``) and skip elsewhere, including CI. The official fit
takes seconds even on this tiny study (hundreds of design rebuilds), so it is fitted once per
module.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from conform_glmsingle import GLM_single, GLMsingleDenoiser
from conform_glmsingle._official import official_available

from conform_core.exceptions import ParameterError

from .conftest import small_study
from .test_component import _timeseries

pytestmark = pytest.mark.skipif(
    not official_available(),
    reason="the official glmsingle package is not importable (not a conform dependency; install "
           "it from github.com/cvnlab/GLMsingle in a scratch environment to run these checks)",
)

PARAMS = {"verbose": False, "n_pcs": 3, "fracs": [1.0, 0.6, 0.3]}


@pytest.fixture(scope="module")
def study():
    return small_study(0, n_units=30, n_runs=3, n_time=100, n_cond=12)


@pytest.fixture(scope="module")
def both(study, tmp_path_factory):
    """(native results, official results, official GLM_single, its outputdir)."""
    args = (study["design"], study["runs"], study["stimdur"], study["tr"])
    native = GLM_single(dict(PARAMS)).fit(*args)
    outdir = tmp_path_factory.mktemp("official_out")
    (outdir / "keep.txt").write_text("not ours")
    glm = GLM_single(dict(PARAMS, engine="official", blas_threads=1))
    np.random.seed(123)
    state = np.random.get_state()
    cwd = os.listdir(".")
    official = glm.fit(*args, outputdir=outdir)
    assert np.array_equal(np.random.get_state()[1], state[1]), "caller's RNG state not restored"
    assert os.listdir(".") == cwd, "the official fit left files in the working directory"
    return native, official, glm, outdir


def _unit_rel(ours, theirs):
    a = np.asarray(ours, np.float64).reshape(np.shape(theirs)[0], -1)
    b = np.asarray(theirs, np.float64).reshape(a.shape[0], -1)
    return np.abs(a - b).max(axis=1) / np.abs(b).max(axis=1)


def test_official_engine_agrees_with_native(both):
    native, official, glm, _ = both
    assert set(official) == set(native) == {"typea", "typeb", "typec", "typed"}
    for key in native:
        for name, val in native[key].items():
            assert np.shape(official[key][name]) == np.shape(val), (key, name)
    np.testing.assert_array_equal(official["typeb"]["HRFindex"], native["typeb"]["HRFindex"])
    assert int(official["typec"]["pcnum"]) == int(native["typec"]["pcnum"])
    np.testing.assert_array_equal(official["typed"]["FRACvalue"], native["typed"]["FRACvalue"])
    np.testing.assert_array_equal(official["typec"]["noisepool"], native["typec"]["noisepool"])
    # same HRFs (conform_glmsingle._hrf); float32 (official) vs float64: ~1e-5 observed
    for key in ("typeb", "typec", "typed"):
        assert _unit_rel(native[key]["betasmd"], official[key]["betasmd"]).max() < 1e-4, key
    np.testing.assert_allclose(native["typea"]["meanvol"], official["typea"]["meanvol"], rtol=1e-5)
    assert set(glm.timings_) == {"total"} and glm.official_version_


def test_official_engine_copies_files_without_deleting(both):
    _, _, glm, outdir = both
    names = sorted(p.name for p in outdir.iterdir())
    assert "keep.txt" in names and (outdir / "keep.txt").read_text() == "not ours"
    for stem in ("DESIGNINFO", "TYPEA_ONOFF", "TYPEB_FITHRF", "TYPEC_FITHRF_GLMDENOISE",
                 "TYPED_FITHRF_GLMDENOISE_RR"):
        assert f"{stem}.npy" in names
    assert sorted(glm.written_) == sorted(p for p in outdir.iterdir() if p.name != "keep.txt")


def test_official_engine_wantlibrary0_type_d_only(study):
    """Pitfall 5: the wrapper requests type B internally, then drops it again."""
    params = dict(PARAMS, wantlibrary=0, wantglmdenoise=0, wantmemoryoutputs=[0, 0, 0, 1],
                  engine="official")
    args = (study["design"], study["runs"], study["stimdur"], study["tr"])
    official = GLM_single(params).fit(*args)
    assert set(official) == {"typed"}
    assert np.abs(official["typed"]["betasmd"]).max() > 0  # not the all-zero official bug
    native = GLM_single(dict(params, engine="native")).fit(*args)
    assert _unit_rel(native["typed"]["betasmd"], official["typed"]["betasmd"]).max() < 1e-3


def test_official_engine_refuses_brainexclude(study):
    exclude = np.zeros(30, bool)
    exclude[:5] = True
    params = dict(PARAMS, engine="official", brainexclude=exclude)
    with pytest.raises(ParameterError, match="brainexclude"):
        GLM_single(params).fit(study["design"], study["runs"], study["stimdur"], study["tr"])


def test_component_official_engine_matches_native(study):
    ts = _timeseries(study)
    kw = {"n_pcs": 3, "fracs": [1.0, 0.6, 0.3]}
    native = GLMsingleDenoiser(**kw).fit(ts)
    official = GLMsingleDenoiser(**kw, options={"engine": "official"}).fit(ts)
    a, b = native.transform(ts), official.transform(ts)
    assert b.betas.shape == a.betas.shape == (36, 30)
    np.testing.assert_array_equal(b.stimulus_ids, a.stimulus_ids)
    np.testing.assert_array_equal(official.hrf_index_, native.hrf_index_)
    assert official.pcnum_ == native.pcnum_
    assert _unit_rel(a.betas.T, b.betas.T).max() < 1e-3
    # other runs: refit natively with the official fit's choices
    other = _timeseries(study, runs=[r + np.float32(1.0) for r in study["runs"]])
    assert np.all(np.isfinite(official.transform(other).betas))


def test_runwise_fir_matches_official_file(both, study, tmp_path):
    """Native RUNWISEFIR.npy against the one the official fit wrote (same study, same options)."""
    _, _, _, outdir = both
    GLM_single(dict(PARAMS)).fit(study["design"], study["runs"], study["stimdur"], study["tr"],
                                 outputdir=tmp_path)
    ours = np.load(tmp_path / "RUNWISEFIR.npy", allow_pickle=True).item()
    theirs = np.load(outdir / "RUNWISEFIR.npy", allow_pickle=True).item()
    for key in ("firR2", "firtcs", "firavg", "firgrandavg"):
        assert np.shape(ours[key]) == np.shape(theirs[key]), key
    np.testing.assert_allclose(ours["firR2"], theirs["firR2"], atol=1e-3)  # R² in percent
    scale = np.abs(theirs["firtcs"]).max()
    np.testing.assert_allclose(ours["firtcs"], theirs["firtcs"], atol=1e-5 * scale)
    np.testing.assert_allclose(ours["firgrandavg"], theirs["firgrandavg"],
                               atol=1e-5 * np.abs(theirs["firgrandavg"]).max())
