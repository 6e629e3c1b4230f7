"""End to end: `conform simulate --timeseries --layout fmriprep`, then `conform fit` with a GLM
stage through the `bids` plugin, against the same study in the simulator's own format.

The two layouts hold the same runs, events, confounds and ground truth, so every score,
the ground-truth ones included, must be the same: results.csv byte for byte.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conform_core.cli import main

STUDY = {"n_subjects": 2, "n_units": 16, "n_stimuli": 40, "n_repeats": 3, "timeseries": True,
         "motion": 0.3}
SPEC = """
glm = {{plugin = "glmsingle", params = {{model = "D"}}}}
denoiser = ["trial-average"]
encoder = "ridge"
features = "precomputed"
[analysis]
name = "e2e"
seed = 0
[dataset]
plugin = "{plugin}"
location = "{location}"
{params}
[evaluation]
metrics = ["pearson_r", "r2"]
"""


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as info:
        main(args)
    out = capsys.readouterr()
    return int(info.value.code or 0), out.out + out.err


@pytest.fixture(scope="module")
def studies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from conform_synthetic import write_study

    folder = tmp_path_factory.mktemp("e2e")
    write_study(folder / "bids", STUDY, layout="fmriprep")
    write_study(folder / "own", STUDY)
    return folder


def _fit(folder: Path, name: str, plugin: str, location: Path, params: str,
         capsys: pytest.CaptureFixture[str]) -> bytes:
    spec = folder / f"{name}.toml"
    spec.write_text(SPEC.format(plugin=plugin, location=location.as_posix(), params=params))
    code, text = _run(["fit", str(spec), "--out", str(folder / f"results-{name}")], capsys)
    assert code == 0, text
    return (folder / f"results-{name}" / "results.csv").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("space", ["MNI152NLin2009cAsym", "fsaverage5"])
def test_fit_through_bids_matches_the_simulators_own_format(
        studies: Path, space: str, capsys: pytest.CaptureFixture[str]) -> None:
    own = (studies / "own_results.csv")
    if not own.exists():
        own.write_bytes(_fit(studies, "own", "synthetic-folder", studies / "own", "", capsys))
    params = f'[dataset.params]\nspace = "{space}"\nconfounds = ["motion6"]'
    through_bids = _fit(studies, f"bids-{space}", "bids", studies / "bids", params, capsys)
    assert b"denoise_truth_nmse" in through_bids and b"truth_r" in through_bids
    assert through_bids == own.read_bytes()


def test_data_info_describes_the_simulated_study(studies: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code, text = _run(["data", "info", "bids", str(studies / "bids"), "--json"], capsys)
    assert code == 0, text
    info = json.loads(text)
    assert [r["subject"] for r in info["subjects"]] == ["sub-01", "sub-02"]
    assert info["stimuli"].startswith("40 in stimuli/stimuli.tsv, embeddings (40, ")
    assert info["problems"] == [] and info["ground truth"].endswith("ground-truth")
    code, text = _run(["data", "info", "bids", str(studies / "bids"), "--param",
                       'space="fsaverage5"'], capsys)
    assert code == 0, text
    assert "cannot use:" in text and "\n  - " in text and "sub-02" in text
