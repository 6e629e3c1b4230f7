"""The glmsingle denoiser component and the `conform glmsingle` command."""

from __future__ import annotations

import numpy as np
import pytest
from conform_glmsingle import GLMsingleDenoiser

from conform_core.data import Events, TimeSeriesData, TrialData
from conform_core.exceptions import ParameterError, ShapeError

from .conftest import small_study


def _timeseries(study, runs=None, sessions=None) -> TimeSeriesData:
    events = []
    for d in study["design"]:
        t, c = np.nonzero(d)
        events.append(Events(onset=t * study["tr"], duration=np.full(t.size, study["stimdur"]),
                             stimulus_ids=np.array([f"img{j:02d}" for j in c])))
    return TimeSeriesData(runs=tuple(runs or study["runs"]), events=tuple(events), tr=study["tr"],
                          sessions=sessions, subject="s1")


@pytest.fixture(scope="module")
def study():
    return small_study(2, n_units=30)


def test_component_returns_trialdata_in_trial_order(study):
    ts = _timeseries(study, sessions=np.array([3, 3, 5, 5]))
    den = GLMsingleDenoiser(n_pcs=3, fracs=[1.0, 0.5, 0.2])
    out = den.fit_transform(ts)
    assert isinstance(out, TrialData)
    assert out.betas.shape == (80, 30) and out.betas.dtype == np.float32
    np.testing.assert_array_equal(out.stimulus_ids, ts.stimulus_ids())
    np.testing.assert_array_equal(out.runs, np.repeat(np.arange(4), 20))
    np.testing.assert_array_equal(out.sessions, np.repeat([3, 5], 40))
    assert den.hrf_index_.shape == (30,) and den.frac_value_.shape == (30,)


def test_transform_other_runs_reuses_fitted_choices(study):
    ts = _timeseries(study)
    den = GLMsingleDenoiser(n_pcs=3, fracs=[1.0, 0.5, 0.2]).fit(ts)
    other = _timeseries(study, runs=[r + np.float32(1.0) for r in study["runs"]])
    out = den.transform(other)
    assert out.betas.shape == (80, 30)
    assert np.all(np.isfinite(out.betas))


def test_transform_refuses_other_units(study):
    """The base Denoiser records n_units_ in fit and checks it (a ShapeError, as every denoiser)."""
    ts = _timeseries(study)
    den = GLMsingleDenoiser(n_pcs=3, fracs=[1.0, 0.5, 0.2]).fit(ts)
    assert den.n_units_ == 30
    fewer = _timeseries(study, runs=[r[:20] for r in study["runs"]])
    with pytest.raises(ShapeError, match="fitted on 30 units but got 20"):
        den.transform(fewer)


def test_onsets_off_the_tr_grid_are_fitted(study):
    """Off-grid onsets use the fine-grid design (test_timing.py); the trial order is kept."""
    ts = _timeseries(study)
    ev = ts.events[1]
    shifted = Events(onset=ev.onset + 0.4, duration=ev.duration, stimulus_ids=ev.stimulus_ids)
    off = TimeSeriesData(runs=ts.runs, events=(ts.events[0], shifted, *ts.events[2:]), tr=ts.tr)
    out = GLMsingleDenoiser(n_pcs=3, fracs=[1.0, 0.5, 0.2]).fit_transform(off)
    assert out.betas.shape == (80, 30) and np.all(np.isfinite(out.betas))
    np.testing.assert_array_equal(out.stimulus_ids, off.stimulus_ids())


def test_bad_model_name(study):
    with pytest.raises(ParameterError, match="'model' parameter of GLMsingleDenoiser"):
        GLMsingleDenoiser(model="E").fit(_timeseries(study))


def test_registered_as_glmsingle_denoiser():
    import conform_glmsingle

    added = {}

    class Registry:
        def add(self, kind, name, cls):
            added[(kind, name)] = cls

    conform_glmsingle.conform_register(registry=Registry())
    assert added == {("denoiser", "glmsingle"): GLMsingleDenoiser}


def _write_bids(study, folder):
    import nibabel as nib

    runs, events = [], []
    for r, (data, d) in enumerate(zip(study["runs"], study["design"])):
        img = nib.Nifti1Image(data.reshape(5, 6, 1, -1), np.eye(4))
        img.header.set_zooms((2, 2, 2, study["tr"]))
        path = folder / f"run-{r + 1}_bold.nii.gz"
        nib.save(img, path)
        t, c = np.nonzero(d)
        rows = ["onset\tduration\ttrial_type\tstimulus_id"] + [
            f"{tt * study['tr']:g}\t3\timage\timg{cc:02d}" for tt, cc in zip(t, c)
        ]
        ev = folder / f"run-{r + 1}_events.tsv"
        ev.write_text("\n".join(rows) + "\n")
        runs.append(path)
        events.append(ev)
    return runs, events


def test_cli_writes_official_files_and_betas(study, tmp_path):
    import nibabel as nib
    import typer
    from conform_glmsingle.cli import register
    from typer.testing import CliRunner

    runs, events = _write_bids(study, tmp_path)
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def _noop() -> None:  # a second command keeps typer in multi-command mode
        pass

    out = tmp_path / "out"
    args = [
        "glmsingle",
        *map(str, runs),
        "--events",
        *map(str, events),
        "--out",
        str(out),
        "--no-progress",
        "--types",
        "BD",
        "--format",
        "npy-pickle",  # the official single-file layout (the default is a folder of .npy)
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (out / "TYPED_FITHRF_GLMDENOISE_RR.npy").is_file()
    assert (out / "TYPEB_FITHRF.npy").is_file()
    assert nib.load(out / "betas_typeD.nii.gz").shape == (5, 6, 1, 80)
    lines = (out / "trials.tsv").read_text().splitlines()
    assert len(lines) == 81
    assert lines[0] == "trial\trun\tsession\tonset\tduration\tstimulus_id\tcondition_index"


def test_cli_mismatched_events_names_the_fix(study, tmp_path):
    from conform_glmsingle.cli import run_glmsingle_files

    runs, events = _write_bids(study, tmp_path)
    with pytest.raises(
        ParameterError, match=r"4 run file\(s\) but 3 events file\(s\).*one --events file per run"
    ):
        run_glmsingle_files(runs, events[:3], tmp_path / "out", tr=None, stimdur=None)
    assert not (tmp_path / "out").exists()
