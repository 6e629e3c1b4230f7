"""Few-shot options of a spec, and how the N training stimuli of each fit are drawn."""

from __future__ import annotations

import numpy as np
import pytest

from conform_core import SpecError
from conform_core.analysis.context import (
    ceiling_in_metric,
    context_seed,
    draw_contexts,
    is_few_shot,
    make_subject_context,
    mean_over_draws,
)
from conform_core.spec import apply_overrides, check_context_sizes, parse_spec


def _raw(**evaluation: object) -> dict[str, object]:
    return {"dataset": {"plugin": "synthetic"}, "evaluation": dict(evaluation)}


# ----------------------------------------------------------------------------- spec
def test_context_sizes_are_read_sorted_and_draws_default_to_five():
    spec = parse_spec(_raw(context_sizes=[50, 10, 20]))
    assert spec.context_sizes == (10, 20, 50)
    assert spec.context_draws == 5
    assert parse_spec(_raw()).context_sizes == ()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([1, 10], "1 is below 2"),
        ([10, 20, 10], "lists 10 more than once"),
        ([], "is an empty list"),
        (10, "must be a list"),
        ([10.5], "10.5 is not an integer"),
        (["10"], "'10' is not an integer"),
        ([True], "True is not an integer"),
    ],
)
def test_bad_context_sizes_name_the_value_and_the_fix(value, message):
    with pytest.raises(SpecError, match=message) as info:
        parse_spec(_raw(context_sizes=value))
    assert "context_sizes = [10, 20, 50]" in str(info.value)


@pytest.mark.parametrize("value", [0, -1, 2.0, "5", False])
def test_bad_context_draws_name_the_value_and_the_fix(value):
    with pytest.raises(SpecError, match=r"context_draws must be an integer of 1 or more; got") as info:
        parse_spec(_raw(context_sizes=[10], context_draws=value))
    assert "context_draws = 5" in str(info.value)


def test_set_overrides_context_sizes_and_checks_them():
    spec = parse_spec(_raw())
    out = apply_overrides(spec, ["evaluation.context_sizes=[20,10]", "evaluation.context_draws=2"])
    assert (out.context_sizes, out.context_draws) == ((10, 20), 2)
    with pytest.raises(SpecError, match="1 is below 2"):
        apply_overrides(spec, ["evaluation.context_sizes=[1]"])
    with pytest.raises(SpecError, match="must be a list"):
        apply_overrides(spec, ["evaluation.context_sizes=10"])


def test_check_context_sizes_returns_ints_in_order():
    assert check_context_sizes((300, 2, 10)) == (2, 10, 300)


# ----------------------------------------------------------------------------- draws
def test_draws_are_disjoint_while_they_fit_in_the_training_stimuli():
    draws = draw_contexts(50, 10, 5, seed=3)
    assert [d.size for d in draws] == [10] * 5
    pooled = np.concatenate(draws)
    assert np.unique(pooled).size == 50  # 5 x 10 = 50: every stimulus exactly once
    assert all(np.array_equal(d, np.sort(d)) for d in draws)


def test_draws_beyond_the_training_stimuli_are_independent_subsets():
    draws = draw_contexts(12, 5, 4, seed=1)  # 4 x 5 > 12: cannot all be disjoint
    assert all(np.unique(d).size == 5 and d.min() >= 0 and d.max() < 12 for d in draws)
    assert len({tuple(d) for d in draws}) > 1


def test_draws_reproduce_from_their_seed():
    seed = context_seed(7, "sub-02", 10)
    assert seed == context_seed(7, "sub-02", 10)
    assert seed != context_seed(7, "sub-03", 10)
    assert seed != context_seed(8, "sub-02", 10)
    assert seed != context_seed(7, "sub-02", 20)
    first, again = draw_contexts(40, 10, 3, seed), draw_contexts(40, 10, 3, seed)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))


def test_a_size_draws_the_same_stimuli_whatever_the_other_sizes():
    ids = np.array([f"s{i:03d}" for i in range(60)])
    alone = make_subject_context("sub-01", ids, [10], 3, analysis_seed=0)
    among = make_subject_context("sub-01", ids, [5, 10, 20], 3, analysis_seed=0)
    assert [d.indices.tolist() for d in alone.draws_of(10)] == [
        d.indices.tolist() for d in among.draws_of(10)
    ]


def test_sizes_not_smaller_than_the_training_stimuli_are_skipped():
    ids = np.array([f"s{i}" for i in range(20)])
    context = make_subject_context("sub-01", ids, [5, 20, 30], 2, analysis_seed=0)
    assert context.sizes == (5,)
    assert context.skipped == (20, 30)
    assert context.n_train == 20
    rows = context.rows()
    assert len(rows) == 2 * 5 and {r["stimulus_id"] for r in rows} <= set(ids)


def test_few_shot_records_are_those_with_fewer_than_all_training_stimuli():
    ids = np.array([f"s{i}" for i in range(20)])
    contexts = {"sub-01": make_subject_context("sub-01", ids, [5], 2, analysis_seed=0)}
    assert is_few_shot({"subject": "sub-01", "n_context": 5}, contexts)
    assert not is_few_shot({"subject": "sub-01", "n_context": 20}, contexts)
    assert not is_few_shot({"subject": "sub-01", "n_context": ""}, contexts)
    assert not is_few_shot({"subject": "sub-01"}, contexts)


# ----------------------------------------------------------------------------- scores
def test_mean_over_draws_skips_nan_per_unit():
    out = mean_over_draws([{"r": np.array([0.2, np.nan, np.nan])},
                           {"r": np.array([0.4, 0.5, np.nan])}])
    np.testing.assert_allclose(out["r"][:2], [0.3, 0.5])
    assert np.isnan(out["r"][2])


def test_the_noise_ceiling_is_given_in_the_metric_s_units():
    nc = np.array([25.0, 36.0, 49.0])  # percent of variance
    assert ceiling_in_metric(nc, "r2") == pytest.approx(0.36)
    assert ceiling_in_metric(nc, "pearson_r") == pytest.approx(0.6)  # sqrt of the R² bound
    assert ceiling_in_metric(nc, "nc_r2") == 1.0
