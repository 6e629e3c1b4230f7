"""The drop-in GLM_single: bad input, output files, shapes, chunking, options."""

from __future__ import annotations

import numpy as np
import pytest
from conform_glmsingle import GLM_single

from conform_core.exceptions import ParameterError, ShapeError

from .conftest import small_study

QUICK = {"verbose": False, "n_pcs": 3, "fracs": [1.0, 0.6, 0.3]}


@pytest.fixture(scope="module")
def study():
    return small_study(0, n_units=40)


def _fit(study, params=None, **kw):
    p = dict(QUICK)
    p.update(params or {})
    return GLM_single(p).fit(study["design"], study["runs"], study["stimdur"], study["tr"], **kw)


def test_run_count_mismatch_names_both_counts(study):
    with pytest.raises(ShapeError, match=r"design has 3 run\(s\) but data has 4"):
        GLM_single(QUICK).fit(study["design"][:3], study["runs"], 3.0, 1.0)


def test_run_length_mismatch_names_the_run(study):
    runs = list(study["runs"])
    runs[2] = runs[2][:, :-5]
    with pytest.raises(
        ShapeError, match=r"Run 2: design has 150 time points but data has 145.*Trim"
    ):
        GLM_single(QUICK).fit(study["design"], runs, 3.0, 1.0)


def test_condition_never_presented(study):
    design = [np.c_[d, np.zeros(d.shape[0])] for d in study["design"]]
    with pytest.raises(
        ShapeError, match=r"Condition\(s\) \[20\] never occur.*Remove those columns"
    ):
        GLM_single(QUICK).fit(design, study["runs"], 3.0, 1.0)


def test_non_finite_data_names_the_run(study):
    runs = [r.copy() for r in study["runs"]]
    runs[3][5, 7] = np.nan
    with pytest.raises(
        ShapeError, match=r"data\[3\] \(run 3\) has 1 NaN/Inf value\(s\), first in unit 5"
    ):
        GLM_single(QUICK).fit(study["design"], runs, 3.0, 1.0)


@pytest.mark.parametrize(
    ("stimdur", "tr", "text"),
    [
        (3.0, 0.0, "tr must be the sampling interval"),
        (3.0, float("nan"), "tr must be the sampling interval"),
        (-1.0, 1.0, "stimdur must be >= 0 s"),
        (1000.0, 1.0, "shorter than the shortest run"),
    ],
)
def test_nonsense_timing(study, stimdur, tr, text):
    with pytest.raises(ParameterError, match=text):
        GLM_single(QUICK).fit(study["design"], study["runs"], stimdur, tr)


def test_too_few_runs_for_crossvalidation_with_fixed_quirks(study):
    """quirks="fixed" refuses; "official" switches C and D off (test_quirks.py)."""
    with pytest.raises(ParameterError, match="needs at least 2 runs.*wantglmdenoise=0"):
        GLM_single({**QUICK, "quirks": "fixed"}).fit(study["design"][:1], study["runs"][:1],
                                                     3.0, 1.0)


def test_no_repeats_across_runs_with_fixed_quirks(study):
    d0 = study["design"][0]
    two = [np.c_[d0, np.zeros_like(d0)], np.c_[np.zeros_like(d0), d0]]
    with pytest.raises(ParameterError, match="no condition occurs in more than one run"):
        GLM_single({**QUICK, "quirks": "fixed"}).fit(two, study["runs"][:2], 3.0, 1.0)


def test_hrf_library_of_wrong_shape(study):
    with pytest.raises(ShapeError, match="hrflibrary must be a time x HRFs array"):
        _fit(study, {"hrflibrary": np.ones((1, 20))})
    with pytest.raises(ShapeError, match="HRFs x time"):
        _fit(study, {"hrflibrary": -np.ones((20, 53))})


def test_unknown_option_suggests(study):
    with pytest.raises(ParameterError, match="Did you mean 'wantlibrary'"):
        GLM_single({"wantlibary": 0})


