"""End to end: packages pass check, counts are exact, the same seed gives the same bytes."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from conform_core.exceptions import ParameterError
from stimulus_design import DesignInputs, DesignParams, check_package, run_design

from .conftest import write_pool

PARAMS = {"sites": 2, "participants_per_site": 2, "core": 24, "per_participant": 120,
          "overlap": 2, "core_repeats": 3, "repeats": 3, "sessions": 3, "runs": 3,
          "core_sessions": 1, "min_session_repeats": 3, "seed": 7}


def _run(pool_files, out: Path, **overrides):
    params = DesignParams(**{**PARAMS, **overrides})
    inputs = DesignInputs(embeddings=pool_files["emb"], ids=pool_files["ids"],
                          metadata=pool_files["meta"])
    return run_design(params, inputs, out)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One package shared by the read-only tests."""
    root = tmp_path_factory.mktemp("shared")
    design = _run(write_pool(root), root / "pkg")
    return root / "pkg", design


def _digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _events(folder: Path) -> dict[str, Counter]:
    seen: dict[str, Counter] = {}
    for path in folder.glob("site-*/sub-*/ses-*/*_events.tsv"):
        sub = path.name.split("_")[0]
        with open(path, newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                if row["trial_type"] == "stimulus":
                    seen.setdefault(sub, Counter())[row["stimulus_id"]] += 1
    return seen


def test_package_passes_check_and_has_every_file(package):
    pkg = package[0]
    assert check_package(pkg) == []
    for name in ("design.json", "stimuli.tsv", "coverage.json", "coverage.png", "SHA256SUMS",
                 "site-01/README.md", "site-02/README.md",
                 "site-02/sub-04/ses-03/sub-04_ses-03_task-conform_run-03_events.tsv",
                 "site-01/sub-01/ses-01/sub-01_ses-01_task-conform_run-01_conditions.csv"):
        assert (pkg / name).is_file(), name


def test_repeat_and_overlap_counts_are_exact(package):
    pkg, design = package
    seen = _events(pkg)
    with open(pkg / "stimuli.tsv", newline="") as handle:
        table = {r["stimulus_id"]: r for r in csv.DictReader(handle, delimiter="\t")}
    core = {s for s, r in table.items() if r["group"] == "core"}
    assert len(core) == 24 and len(table) == 24 + 4 * 96 // 2
    viewers = Counter()
    for counts in seen.values():
        assert len(counts) == 120
        assert all(counts[s] == 3 for s in core)
        for s, n in counts.items():
            assert n == 3
            viewers[s] += 1
    assert all(viewers[s] == (4 if s in core else 2) for s in table)
    assert not set(table) & set(design["inputs"]["excluded"])


def test_coverage_below_random_is_reported(package):
    pkg, design = package
    cov = json.loads((pkg / "coverage.json").read_text())
    assert cov["selected"]["radius"] < cov["random"]["radius"]
    assert design["coverage"]["ratio_radius"] < 1
    assert {"p95", "p99", "mean", "vendi", "effective_dim"} <= set(cov["selected"])


def test_same_seed_is_byte_identical_and_another_seed_is_not(package, tmp_path):
    """A second run from fresh copies of the inputs reproduces every byte."""
    pool = write_pool(tmp_path)
    _run(pool, tmp_path / "b")
    _run(pool, tmp_path / "c", seed=8)
    first, second = _digest(package[0]), _digest(tmp_path / "b")
    assert first.keys() == second.keys()
    assert {k for k in first if first[k] != second[k]} <= {"design.json", "SHA256SUMS"}
    assert _digest(tmp_path / "b")["stimuli.tsv"] != _digest(tmp_path / "c")["stimuli.tsv"]


def test_same_inputs_and_seed_give_identical_design_json(pool_files, tmp_path):
    _run(pool_files, tmp_path / "a")
    _run(pool_files, tmp_path / "b")
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")


def test_core_is_scheduled_in_the_first_sessions(package):
    pkg = package[0]
    core = {r.split("\t")[0] for r in (pkg / "stimuli.tsv").read_text().splitlines()
            if "\tcore\t" in r}
    late = [p for p in pkg.glob("site-*/sub-*/ses-0[23]/*_events.tsv")
            if core & set(p.read_text().split())]
    assert late == []


def test_check_reports_each_violation(package, tmp_path):
    shutil.copytree(package[0], tmp_path / "pkg")
    events = tmp_path / "pkg/site-01/sub-01/ses-01/sub-01_ses-01_task-conform_run-01_events.tsv"
    lines = events.read_text().splitlines()
    i = next(k for k, ln in enumerate(lines) if "\tstimulus\t" in ln)
    lines[i + 1] = lines[i]       # an extra presentation, back-to-back
    events.write_text("\n".join(lines) + "\n")
    problems = check_package(tmp_path / "pkg")
    text = "\n".join(problems)
    assert "SHA-256 differs from SHA256SUMS" in text
    assert "shown in two consecutive stimulus trials" in text
    assert "repetition" in text and len(problems) >= 3


def test_prototype_and_stratified_designs_pass_check(pool_files, tmp_path):
    _run(pool_files, tmp_path / "proto", allocation="prototypes")
    _run(pool_files, tmp_path / "strat", stratify=True)
    assert check_package(tmp_path / "proto") == []
    assert check_package(tmp_path / "strat") == []
    header = (tmp_path / "strat" / "stimuli.tsv").read_text().splitlines()[0]
    assert header.endswith("category")


def test_impossible_design_writes_nothing(pool_files, tmp_path):
    with pytest.raises(ParameterError, match="distinct images, but the pool has only 2990"):
        _run(pool_files, tmp_path / "pkg", per_participant=2000, core=24, overlap=1)
    assert not (tmp_path / "pkg").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["emb.npy", "ids.txt", "meta.csv"]


def test_single_session_default_repeats(pool_files, tmp_path):
    _run(pool_files, tmp_path / "pkg", sessions=1, runs=4, repeats=1, core_sessions=None,
         min_session_repeats=5)
    assert check_package(tmp_path / "pkg") == []
