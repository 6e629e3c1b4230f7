"""The design check: which GLMsingle types a design supports, and that the fit agrees."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from conform_glmsingle import GLM_single
from conform_glmsingle._design_check import check_design_support

from conform_core.exceptions import ParameterError


def test_repeats_across_runs_support_every_type():
    rep = check_design_support([["a", "b", "a"], ["a", "c"]], sessions=[1, 2], requested="BD")
    assert rep.ok and all(s.supported for s in rep.types.values())
    assert rep.trials_per_condition.tolist() == [3, 1, 1]
    assert rep.runs_per_condition.tolist() == [2, 1, 1]
    assert rep.sessions_per_condition.tolist() == [2, 1, 1]
    assert rep.max_in_one_run.tolist() == [2, 1, 1]
    assert rep.cv_trials == 3  # the three "a" trials each have an "a" in the other run
    text = rep.render()
    assert "conditions repeated within a run: 1, across runs: 1, across sessions: 1" in text
    assert "type D: yes (requested)" in text


def test_repeats_within_runs_only_do_not_support_c_and_d_and_say_why():
    rep = check_design_support([["a", "b", "a"], ["c", "d", "c"]], requested="BD")
    assert not rep.ok and rep.unsupported == ("D",)
    assert rep.types["B"].supported and not rep.types["C"].supported
    assert "no condition occurs in more than one run" in rep.types["D"].reason
    assert "fracs=[f]" in rep.types["D"].reason
    assert "Requested type(s) D cannot be estimated" in rep.render()
    assert rep.to_dict()["types"]["D"]["supported"] is False
    # fixing the hyper-parameters removes the need for cross-validation
    fixed = check_design_support([["a", "b", "a"], ["c", "d", "c"]], requested="CD",
                                 params={"pcstop": -2, "fracs": [0.5]})
    assert fixed.ok


def test_single_run_and_custom_folds():
    assert check_design_support([["a", "a"]], requested="D").unsupported == ("D",)
    assert "single run" in check_design_support([["a", "a"]]).types["C"].reason
    # conditions repeat across runs 0 and 1, but both are held out together
    rep = check_design_support([["a"], ["a"], ["b"]], requested="C",
                               params={"xvalscheme": [[0, 1], [2]]})
    assert rep.cv_trials == 0 and not rep.ok
    assert "xvalscheme" in rep.types["C"].reason


def _design(per_run: list[list[int]], n_time: int = 60, n_cond: int = 4) -> list[np.ndarray]:
    out = []
    for conds in per_run:
        m = np.zeros((n_time, n_cond))
        m[np.arange(len(conds)) * 6 + 2, conds] = 1
        out.append(m)
    return out


@pytest.mark.parametrize("per_run", [[[0, 1, 0, 1], [2, 3, 2, 3]], [[0, 1, 2, 3], [1, 0, 3, 2]]])
def test_the_check_agrees_with_the_fit(per_run):
    """Supported means the fit returns type D; unsupported means it refuses (quirks="fixed")
    or leaves type D out with a warning (quirks="official", as the official package)."""
    from conform_glmsingle._quirks import OfficialQuirkWarning

    design = _design(per_run)
    rng = np.random.default_rng(0)
    data = [rng.normal(100, 1, size=(20, 60)).astype(np.float32) for _ in design]
    rep = check_design_support([[str(c) for c in run] for run in per_run], requested="D")
    params = {"wantmemoryoutputs": [0, 0, 0, 1], "verbose": False}
    fixed, official = GLM_single({**params, "quirks": "fixed"}), GLM_single(params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if rep.ok:
            assert "typed" in fixed.fit(design, data, 2.0, 2.0)
            assert "typed" in official.fit(design, data, 2.0, 2.0)
            return
        with pytest.raises(ParameterError, match="Cross-validation needs conditions"):
            fixed.fit(design, data, 2.0, 2.0)
    with pytest.warns(OfficialQuirkWarning, match="no type D"):
        assert official.fit(design, data, 2.0, 2.0) == {}
