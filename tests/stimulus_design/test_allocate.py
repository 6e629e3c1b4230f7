"""Allocation: exact overlap, balanced counts, parallel forms."""

from __future__ import annotations

import numpy as np

from stimulus_design import DesignParams, allocate_stimuli, plan_design, select_kcenter

from .conftest import clustered


def _allocate(**kwargs):
    x = clustered(3000)
    params = DesignParams(**kwargs)
    plan = plan_design(params, x.shape[0])
    n_select = params.core + (plan.n_prototypes or plan.n_overlap_images)
    order = select_kcenter(x, n_select).order
    return allocate_stimuli(order, x, params, plan, np.random.default_rng(0)), params, plan


def test_every_noncore_image_has_exactly_k_participants_and_counts_balance():
    alloc, _, plan = _allocate(sites=2, participants_per_site=3, core=30,
                                    per_participant=130, overlap=3)
    assert alloc.members.shape == (plan.n_overlap_images, 3)
    assert all(len(set(m)) == 3 for m in alloc.members)
    counts = np.bincount(alloc.members.ravel(), minlength=6)
    assert counts.tolist() == [100] * 6
    assert np.unique(np.concatenate([alloc.core, alloc.overlap])).size == plan.n_distinct


def test_pairs_of_participants_share_similar_numbers():
    alloc, _, _ = _allocate(participants_per_site=5, core=0, per_participant=120, overlap=2,
                            min_session_repeats=0)
    shared = np.zeros((5, 5), int)
    for a, b in alloc.members:
        shared[a, b] += 1
    off = shared[np.triu_indices(5, 1)]
    assert np.abs(off - off.mean()).max() <= 1     # 120 x 5 / 2 = 300 images over 10 pairs


def test_prototype_mode_gives_each_group_a_neighbour_of_every_prototype():
    alloc, _, plan = _allocate(participants_per_site=4, core=20, per_participant=70,
                                    overlap=2, allocation="prototypes")
    assert plan.n_prototypes == 50 and alloc.overlap.size == 100
    for p in range(4):
        own = (alloc.members == p).any(axis=1)
        assert own.sum() == 50
        assert np.unique(alloc.prototype[own]).size == 50     # one image per prototype
    assert np.unique(alloc.overlap).size == alloc.overlap.size
    assert not np.isin(alloc.overlap, alloc.core).any()