def test_bad_input_writes_nothing(study, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(ShapeError):
        GLM_single(QUICK).fit(study["design"][:3], study["runs"], 3.0, 1.0, outputdir=out)
    assert not out.exists()


def test_outputdir_is_never_emptied(study, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mine.txt").write_text("keep me")
    _fit(study, outputdir=out)
    assert (out / "mine.txt").read_text() == "keep me"
    d = np.load(out / "TYPED_FITHRF_GLMDENOISE_RR.npy", allow_pickle=True).item()
    assert d["betasmd"].shape == (40, 1, 1, 80)
    assert {
        "DESIGNINFO.npy",
        "TYPEA_ONOFF.npy",
        "TYPEB_FITHRF.npy",
        "TYPEC_FITHRF_GLMDENOISE.npy",
    } <= {p.name for p in out.iterdir()}


def test_hdf5_outputs(study, tmp_path):
    import h5py

    _fit(study, {"wanthdf5": 1, "wantfileoutputs": [0, 0, 0, 1]}, outputdir=tmp_path)
    with h5py.File(tmp_path / "TYPED_FITHRF_GLMDENOISE_RR.hdf5") as f:
        assert f["betasmd"].shape == (40, 1, 1, 80)


def test_volume_input_keeps_its_shape(study):
    runs = [r.reshape(4, 5, 2, -1) for r in study["runs"]]
    res = GLM_single(dict(QUICK)).fit(study["design"], runs, 3.0, 1.0)
    assert res["typed"]["betasmd"].shape == (4, 5, 2, 80)
    assert res["typeb"]["HRFindex"].shape == (4, 5, 2)


def test_three_dimensional_runs_are_refused(study):
    runs = [r.reshape(8, 5, -1) for r in study["runs"]]
    with pytest.raises(ShapeError, match=r"3-D runs are ambiguous.*data\[\.\.\., None, :\]"):
        GLM_single(QUICK).fit(study["design"], runs, 3.0, 1.0)


def test_results_do_not_depend_on_chunking(study):
    a = _fit(study)
    b = _fit(study, {"chunklen": 7})
    for key in ("typeb", "typed"):
        np.testing.assert_allclose(a[key]["betasmd"], b[key]["betasmd"], rtol=1e-5, atol=1e-6)
    assert a["typed"]["pcnum"] == b["typed"]["pcnum"]


def test_memory_outputs_select_types(study):
    res = _fit(study, {"wantmemoryoutputs": [0, 0, 0, 1]})
    assert set(res) == {"typed"}
    assert set(res["typed"]) >= {
        "betasmd",
        "R2",
        "HRFindex",
        "FRACvalue",
        "pcnum",
        "noisepool",
        "scaleoffset",
        "rrbadness",
        "meanvol",
    }


def test_wantlibrary_zero_without_type_b(study):
    """Official pitfall 5 (C/D zeros or crash) does not happen here."""
    res = _fit(study, {"wantlibrary": 0, "wantmemoryoutputs": [0, 0, 0, 1]})
    assert np.all(res["typed"]["HRFindex"] == 0)
    assert np.abs(res["typed"]["betasmd"]).max() > 0


def test_lss_and_fixed_pcs_and_single_fraction(study):
    res = _fit(study, {"wantlss": 1, "pcstop": -2, "fracs": 0.5})
    assert res["typec"]["pcnum"] == 2
    assert np.all(res["typed"]["FRACvalue"] == 0.5)
    assert res["typed"]["scaleoffset"].shape == (40, 1, 1, 2)
    assert np.all(np.isfinite(res["typeb"]["betasmd"]))


def test_hrf_library_from_a_file(study, tmp_path):
    from conform_core.hrf import library_fine

    path = tmp_path / "lib.tsv"
    np.savetxt(path, library_fine()[:, :5], delimiter="\t")
    res = _fit(
        study,
        {
            "hrflibrary": str(path),
            "wantmemoryoutputs": [0, 1, 0, 0],
            "wantglmdenoise": 0,
            "wantfracridge": 0,
        },
    )
    assert res["typeb"]["FitHRFR2"].shape == (40, 1, 1, 5)
