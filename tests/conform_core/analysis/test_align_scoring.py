"""Leave-one-subject-out aligner scoring: no leakage of the held-out test responses, and the
alignment data budget (the held-out subject added from N of its images)."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conform_core.analysis import fit_analysis, load_spec
from conform_core.analysis.align import budget_curves, budget_metric
from conform_core.analysis.context import CONTEXT_COLUMN
from conform_core.analysis.plan import make_plan
from conform_core.analysis.runner import run_plan
from conform_core.analysis.summary import budget_summary
from conform_core.plugins import default_registry
from conform_core.registry import ComponentRegistry

CALLS: list[dict[str, Any]] = []
"""What the spy aligner was given, in call order (the serial executor runs in this process)."""


def _spy_class() -> type:
    """The installed procrustes aligner, recording every call to fit and add_subject."""
    base: Any = default_registry().get("aligner", "procrustes")

    class SpyAligner(base):  # type: ignore[misc, valid-type]
        def fit(self, subjects, stimuli=None):  # type: ignore[no-untyped-def]
            CALLS.append({"call": "fit", "subjects": [s.subject for s in subjects],
                          "ids": {s.subject: set(s.stimulus_ids.tolist()) for s in subjects},
                          "stimuli": None if stimuli is None else set(stimuli.ids.tolist())})
            return super().fit(subjects, stimuli)

        def add_subject(self, data, stimuli=None):  # type: ignore[no-untyped-def]
            CALLS.append({"call": "add", "subject": data.subject,
                          "ids": set(data.stimulus_ids.tolist()),
                          "stimuli": None if stimuli is None else set(stimuli.ids.tolist())})
            return super().add_subject(data, stimuli)

    SpyAligner.__name__ = "SpyAligner"
    return SpyAligner


SPEC = """
denoiser = "trial-average"
aligner = "spy"
encoder = "ridge"
features = "precomputed"

[analysis]
name = "spy"
seed = 0

[dataset]
plugin = "synthetic"

[dataset.params]
n_subjects = 3
n_units = 20
n_stimuli = 60
n_shared = 30
stimuli_per_subject = 10
n_features = 16

