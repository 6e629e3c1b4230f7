"""End to end: packages pass check, counts are exact, the same seed gives the same bytes."""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import pytest

from conform_core.exceptions import ParameterError
from stimulus_design import DesignInputs, DesignParams, check_package, run_design

PARAMS = dict(sites=2, participants_per_site=2, core=24, per_participant=120, overlap=2,
              core_repeats=3, repeats=3, sessions=3, runs=3, core_sessions=1,
              min_session_repeats=3, seed=7)


def _run(pool_files, out: Path, **overrides):
    params = DesignParams(**{**PARAMS, **overrides})
    inputs = DesignInputs(embeddings=pool_files["emb"], ids=pool_files["ids"],
                          metadata=pool_files["meta"])
    return run_design(params, inputs, out)


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


def test_package_passes_check_and_has_every_file(pool_files, tmp_path):
    _run(pool_files, tmp_path / "pkg")
    pkg = tmp_path / "pkg"
    assert check_package(pkg) == []
    for name in ("design.json", "stimuli.tsv", "coverage.json", "coverage.png", "SHA256SUMS",
                 "site-01/README.md", "site-02/README.md",
                 "site-02/sub-04/ses-03/sub-04_ses-03_task-conform_run-03_events.tsv",
                 "site-01/sub-01/ses-01/sub-01_ses-01_task-conform_run-01_conditions.csv"):
        assert (pkg / name).is_file(), name


def test_repeat_and_overlap_counts_are_exact(pool_files, tmp_path):
    design = _run(pool_files, tmp_path / "pkg")
    seen = _events(tmp_path / "pkg")
    with open(tmp_path / "pkg" / "stimuli.tsv", newline="") as handle:
        table = {r["stimulus_id"]: r for r in csv.DictReader(handle, delimiter="\t")}
    core = {s for s, r in table.items() if r["group"] == "core"}
    assert len(core) == 24 and len(table) == 24 + 4 * 96 // 2
    viewers = Counter()
    for sub, counts in seen.items():
        assert len(counts) == 120
        assert all(counts[s] == 3 for s in core)
        for s, n in counts.items():
            assert n == 3
            viewers[s] += 1
    assert all(viewers[s] == (4 if s in core else 2) for s in table)
    assert not set(table) & set(design["inputs"]["excluded"])


def test_coverage_below_random_is_reported(pool_files, tmp_path):
    design = _run(pool_files, tmp_path / "pkg")
    cov = json.loads((tmp_path / "pkg" / "coverage.json").read_text())
    assert cov["selected"]["radius"] < cov["random"]["radius"]
    assert design["coverage"]["ratio_radius"] < 1
    assert {"p95", "p99", "mean", "vendi", "effective_dim"} <= set(cov["selected"])


def test_same_seed_is_byte_identical_and_another_seed_is_not(pool_files, tmp_path):
    _run(pool_files, tmp_path / "a")
    _run(pool_files, tmp_path / "b")
    _run(pool_files, tmp_path / "c", seed=8)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a")["stimuli.tsv"] != _digest(tmp_path / "c")["stimuli.tsv"]


def test_core_is_scheduled_in_the_first_sessions(pool_files, tmp_path):
    _run(pool_files, tmp_path / "pkg")
    core = {r.split("\t")[0] for r in (tmp_path / "pkg" / "stimuli.tsv").read_text().splitlines()
            if "\tcore\t" in r}
    late = [p for p in (tmp_path / "pkg").glob("site-*/sub-*/ses-0[23]/*_events.tsv")
            if core & set(p.read_text().split())]
    assert late == []


def test_check_reports_each_violation(pool_files, tmp_path):
    _run(pool_files, tmp_path / "pkg")
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
    assert list(tmp_path.iterdir()) == []


def test_single_session_default_repeats(pool_files, tmp_path):
    _run(pool_files, tmp_path / "pkg", sessions=1, runs=4, repeats=1, core_sessions=None,
         min_session_repeats=5)
    assert check_package(tmp_path / "pkg") == []
