"""Fixtures: the toy MOSAIC subject of docs/mosaic.md section 8, written by an independent,
minimal h5py writer that follows the specification (it shares no code with conform_mosaic)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

N = 91282
SUBJECT, CODE = "sub-01", "TOY"
ATTRS = {
    "visual_angle": 8.4,
    "sex": "F",
    "age": "30",
    "publication_url": "https://example.org/toy",
    "github_url": "https://github.com/example/toy",
    "owner_name": "Toy Owner",
    "owner_email": "toy@example.org",
    "dataset_name": "ToyDataset",
    "subjectID": "sub-01",
    "preprocessing_pipeline": "fMRIPrepv23.2.0",
    "beta_pipeline": "GLMsinglev1.2",
}
# (split, filename, reps) in the order the file stores them
STIMULI = (
    [("test", f"toy_test_{k:03d}.jpg", 3) for k in range(2)]
    + [("train", f"toy_train_{k:03d}.jpg", 2) for k in range(4)]
    + [("artificial", f"toy_art_{k:03d}.png", 2) for k in range(2)]
)
BLOCK = np.arange(1000, 1512)
NAN_KEY = "sub-01_TOY_stimulus-toy_train_000_phase-train_rep-1"
NAN_AT = [24576, 24577]


def reference_ceiling(per_stimulus: list[np.ndarray], n: str) -> np.ndarray:
    """MOSAIC section 5, written out loop by loop (stimulus arrays are reps x vertices)."""
    num = np.zeros(per_stimulus[0].shape[1])
    den = 0
    for reps in per_stimulus:
        if reps.shape[0] > 1:
            num += np.var(reps, axis=0, ddof=1) * (reps.shape[0] - 1)
            den += reps.shape[0] - 1
    noise = num / den
    total = np.var(np.vstack(per_stimulus), axis=0, ddof=1)
    signal = total - noise
    signal[signal < 0] = 0
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.sqrt(signal) / np.sqrt(noise)
        c = 1.0 if n == "1" else np.mean([1.0 / r.shape[0] for r in per_stimulus])
        return 100 * snr**2 / (snr**2 + c)


def toy_betas(seed: int = 0) -> dict[str, tuple[str, str, int, np.ndarray]]:
    """key -> (split, filename, rep, vector), in storage order."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, filename, reps in STIMULI:
        signal = rng.standard_normal(BLOCK.size)
        s = rng.choice([-0.5, 0.5], size=N)
        for r in range(reps):
            v = (s if r == 0 else -s if r == 1 else rng.choice([-0.5, 0.5], size=N)).astype(
                np.float64
            )
            v[BLOCK] = signal + rng.standard_normal(BLOCK.size)
            phase = "train" if split == "train" else "test"
            key = f"{SUBJECT}_{CODE}_stimulus-{Path(filename).stem}_phase-{phase}_rep-{r}"
            if key == NAN_KEY:
                v[NAN_AT] = np.nan
            out[key] = (split, filename, r, v)
    return out


def write_toy(
    folder: Path,
    *,
    compress: bool = True,
    age: object = "30",
    empty_union_float: bool = False,
    name: str = "sub-01_TOY.hdf5",
) -> Path:
    """Write sub-01_TOY.hdf5 and its side files into ``folder`` with plain h5py."""
    folder.mkdir(parents=True, exist_ok=True)
    betas = toy_betas()
    opts = (
        {"compression": "gzip", "compression_opts": 4, "shuffle": True, "chunks": (N,)}
        if compress
        else {}
    )
    path = folder / name
    with h5py.File(path, "w") as f:
        for k, v in ATTRS.items():
            f.attrs[k] = age if k == "age" else v
        nc = f.create_group("noiseceilings", track_order=True)
        union: set[int] = set()
        for split in ("test", "train", "artificial"):
            per_stim = [
                np.vstack(
                    [v for (sp, fn, _, v) in betas.values() if sp == split and fn == filename]
                )
                for sp2, filename, _ in STIMULI
                if sp2 == split
            ]
            for n in ("1", "avg"):
                values = reference_ceiling(per_stim, n)
                d = nc.create_dataset(
                    f"{SUBJECT}_{CODE}_phase-{split}_n-{n}_noiseceiling", data=values, **opts
                )
                nan = np.flatnonzero(~np.isfinite(values)).astype(np.int64)
                union.update(nan.tolist())
                d.attrs["nan_indices"] = nan
                d.attrs["n"] = n
                d.attrs["phase"] = "train" if split == "train" else "test"
        group = f.create_group("betas", track_order=True)
        for key, (split, filename, r, v) in betas.items():
            d = group.create_dataset(key, data=v, **opts)
            nan = np.flatnonzero(~np.isfinite(v)).astype(np.int64)
            union.update(nan.tolist())
            d.attrs["nan_indices"] = nan
            d.attrs["phase"] = "train" if split == "train" else "test"
            d.attrs["repetition"] = np.int64(r)
            d.attrs["presented_stimulus_filename"] = filename
        if empty_union_float and not union:
            f.create_dataset("nan_indices_all", data=np.zeros(0, np.float64))
        else:
            f.create_dataset("nan_indices_all", data=np.array(list(union), dtype=np.int64))
    splits = {"train": [], "test": [], "artificial": []}
    for split, filename, _reps in STIMULI:
        keys = [k + ".npz" for k, (sp, fn, _, _) in betas.items() if fn == filename]
        splits[split].append({f"{SUBJECT}_{CODE}_stimulus-{filename}": keys})
    for split, fname in (
        ("train", "train_naturalistic.json"),
        ("test", "test_naturalistic.json"),
        ("artificial", "test_artificial.json"),
    ):
        (folder / fname).write_text(json.dumps(splits[split]))
    lines = ["filename\talias\tsource\ttest_train\tsub-01_reps"]
    for split, filename, reps in STIMULI:
        source = "Artificial" if split == "artificial" else "Toy"
        lines.append(
            f"{filename}\t{filename}\t{source}\t{'train' if split == 'train' else 'test'}\t{reps}"
        )
    (folder / "toy_stiminfo.tsv").write_text("\n".join(lines) + "\n")
    return path


def write_atlas(path: Path) -> Path:
    """A synthetic (made-up) HCP-MMP label vector: L_V1 1000-1255, L_V2 1256-1511, R_FFC 40000-40099,
    L_4 (motor, section 6) 5000-5999, thalamus_left 70000-70009."""
    labels = np.zeros(N, np.int64)
    labels[1000:1256] = 1
    labels[1256:1512] = 4
    labels[40000:40100] = 180 + 18
    labels[5000:6000] = 8
    labels[70000:70010] = 377
    np.save(path, labels)
    return path


@pytest.fixture(scope="session")
def toy_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("toy_master")
    write_toy(folder)
    write_atlas(folder / "atlas.npy")
    return folder


@pytest.fixture
def toy_dir(toy_master: Path, tmp_path: Path) -> Path:
    """A private copy of the toy folder (tests may damage it)."""
    target = tmp_path / "toy"
    shutil.copytree(toy_master, target)
    return target
