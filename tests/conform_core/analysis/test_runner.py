"""Running a plan: one task graph, serial or on Dask; a failure reaches every cell that needs it."""

from __future__ import annotations

from typing import Any

import pytest
from conform_synthetic.dataset import SyntheticDataset

from conform_core.analysis import count_cells, make_plan, run_plan
from conform_core.analysis.executor import SerialExecutor
from conform_core.analysis.report import results_csv
from conform_core.analysis.runner import count_tasks
from conform_core.data import Subject
from conform_core.exceptions import DataFileError
from conform_core.plugins import default_registry
from conform_core.spec import parse_spec

BROKEN = "sub-02_trials.npz is truncated. Copy it again from the source."


class BrokenSubjectDataset(SyntheticDataset):
    """SyntheticDataset whose sub-02 cannot be read."""

    def _load_subject(self, name: str) -> Subject:
        if name == "sub-02":
            raise DataFileError(BROKEN)
        return super()._load_subject(name)


def _spec(dataset: str = "synthetic", pca: dict[str, Any] | None = None) -> Any:
    return parse_spec({
        "denoiser": ["trial-average", {"plugin": "pca", "params": pca or {}}],
        "aligner": "procrustes", "encoder": "ridge", "features": "precomputed",
        "dataset": {"plugin": dataset, "params": {"n_subjects": 4, "n_units": 20,
                                                  "n_stimuli": 60, "n_shared": 30}}})


def _failed_cells(result: Any) -> dict[tuple[str, str, str, str], str]:
    return {(r["subject"], r["denoiser"], r["aligner"], r["encoder"]): r["status"]
            for r in result.failures}


def test_a_subject_that_cannot_be_loaded_fails_each_of_its_cells_with_its_message(registry_with):
    plan = make_plan(_spec("broken"), registry_with(broken=BrokenSubjectDataset))
    result = run_plan(plan)
    assert _failed_cells(result) == {cell: f"error: {BROKEN}" for cell in [
        ("sub-02", "all", "none", "all"),  # the subject itself
        ("sub-02", "trial-average", "none", "all"), ("sub-02", "pca", "none", "all"),
        ("sub-02", "trial-average", "procrustes", "none"), ("sub-02", "pca", "procrustes", "none")]}
    assert count_cells(plan, result) == (4, 16)  # its 2 encoder and 2 aligner cells
    assert sorted(result.units) == ["sub-01", "sub-03", "sub-04"]
    assert any(r["subject"] == "sub-01" and r["aligner"] == "procrustes" and r["status"] == "ok"
               for r in result.rows)  # the others are aligned without it


def test_a_failing_denoiser_fails_its_aligner_cells_with_the_same_message():
    plan = make_plan(_spec(pca={"n_components": 999}), default_registry())
    failed = _failed_cells(run_plan(plan))
    subjects = ("sub-01", "sub-02", "sub-03", "sub-04")
    assert set(failed) == {(s, "pca", a, e) for s in subjects
                           for a, e in (("none", "all"), ("procrustes", "none"))}
    for s in subjects:
        assert failed[s, "pca", "none", "all"] == failed[s, "pca", "procrustes", "none"]
        assert "n_components" in failed[s, "pca", "none", "all"]


def test_serial_and_dask_run_the_same_tasks_and_write_the_same_results():
    pytest.importorskip("distributed")
    plan = make_plan(_spec(pca={"n_components": 999}), default_registry())  # failures cross too
    serial: list[str] = []
    parallel: list[str] = []
    first = run_plan(plan, executor=SerialExecutor(serial.append))
    second = run_plan(plan, workers=2, progress=parallel.append)
    assert results_csv(first.rows) == results_csv(second.rows)
    assert len(serial) == count_tasks(plan) == 4 * (1 + 2 + 2)
    assert serial[:4] == ["sub-01: prepared", "sub-01: trial-average", "sub-01: pca",
                          "sub-02: prepared"]  # serial ticks as each task finishes
    assert serial[-1] == "sub-04: pca -> aligner procrustes"
    assert sorted(parallel) == sorted(serial)