[evaluation]
metrics = ["pearson_r", "r2", "nc_r2"]
context_sizes = [5, 10, 25]
context_draws = 2
"""


@pytest.fixture(scope="module")
def spied(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, list[dict[str, Any]]]:
    """(plan, result, calls) of a run of the spy aligner with a data budget."""
    registry = ComponentRegistry()
    for entry in default_registry().entries():
        registry.add(entry.kind, entry.name, entry.cls)
    registry.add("aligner", "spy", _spy_class())
    path = tmp_path_factory.mktemp("spy") / "spy.toml"
    path.write_text(textwrap.dedent(SPEC))
    plan = make_plan(load_spec(path), registry)
    CALLS.clear()
    result = run_plan(plan)
    return plan, result, list(CALLS)


def _splits(plan: Any) -> dict[str, tuple[set[str], set[str]]]:
    """Subject -> (training ids, test ids), as conform fit splits them."""
    from conform_core.analysis.subject import prepare_subject

    out = {}
    for s in plan.subjects:
        p = prepare_subject(plan, s)
        out[s] = (set(p.train.stimulus_ids.tolist()), set(p.test.stimulus_ids.tolist()))
    return out


def test_held_out_test_responses_never_reach_fit_or_add_subject(spied):
    plan, result, calls = spied
    splits = _splits(plan)
    assert not result.failures, result.failures
    fits = [i for i, c in enumerate(calls) if c["call"] == "fit"]
    assert len(fits) == len(plan.subjects)  # the template is fitted once per held-out subject
    for start, end in zip(fits, [*fits[1:], len(calls)]):
        fitted, adds = calls[start], calls[start + 1:end]
        held = {a["subject"] for a in adds}
        assert len(held) == 1 and not held & set(fitted["subjects"])  # never in the template
        (name,) = held
        train, test = splits[name]
        for s in fitted["subjects"]:  # the others' training responses only
            assert fitted["ids"][s] <= splits[s][0]
        assert fitted["stimuli"] <= set().union(*(splits[s][0] for s in fitted["subjects"]))
        for a in adds:
            assert a["ids"] <= train and not a["ids"] & test
            assert a["stimuli"] == a["ids"]  # features of exactly the images it is added from


def test_budget_adds_the_held_out_subject_from_n_shared_training_images(spied):
    plan, result, calls = spied
    splits = _splits(plan)
    adds = [c for c in calls if c["call"] == "add"]
    for name in plan.subjects:
        others = [s for s in plan.subjects if s != name]
        shared = splits[name][0].intersection(*(splits[s][0] for s in others))
        sizes = sorted(len(a["ids"]) for a in adds if a["subject"] == name)
        context = result.aligner_context["spy"][name]
        assert context.n_train == len(shared) and set(context.stimulus_ids) == shared
        # 28 training images, about 21 of them shared: N = 5 and 10 twice each (2 draws),
        # 25 skipped for the aligner (not for the encoders)
        assert len(shared) < 25 < len(splits[name][0])
        assert context.skipped == (25,)
        # the full addition is given all its training images (the aligner keeps the shared)
        assert sizes == [5, 5, 10, 10, len(splits[name][0])]
        for a in adds:
            if a["subject"] == name and len(a["ids"]) < len(shared):
                assert a["ids"] <= shared


def test_budget_rows_carry_n_context_and_the_full_fit_counts_all_training_images(spied):
    plan, result, _ = spied
    rows = [r for r in result.rows if r["aligner"] == "spy" and r["roi"] == "all"]
    assert all(r["status"] == "ok" for r in rows)
    for name in plan.subjects:
        n_train = result.context[name].n_train
        ns = [r[CONTEXT_COLUMN] for r in rows if r["subject"] == name and r["metric"] == "r2"]
        assert ns == [5, 10, n_train]  # ascending, the fit on all images last
        unit = [u[CONTEXT_COLUMN] for u in result.unit_scores
                if u["subject"] == name and u["aligner"] == "spy"]
        assert unit == [5, 10, n_train]


def test_budget_curves_table_and_note(spied):
    _, result, _ = spied
    metric = budget_metric(result.rows)
    assert metric == "nc_r2"  # the first of nc_r2, r2, pearson_r computed
    curves = budget_curves(result.rows, result.context, result.aligner_context, metric)
    kinds = [(c.kind, c.method) for c in curves]
    assert kinds == [("aligner", "spy"), ("encoder", "ridge")]
    aligner, encoder = curves
    assert sorted(aligner.by_size) == [5, 10] and len(aligner.full) == 3
    # images shared with the other subjects
    assert aligner.n_used == [c.n_train for c in result.aligner_context["spy"].values()]
    assert sorted(encoder.by_size) == [5, 10, 25]
    table = budget_summary(result)
    assert table is not None and table.header[2:] == ["N=5", "N=10", "N=25", "all (mean N)"]
    assert [row[1] for row in table.body] == ["aligner spy", "encoder ridge (within)"]
    assert table.body[0][4] == ""  # N=25 was skipped for the aligner
    shared = [f"{s} ({c.n_train})" for s, c in sorted(result.aligner_context["spy"].items())]
    assert f"spy N=25 for {', '.join(shared)}" in table.notes[-1]


def test_budget_figure_and_report(tmp_path: Path):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent(SPEC).replace('aligner = "spy"', 'aligner = "procrustes"'))
    out, result = fit_analysis(spec, out=tmp_path / "out")
    assert (out / "alignment_budget.png").stat().st_size > 0
    report = (out / "report.md").read_text()
    assert "](alignment_budget.png)" in report and "## Alignment data budget" in report
    header = (out / "results.csv").read_text().splitlines()[0].split(",")
    assert CONTEXT_COLUMN in header
    assert any(r["aligner"] == "procrustes" and r[CONTEXT_COLUMN] == 5 for r in result.rows)


def test_no_budget_without_context_sizes(tmp_path: Path):
    spec = tmp_path / "spec.toml"
    text = textwrap.dedent(SPEC).replace('aligner = "spy"', 'aligner = "procrustes"')
    spec.write_text(text.replace("context_sizes = [5, 10, 25]\ncontext_draws = 2\n", ""))
    out, result = fit_analysis(spec, out=tmp_path / "out")
    assert not (out / "alignment_budget.png").exists()
    assert result.aligner_context == {} and budget_summary(result) is None
    assert all(r.get(CONTEXT_COLUMN, "") == "" for r in result.rows)
    assert np.isfinite([r["value"] for r in result.rows if r["aligner"] == "procrustes"]).all()


ZERO_OVERLAP = """
denoiser = "trial-average"
aligner = [{plugin = "ridge", label = "unpaired", params = {via_encoder = "ridge", probe = 60}},
           "procrustes"]
encoder = "ridge"
features = "precomputed"

[analysis]
name = "zero-overlap"
seed = 0

[dataset]
plugin = "synthetic"

[dataset.params]
n_subjects = 3
n_units = 25
n_stimuli = 240
stimulus_overlap = 0.0
n_features = 16
n_latent = 4

[evaluation]
metrics = ["pearson_r", "r2", "nc_r2"]
context_sizes = [10]
context_draws = 1
"""


def test_unpaired_alignment_predicts_test_images_no_other_subject_saw(tmp_path: Path):
    spec = tmp_path / "spec.toml"
    spec.write_text(textwrap.dedent(ZERO_OVERLAP))
    plan = make_plan(load_spec(spec), default_registry())
    result = run_plan(plan)
    rows = [r for r in result.rows if r["roi"] == "all" and r["metric"] == "r2"]
    unpaired = [r for r in rows if r["aligner"] == "unpaired"]
    assert {r["status"] for r in unpaired} == {"ok"} and len(unpaired) == 2 * 3  # N=10 and all
    # no other subject saw any of a held-out subject's test images, yet the other subjects'
    # encoders carry real signal to it: median R² over units above 0 for each held-out
    # subject with all its training images (measured 0.5-0.7 at seed 0)
    assert all(r["value"] > 0 for r in unpaired if r[CONTEXT_COLUMN] != 10)
    # the budget of an unpaired aligner draws from all its training images (not shared ones)
    for name, context in result.aligner_context["unpaired"].items():
        assert context.n_train == result.context[name].n_train
    paired = [r for r in result.rows if r["aligner"] == "procrustes"]  # one error row each
    assert paired and all("via_encoder='ridge'" in r["status"] for r in paired)
