"""Why a unit's noise ceiling is 0 (and so why nc_r2 leaves it out)."""

from __future__ import annotations

import numpy as np

from conform_core.analysis.scores import CEILING_REASONS, ceiling_reasons
from conform_core.data import ConditionTrials
from conform_core.metrics import noise_ceiling_from_trials, normalized_r2


def _trials() -> ConditionTrials:
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(1, 8, 1)) * 3
    good = signal + rng.normal(size=(1, 8, 3))
    constant = np.full((1, 8, 3), 2.0)
    no_signal = np.tile(np.array([-1.0, 0.0, 1.0]), (1, 8, 1))  # every stimulus averages to 0
    single = good.copy()
    single[:, :, 1:] = np.nan  # one trial per stimulus: no repeats
    return ConditionTrials(np.concatenate([good, constant, no_signal, single]),
                           np.array([f"s{i}" for i in range(8)]))


def test_ceiling_reasons_name_each_case_of_ncsnr():
    trials = _trials()
    ceiling = noise_ceiling_from_trials(trials)
    reasons = ceiling_reasons(trials, ceiling)
    assert reasons.tolist() == ["", "zero_noise", "no_signal", "few_repeats"]
    assert set(reasons[1:]) <= set(CEILING_REASONS)


def test_ceiling_reasons_mark_exactly_the_units_nc_r2_leaves_out():
    trials = _trials()
    ceiling = noise_ceiling_from_trials(trials)
    left_out = np.isnan(normalized_r2(np.full(4, 0.3), ceiling))
    np.testing.assert_array_equal(ceiling_reasons(trials, ceiling) != "", left_out)
