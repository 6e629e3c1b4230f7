"""Coverage selection: exact greedy k-center, well below random at equal size."""

from __future__ import annotations

import numpy as np
import pytest

from conform_core.exceptions import ParameterError
from stimulus_design import (
    compare_with_random,
    diversity,
    nearest_selected,
    select_kcenter,
    select_kcenter_numpy,
    select_stratified,
)

from .conftest import clustered


def test_batched_kcenter_matches_plain_numpy():
    x = clustered(4000)
    fast = select_kcenter(x, 300, first=5, n_candidates=256)
    slow = select_kcenter_numpy(x, 300, first=5)
    np.testing.assert_array_equal(fast.order, slow.order)
    # float32 distances; both compute sqrt(2 - 2 cos), rounding differs by a few ulp
    np.testing.assert_allclose(fast.nearest, slow.nearest, atol=1e-5)


@pytest.mark.parametrize("n_candidates, batch", [(64, 8), (300, 1), (20000, 5000), (None, 3)])
def test_picks_do_not_depend_on_batching(n_candidates, batch):
    """Candidate-set size and picks per pass change the cost, never the picks."""
    x = clustered(6000)
    ref = select_kcenter_numpy(x, 500, first=3)
    got = select_kcenter(x, 500, first=3, n_candidates=n_candidates, batch=batch)
    np.testing.assert_array_equal(got.order, ref.order)
    np.testing.assert_allclose(got.pick_radius[1:], ref.pick_radius[1:], atol=1e-5)
    np.testing.assert_allclose(got.nearest, ref.nearest, atol=1e-5)


def test_pool_with_fewer_distinct_vectors_than_requested():
    x = np.concatenate([clustered(50)] * 3)
    result = select_kcenter(x, 80)
    assert np.unique(result.order).size == 80
    assert result.nearest.max() < 1e-3


def test_nearest_is_distance_to_selection():
    x = clustered(2000)
    result = select_kcenter(x, 100)
    np.testing.assert_allclose(result.nearest, nearest_selected(x, result.order), atol=1e-5)
    assert result.nearest[result.order].max() == 0


def test_pick_radius_never_increases():
    result = select_kcenter(clustered(3000), 200)
    assert np.all(np.diff(result.pick_radius[1:]) <= 1e-6)


def test_radius_clearly_below_random():
    x = clustered(5000)
    result = select_kcenter(x, 250)
    report = compare_with_random(x, result.nearest, result.order, rng=np.random.default_rng(0))
    assert report["selected"]["radius"] < 0.85 * report["random"]["radius"]
    assert report["selected"]["p99"] < report["random"]["p99"]
    assert report["ratio_radius"] < 0.85


def test_selection_larger_than_pool_is_rejected():
    with pytest.raises(ParameterError, match="Cannot select 11 images from a pool of 10"):
        select_kcenter(clustered(10), 11)


def test_stratified_quotas_follow_category_sizes():
    x = clustered(3000)
    cats = np.where(np.arange(3000) % 3 == 0, "scene", "animal")
    result = select_stratified(x, cats, 90, rng=np.random.default_rng(0))
    names, counts = np.unique(cats[result.order], return_counts=True)
    assert dict(zip(names, counts)) == {"animal": 60, "scene": 30}
    assert np.unique(result.order).size == 90


def test_diversity_of_spread_set_exceeds_a_clump():
    x = clustered(3000)
    spread = diversity(x[select_kcenter(x, 100).order])
    clump = diversity(x[np.argsort(x[:, 0])[:100]])
    assert spread["vendi"] > clump["vendi"]
