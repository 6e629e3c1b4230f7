"""A plan is resolved with the registry it is given, pickles, and builds its dataset once."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conform_synthetic.dataset import SyntheticDataset

from conform_core import SpecError
from conform_core.analysis.plan import Plan, check_plan, make_plan
from conform_core.plugins import default_registry
from conform_core.spec import StageEntry, parse_spec


def _spec(dataset: str = "synthetic") -> Any:
    return parse_spec({"denoiser": ["trial-average", "pca"], "encoder": "ridge",
                       "features": "precomputed",
                       "dataset": {"plugin": dataset, "params": {
                           "n_subjects": 3, "n_units": 20, "n_stimuli": 40, "n_shared": 20}}})


class CountingDataset(SyntheticDataset):
    """SyntheticDataset that counts how many instances were made."""

    made: ClassVar[int] = 0

    def __new__(cls, *args: Any, **kwargs: Any) -> CountingDataset:
        CountingDataset.made += 1
        return super().__new__(cls)


def test_plan_builds_with_the_registry_it_was_made_with(registry_with):
    registry = registry_with(counting=CountingDataset)
    plan = make_plan(_spec("counting"), registry)
    assert "counting" not in default_registry().names("dataset")  # not there to fall back on
    assert plan.classes["dataset", "counting"] is CountingDataset
    assert type(plan.dataset()) is CountingDataset
    assert plan.classes["denoiser", "pca"] is registry.get("denoiser", "pca")


def test_a_plan_builds_its_dataset_once(registry_with):
    registry = registry_with(counting=CountingDataset)
    before = CountingDataset.made
    plan = make_plan(_spec("counting"), registry)  # listed the subjects, checked the plan
    assert CountingDataset.made - before == 2  # one read for its defaults, one the plan keeps
    before = CountingDataset.made
    check_plan(plan)
    plan.dataset().load_subject("sub-01")
    assert plan.dataset() is plan.dataset()
    assert CountingDataset.made == before


def test_plans_do_not_share_a_dataset():
    """No process-wide cache: each plan builds and keeps its own."""
    first, second = make_plan(_spec(), default_registry()), make_plan(_spec(), default_registry())
    assert first == second and first.dataset() is not second.dataset()


def test_a_pickled_plan_leaves_its_dataset_behind():
    plan = make_plan(_spec(), default_registry())
    built = plan.dataset()
    copy = pickle.loads(pickle.dumps(plan))
    assert copy == plan and "_dataset" not in copy.__dict__
    assert copy.dataset() is not built
    assert copy.dataset().get_params() == built.get_params()


def test_build_refuses_a_plugin_the_plan_did_not_resolve():
    plan = Plan(stages={"dataset": (StageEntry("synthetic"),)}, location=None, subjects=(),
                rois=(), seed=0, metrics=(), classes={})
    with pytest.raises(KeyError, match="no dataset class 'synthetic'.*make_plan"):
        plan.build("dataset", plan.stages["dataset"][0])


def test_denoiser_stage_rejects_a_time_series_denoiser():
    spec = parse_spec({"denoiser": "glmsingle", "dataset": {"plugin": "synthetic"}})
    with pytest.raises(SpecError, match="needs a trial-level denoiser; 'glmsingle' consumes"):
        make_plan(spec, default_registry())


def test_examples_are_valid_specs():
    from conform_core.spec import check_spec, load_spec

    root = Path(__file__).resolve().parents[3] / "examples"
    plan = make_plan(load_spec(root / "quickstart.toml"), default_registry())
    assert [e.plugin for e in plan.stages["denoiser"]] == ["trial-average", "pca", "psn"]
    check_spec(load_spec(root / "mosaic.toml"), default_registry())
