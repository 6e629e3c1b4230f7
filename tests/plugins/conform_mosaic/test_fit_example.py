"""examples/mosaic.toml runs `conform fit` on a generated MOSAIC folder."""

from __future__ import annotations

import csv
import importlib.util
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from conform_mosaic import write_subject
from conform_mosaic._spec import N_VERTICES
from conform_mosaic.testing import TOY_METADATA
from conform_synthetic import simulate_study
from PIL import Image

from conform_core.analysis import fit_analysis
from conform_core.data import TrialData
from conform_core.exceptions import ConformWarning

ROOT = Path(__file__).resolve().parents[3]
TINY_CLIP = {
    "embed_dim": 16,
    "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8},
    "text_cfg": {"context_length": 8, "vocab_size": 64, "width": 16, "heads": 1, "layers": 1},
}


def _mosaic_folder(root: Path) -> tuple[Path, Path, list[int]]:
    """Three simulated subjects written as MOSAIC files, plus one PNG per stimulus."""
    study = simulate_study(n_subjects=3, n_units=30, n_stimuli=60, n_shared=30, random_state=3)
    vertices = (np.arange(30) * 97 + 11).tolist()
    data, images = root / "mosaic", root / "stimuli"
    images.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for s in study.subjects:
        t = s.trials
        full = np.zeros((t.n_trials, N_VERTICES), np.float32)  # zeros compress to nothing
        full[:, vertices] = t.betas
        named = TrialData(
            full, np.char.add(t.stimulus_ids, ".png"), t.sessions, t.runs, subject=s.name
        )
        phases = np.where(np.isin(t.stimulus_ids, s.train_ids), "train", "test")
        write_subject(
            data,
            named,
            phases=phases,
            metadata={**TOY_METADATA, "subjectID": s.name},
            subject=s.name,
            code="SIM",
        )
        for sid in np.unique(named.stimulus_ids):
            path = images / sid
            if not path.exists():
                Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(path)
    return data, images, vertices


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "open_clip")),
    reason="examples/mosaic.toml embeds the images with the clip plugin: needs torch and "
    "open_clip, from the [clip] extra (pip install 'conform-fmri[clip]')",
)
def test_mosaic_example_runs_on_a_generated_folder(tmp_path):
    data, images, vertices = _mosaic_folder(tmp_path)
    config = tmp_path / "tiny_clip.json"
    config.write_text(json.dumps(TINY_CLIP))
    overrides = [
        f"dataset.location={json.dumps(str(data))}",
        'dataset.subjects=["sub-01_SIM", "sub-02_SIM", "sub-03_SIM"]',
        f"dataset.stimuli_dir={json.dumps(str(images))}",
        f"dataset.rois={json.dumps(vertices)}",
        f"features.model={json.dumps(str(config))}",
        "features.allow_untrained=true",
        "denoiser=trial-average,pca",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConformWarning)  # the untrained CLIP model warns, rightly
        out, result = fit_analysis(
            ROOT / "examples" / "mosaic.toml", overrides=overrides, out=tmp_path / "results"
        )
    assert not result.failures, result.failures
    with open(out / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    scored = {(r["subject"], r["denoiser"]) for r in rows if r["metric"] == "pearson_r"}
    assert scored == {
        (s, d) for s in ("sub-01_SIM", "sub-02_SIM", "sub-03_SIM") for d in ("trial-average", "pca")
    }
    assert any(r["metric"] == "noise_ceiling" and float(r["value"]) > 0 for r in rows)
