"""Task samplers: shapes, exclusions, determinism, and loading through dataset plugins."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("safetensors")

from conform_braincorl.loading import (  # noqa: E402
    feature_space_of,
    held_out_stimuli,
    load_subject_pools,
)
from conform_braincorl.tasks import (  # noqa: E402
    PriorTaskSampler,
    SubjectPool,
    SubjectTaskSampler,
    draw_batch,
    draw_validation,
)

from conform_core.exceptions import ParameterError, ShapeError  # noqa: E402


def _pool(name: str = "s1", n: int = 40, e: int = 6, v: int = 10, seed: int = 0,
          allowed=None) -> SubjectPool:
    rng = np.random.default_rng(seed)
    return SubjectPool.from_arrays(name, rng.normal(size=(n, e)), rng.normal(size=(n, v)),
                                   allowed=allowed, stimulus_ids=[f"im{i:03d}" for i in range(n)])


def test_pool_normalises_embeddings_keeps_allowed_and_drops_nan_voxels():
    rng = np.random.default_rng(0)
    x, y = 3 * rng.normal(size=(20, 4)), rng.normal(size=(20, 5))
    y[3, 1] = np.nan  # voxel 1 not measured at an allowed stimulus: dropped
    y[0, 2] = np.nan  # voxel 2 not measured at a left-out stimulus: kept
    allowed = np.arange(20) != 0
    pool = SubjectPool.from_arrays("s", x, y, allowed=allowed)
    assert pool.n_stimuli == 19 and pool.n_voxels == 4 and pool.n_dropped_voxels == 1
    np.testing.assert_allclose(np.linalg.norm(pool.embeddings, axis=1), 1, atol=1e-6)
    assert pool.normalized and pool.embeddings.dtype == np.float32
    assert "0" not in pool.stimulus_ids.tolist()


def test_pool_refuses_mismatched_rows_and_nan_features():
    rng = np.random.default_rng(0)
    with pytest.raises(ShapeError, match="one row per stimulus"):
        SubjectPool.from_arrays("s", rng.normal(size=(5, 3)), rng.normal(size=(6, 2)))
    x = rng.normal(size=(5, 3))
    x[1, 1] = np.nan
    with pytest.raises(ShapeError, match="embeddings of subject 's'"):
        SubjectPool.from_arrays("s", x, rng.normal(size=(5, 2)))


def test_subject_tasks_have_disjoint_context_and_query_from_allowed_stimuli():
    allowed = np.arange(40) % 4 != 0
    pool = _pool(allowed=allowed)
    batch = SubjectTaskSampler([pool]).sample(np.random.default_rng(1), 16, 9, 5)
    assert batch.context_x.shape == (16, 9, 6) and batch.context_y.shape == (16, 9)
    assert batch.query_x.shape == (16, 5, 6) and batch.query_y.shape == (16, 5)
    rows = {tuple(np.round(r, 6)) for r in pool.embeddings}
    for t in range(16):
        ctx = {tuple(np.round(r, 6)) for r in batch.context_x[t]}
        qry = {tuple(np.round(r, 6)) for r in batch.query_x[t]}
        assert len(ctx) == 9 and len(qry) == 5 and not ctx & qry  # no image twice in a task
        assert ctx | qry <= rows  # only allowed stimuli


def test_subject_task_responses_belong_to_one_voxel():
    pool = _pool(n=30, v=4)
    batch = SubjectTaskSampler([pool]).sample(np.random.default_rng(3), 8, 6, 4)
    for t in range(8):
        x = np.concatenate([batch.context_x[t], batch.query_x[t]])
        y = np.concatenate([batch.context_y[t], batch.query_y[t]])
        rows = [int(np.argmin(np.abs(pool.embeddings - r).sum(axis=1))) for r in x]
        matches = [np.allclose(pool.responses[rows, v], y) for v in range(pool.n_voxels)]
        assert sum(matches) == 1


def test_draw_batch_is_a_pure_function_of_seed_stage_and_step():
    sampler = SubjectTaskSampler([_pool("a"), _pool("b", seed=1)])
    kw = dict(n_tasks=8, context=(3, 12), n_query=4)
    one = draw_batch(sampler, seed=5, stage=1, step=7, **kw)
    two = draw_batch(sampler, seed=5, stage=1, step=7, **kw)
    for name in ("context_x", "context_y", "query_x", "query_y"):
        np.testing.assert_array_equal(getattr(one, name), getattr(two, name))
    other = draw_batch(sampler, seed=5, stage=2, step=7, **kw)
    assert not np.array_equal(one.query_y, other.query_y)
    sizes = {draw_batch(sampler, seed=0, stage=0, step=s, **kw).n_context for s in range(60)}
    assert min(sizes) >= 3 and max(sizes) <= 12 and len(sizes) > 5  # Uniform{lo..hi}


def test_validation_draw_is_fixed():
    sampler = SubjectTaskSampler([_pool()])
    a = draw_validation(sampler, seed=0, n_tasks=5, n_context=4, n_query=3)
    b = draw_validation(sampler, seed=0, n_tasks=5, n_context=4, n_query=3)
    np.testing.assert_array_equal(a.context_y, b.context_y)


def test_too_few_allowed_stimuli_names_the_subject_count_and_fix():
    sampler = SubjectTaskSampler([_pool("big", n=60), _pool("small", n=20)])
    with pytest.raises(ParameterError, match=r"'small' has 20 stimuli.*needs 25.*at most 20"):
        sampler.check_capacity(25)


def test_prior_tasks_are_linear_readouts_plus_noise():
    rng = np.random.default_rng(0)
    e = 5
    mean, cov = rng.normal(size=e + 1), np.eye(e + 1) * 0.5
    prior = PriorTaskSampler(mean, cov, 0.0, rng.normal(size=(50, e)))
    batch = prior.sample(np.random.default_rng(1), 4, 10, 6)
    for t in range(4):  # without noise each task is exactly linear in the embeddings
        x = np.concatenate([batch.context_x[t], batch.query_x[t]])
        y = np.concatenate([batch.context_y[t], batch.query_y[t]])
        design = np.hstack([x, np.ones((16, 1))])
        coef = np.linalg.lstsq(design, y, rcond=None)[0]
        np.testing.assert_allclose(design @ coef, y, atol=1e-4)
    noisy = PriorTaskSampler(mean, np.zeros((e + 1, e + 1)), 4.0, rng.normal(size=(500, e)))
    b = noisy.sample(np.random.default_rng(2), 200, 100, 1)
    residual = b.context_y - (np.einsum("tke,e->tk", b.context_x, mean[:e]) + mean[e])
    assert residual.var() == pytest.approx(4.0, rel=0.05)


def test_prior_from_pools_recovers_the_population_of_readouts():
    """Ridge readouts of low-noise linear voxels: the prior's mean and spread follow them."""
    rng = np.random.default_rng(0)
    e, n = 4, 400
    true_mean = np.array([1.0, -0.5, 0.0, 0.5, 2.0])
    pools = []
    for s in range(2):
        x = rng.normal(size=(n, e))
        xn = x / np.linalg.norm(x, axis=1, keepdims=True)
        w = true_mean + 0.3 * rng.normal(size=(200, e + 1))
        y = xn @ w[:, :e].T + w[:, e] + 0.05 * rng.normal(size=(n, 200))
        pools.append(SubjectPool.from_arrays(f"s{s}", x, y, stimulus_ids=[f"{s}-{i}" for i in
                                                                          range(n)]))
    prior = PriorTaskSampler.from_pools(pools)
    np.testing.assert_allclose(prior.mean, true_mean, atol=0.1)
    assert np.trace(prior.cov) == pytest.approx(0.09 * (e + 1), rel=0.35)
    assert prior.noise_var == pytest.approx(0.05**2, rel=0.5)
    assert prior.max_images == 2 * n  # the union of the subjects' stimuli


