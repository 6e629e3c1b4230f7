"""CIFTI input (``space="fsLR"``, ``cifti=True``): real CIFTI-2 dtseries files with the 91k
grayordinate count, read into units, checked for density and damage, and written back as
``.dscalar.nii`` maps by ``conform glmsingle --dataset bids``."""

from __future__ import annotations

import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from conform_bids import BIDSDataset, write_toy_study
from conform_bids.testing import N_CIFTI_91K, cifti_index, fslr_91k_brain_models
from conform_glmsingle._io import load_output
from typer.testing import CliRunner

from conform_core.cli import build_app
from conform_core.exceptions import DataFileError

GRID = (20, 20)  # 399 units (the last sheet cell is outside the toy's brain mask)
N_UNITS = GRID[0] * GRID[1] - 1
N_STIMULI = 18  # 2 * 18 + 4 = 40 volumes per run
TR = 1.5  # not the toy's default: the value must come from the sidecars


@pytest.fixture(scope="module")
def cifti_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One subject, two runs of 40 volumes, each a 91282-grayordinate dtseries (~15 MB)."""
    return write_toy_study(tmp_path_factory.mktemp("cifti") / "study", n_subjects=1,
                           grid=GRID, n_stimuli=N_STIMULI, tr=TR, surfaces=False,
                           images=False, cifti=True)


def _dtseries(study: Path, run: int = 1) -> Path:
    func = study / "derivatives" / "fmriprep" / "sub-01" / "func"
    return func / f"sub-01_task-conform_run-{run:02d}_space-fsLR_den-91k_bold.dtseries.nii"


def _copy(study: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(study, tmp_path / "study"))


def test_the_toy_files_are_91k_dtseries(cifti_study: Path) -> None:
    image = nib.load(str(_dtseries(cifti_study)))
    assert isinstance(image, nib.cifti2.Cifti2Image)
    series, models = (image.header.get_axis(i) for i in range(2))
    assert isinstance(series, nib.cifti2.SeriesAxis) and series.size == 2 * N_STIMULI + 4
    assert isinstance(models, nib.cifti2.BrainModelAxis) and len(models) == N_CIFTI_91K
    names = [name for name, _, _ in models.iter_structures()]
    assert names == ["CIFTI_STRUCTURE_CORTEX_LEFT", "CIFTI_STRUCTURE_CORTEX_RIGHT",
                     "CIFTI_STRUCTURE_THALAMUS_LEFT"]


def test_units_are_the_grayordinates_with_signal(cifti_study: Path) -> None:
    ds = BIDSDataset(location=str(cifti_study), space="fsLR", cifti=True)
    subject = ds.load_subject("01")
    ts = subject.timeseries
    where = cifti_index(N_UNITS)
    assert ts.n_runs == 2 and ts.n_units == N_UNITS and ts.tr == TR
    assert ts.units.space == "fsLR"
    assert ts.units.indices.tolist() == where.tolist()
    assert ts.units.ids.tolist() == [f"g{i:06d}" for i in where]
    assert where.max() >= 59412  # some units are subcortical voxels, not vertices
    for run in (1, 2):
        # float32 written, float32 read: the same values bit for bit
        written = np.asarray(nib.load(str(_dtseries(cifti_study, run))).dataobj).T
        np.testing.assert_array_equal(ts.runs[run - 1], written[where])
        assert ts.runs[run - 1].dtype == np.float32
    # the same sheet is stored as volumes: the same time series, unit for unit
    volume = BIDSDataset(location=str(cifti_study)).load_subject("01").timeseries
    for a, b in zip(volume.runs, ts.runs):
        np.testing.assert_array_equal(a, b)
    # events and stimuli as for volumes
    assert [e.stimulus_ids.tolist() for e in ts.events] == \
        [e.stimulus_ids.tolist() for e in volume.events]
    assert ts.n_events == 2 * N_STIMULI and subject.stimuli.n_stimuli == N_STIMULI
    assert subject.test_ids.tolist() == ["stim-0000", "stim-0001"]
    assert subject.truth is None  # the ground truth is indexed by voxel or vertex only


def test_tr_comes_from_the_cifti_sidecar(cifti_study: Path, tmp_path: Path) -> None:
    study = _copy(cifti_study, tmp_path)
    # the run's own sidecar overrides the top-level task JSON (BIDS inheritance)
    sidecar = _dtseries(study).with_name(_dtseries(study).name.replace(".dtseries.nii",
                                                                       ".json"))
    sidecar.write_text('{"RepetitionTime": 2.0}', encoding="utf-8")
    ds = BIDSDataset(location=str(study), space="fsLR", cifti=True, participants=["01"])
    with pytest.raises(DataFileError, match="different RepetitionTime") as err:
        ds.load_subject("01")
    # each TR is shown with the run it was read for
    assert f"2 s in {_dtseries(study, 1)}" in str(err.value)
    assert f"1.5 s in {_dtseries(study, 2)}" in str(err.value)


def test_confounds_are_read_as_for_volumes(cifti_study: Path) -> None:
    kwargs = {"location": str(cifti_study), "confounds": ["motion6", "framewise_displacement"],
              "confounds_na": "zero"}
    cifti = BIDSDataset(space="fsLR", cifti=True, **kwargs).load_subject("01").timeseries
    volume = BIDSDataset(**kwargs).load_subject("01").timeseries
    assert cifti.n_confounds == 7 and cifti.confounds[0].shape == (2 * N_STIMULI + 4, 7)
    assert cifti.confound_names == volume.confound_names
    for a, b in zip(cifti.confounds, volume.confounds):
        np.testing.assert_array_equal(a, b)
    assert cifti.confounds[0][0, 6] == 0.0  # fMRIPrep's n/a first row, filled


def test_output_space_is_the_first_runs_brain_models(cifti_study: Path) -> None:
    space = BIDSDataset(location=str(cifti_study), space="fsLR", cifti=True
                        ).output_space("sub-01")
    assert space["kind"] == "cifti" and space["shape"] == (N_CIFTI_91K,)
    assert space["brain_models"] == fslr_91k_brain_models()


def _rewrite(path: Path, models: object) -> None:
    """Replace a dtseries by one of the same time series on other brain models."""
    old = nib.load(str(path), mmap=False)  # a memory map of the file being rewritten would fault
    data = np.array(old.dataobj[:, :len(models)])
    series = old.header.get_axis(0)
    nib.save(nib.cifti2.Cifti2Image(data, header=(series, models)), str(path))


def test_a_dtseries_of_another_density_is_refused(cifti_study: Path, tmp_path: Path) -> None:
    study = _copy(cifti_study, tmp_path)
    path = _dtseries(study, 2)
    _rewrite(path, fslr_91k_brain_models(volume=False))  # cortex only: 59412
    ds = BIDSDataset(location=str(study), space="fsLR", cifti=True)
    with pytest.raises(DataFileError, match="59412 grayordinates but den-91k has 91282") as err:
        ds.load_subject("01")
    assert str(path) in str(err.value) and "den-" in str(err.value)


def test_runs_on_other_brain_models_are_refused(cifti_study: Path, tmp_path: Path) -> None:
    study = _copy(cifti_study, tmp_path)
    path = _dtseries(study, 2)
    models = fslr_91k_brain_models()
    vertex = models.vertex.copy()
    vertex[:10] += 1  # same count, the first left vertices shifted
    _rewrite(path, nib.cifti2.BrainModelAxis(
        models.name, voxel=models.voxel, vertex=vertex, affine=models.affine,
        volume_shape=models.volume_shape, nvertices=models.nvertices))
    ds = BIDSDataset(location=str(study), space="fsLR", cifti=True)
    with pytest.raises(DataFileError, match="other brain models") as err:
        ds.load_subject("01")
    assert str(path) in str(err.value) and str(_dtseries(study, 1)) in str(err.value)


@pytest.mark.parametrize("keep", [0.5, 0.001, 0.0], ids=["data", "header", "empty"])
def test_a_truncated_dtseries_gives_a_clear_error(cifti_study: Path, tmp_path: Path,
                                                  keep: float) -> None:
    study = _copy(cifti_study, tmp_path)
    path = _dtseries(study, 2)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(int(size * keep))  # half the data / inside the header / nothing
    ds = BIDSDataset(location=str(study), space="fsLR", cifti=True)
    with pytest.raises(DataFileError) as err:
        ds.load_subject("01")
    text = str(err.value)
    assert str(path) in text and "CIFTI" in text and "Re-copy the file" in text


def test_glmsingle_writes_dscalar_maps_on_the_grayordinates(cifti_study: Path,
                                                            tmp_path: Path) -> None:
    out = tmp_path / "glm"
    args = ["glmsingle", "--dataset", "bids", "--location", str(cifti_study),
            "--param", "cifti=true", "--param", "space=fsLR", "--subject", "01",
            "--out", str(out), "--types", "B", "--nthreads", "1", "--no-progress"]
    result = CliRunner().invoke(build_app(), args, prog_name="conform", terminal_width=300)
    assert result.exit_code == 0, result.output
    folder = out / "sub-01"
    maps = sorted(p.name for p in folder.glob("*.dscalar.nii"))
    assert maps == ["betas_typeB.dscalar.nii", "condition_mean_typeB.dscalar.nii",
                    "condition_t_typeB.dscalar.nii"], sorted(p.name for p in folder.iterdir())
    where = cifti_index(N_UNITS)
    outside = np.ones(N_CIFTI_91K, bool)
    outside[where] = False
    for name in maps:
        image = nib.load(str(folder / name))
        assert isinstance(image.header.get_axis(0), nib.cifti2.ScalarAxis)
        assert image.header.get_axis(1) == fslr_91k_brain_models()  # the runs' models
        data = np.asarray(image.dataobj)
        assert data.shape[1] == N_CIFTI_91K
        assert np.isnan(data[:, outside]).all()
        assert np.isfinite(data[:, where]).all(), name
    # the units' rows are the fitted values, scattered to their grayordinates
    mean = load_output(folder / "CONDITIONS_TYPEB")["mean"].reshape(N_UNITS, -1)
    image = nib.load(str(folder / "condition_mean_typeB.dscalar.nii"))
    assert mean.shape[1] == N_STIMULI and len(image.header.get_axis(0)) == N_STIMULI
    np.testing.assert_array_equal(np.asarray(image.dataobj)[:, where].T,
                                  mean.astype(np.float32))