def _synthetic(**params):
    from conform_core.plugins import default_registry

    base = dict(n_subjects=3, n_units=20, n_stimuli=60, n_features=8, n_latent=2,
                random_state=0)
    base.update(params)
    return default_registry().get("dataset", "synthetic")(**base)


def _precomputed():
    from conform_core.plugins import default_registry

    return default_registry().get("features", "precomputed")()


def test_load_subject_pools_leaves_out_every_test_stimulus_by_default():
    dataset = _synthetic(stimuli_per_subject=20, n_shared=10)  # subjects see different stimuli
    pools, excluded = load_subject_pools(dataset, _precomputed(), ["sub-01", "sub-02"])
    tests = set()
    for name in dataset.subjects():
        tests |= set(dataset.load_subject(name).test_ids.tolist())
    assert excluded == sorted(tests)
    for name, pool in pools.items():
        assert not set(pool.stimulus_ids.tolist()) & tests
        shown = set(dataset.load_subject(name).trials.stimulus_ids.tolist())
        assert set(pool.stimulus_ids.tolist()) == shown - tests


def test_load_subject_pools_own_leaves_out_only_the_subjects_test_stimuli():
    dataset = _synthetic()
    pools, _ = load_subject_pools(dataset, _precomputed(), ["sub-01"], exclude="own")
    subject = dataset.load_subject("sub-01")
    assert set(pools["sub-01"].stimulus_ids.tolist()) == set(subject.train_ids.tolist())


def test_load_subject_pools_refuses_training_on_test_stimuli():
    with pytest.raises(ParameterError, match="leak"):
        load_subject_pools(_synthetic(), _precomputed(), ["sub-01"], exclude="none")


def test_held_out_stimuli_follow_conform_fits_fallback_split():
    from dataclasses import replace

    from conform_core.analysis.subject import _split  # the reference: conform fit's own rule

    subject = _synthetic().load_subject("sub-01")
    no_split = replace(subject, train_ids=None, test_ids=None)
    plan = type("P", (), {"seed": 3, "test_fraction": 0.25})()
    _, expected = _split(plan, no_split, no_split.trials)
    got = held_out_stimuli(no_split, split_seed=3, test_fraction=0.25)
    np.testing.assert_array_equal(got, np.sort(expected))
    np.testing.assert_array_equal(held_out_stimuli(subject), np.sort(subject.test_ids))


def test_feature_space_ids():
    from conform_baselines import PrecomputedFeatures

    class Own:
        feature_space_ = "mine:v1"

    class Fingerprinted:
        fingerprint_ = "f00"

    assert feature_space_of(_precomputed().fit(), "precomputed") == "precomputed"
    named = PrecomputedFeatures(space="clip:ViT-B-32:abc").fit()
    assert feature_space_of(named, "precomputed") == "clip:ViT-B-32:abc"
    assert feature_space_of(Own(), "anything") == "mine:v1"
    assert feature_space_of(Fingerprinted(), "dino") == "dino:f00"
    assert feature_space_of(object(), "unknown") == ""
