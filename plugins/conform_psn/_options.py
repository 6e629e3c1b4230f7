"""Presets and options of ``psn`` and ``psn_cv``: parsing, defaults and constraint tables.

Call forms (as upstream): ``psn(data)``, ``psn(data, "preset")``, ``psn(data, opt)``,
``psn(data, "preset", opt)``, ``psn(data, opt={...})`` and keyword options. Keywords
override the options dict, which overrides the preset. ``shared/docs/psn_gsn.md``
section 3.1-3.2 lists every rule reproduced here.

Every option is declared once, in :data:`PSN_CONSTRAINTS` (current API) or
:data:`LEGACY_CONSTRAINTS` (cross-validated API); :mod:`conform_core.constraints`
checks a user's options against them (names, with close matches, then values). Only the
rules between options, and those that need the number of units, are written out here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from conform_core.constraints import (
    Boolean,
    InstanceOf,
    Interval,
    IsCallable,
    Options,
    check_constraints,
)
from conform_core.exceptions import ParameterError

from ._bases import BASIS_NAMES
from ._validation import IGNORED, NpzPath, Preset, WholeNumbers

__all__ = ["PRESETS", "CV_PRESETS", "PRESET", "PSN_CONSTRAINTS", "PSN_FIXES",
           "LEGACY_CONSTRAINTS", "LEGACY_FIXES", "V_CONSTRAINTS", "V_FIX", "parse_call",
           "resolve_options", "check_call"]

PRESETS: dict[str, dict[str, Any]] = {
    "standard": {"basis": "signal", "criterion": "max-tradeoff", "threshold_method": "global"},
    "conservative": {"basis": "signal", "criterion": "variance", "threshold_method": "global",
                     "variance_threshold": 0.99},
    "aggressive": {"basis": "difference", "criterion": "prediction",
                   "threshold_method": "global"},
    "compare": {"basis": "compare", "criterion": "max-tradeoff", "threshold_method": "global"},
    "wiener": {"criterion": "wiener"},
}
PRESETS["default"] = PRESETS["standard"]
CV_PRESETS = ("cv", "legacy")
"""Presets that select the cross-validated (legacy) API."""
PRESET = Preset((*PRESETS, *CV_PRESETS))
"""A preset name (case-insensitive)."""

CRITERIA = ("prediction", "max-tradeoff", "variance", "variance_eigenvalues", "wiener")
RANKINGS = ("eigenvalue", "eigenvalue_asc", "signal_variance", "snr", "snd",
            "signal_specificity")
_FLAG = [Boolean(), Options((0, 1))]

PSN_CONSTRAINTS: dict[str, list[Any]] = {
    "basis": [Options((*BASIS_NAMES, "compare", "wiener")),
              InstanceOf(np.ndarray, "an ndarray of shape (n_units, D)")],
    "criterion": [Options(CRITERIA)],
    "threshold_method": [Options(("global", "hybrid"))],
    "basis_ordering": [Options(("eigenvalues", "signalvariance", "prediction"))],
    "variance_threshold": [Interval(float, 0, 1)],
    "alpha": [Interval(float, 0, 1), None],
    "allowable_thresholds": [WholeNumbers("a non-negative integer or a non-empty 1-D list of "
                                          "them"), None],
    "unit_groups": [WholeNumbers("a 1-D list of non-negative integers (one group label per "
                                 "unit)", scalar_ok=False, min_size=0), None],
    "basis_eigenvalues": [InstanceOf((np.ndarray, list, tuple), "a 1-D array of eigenvalues"),
                          None],
    "gsn_result": [InstanceOf(dict, "a dict from a previous result's 'gsn_result'"), NpzPath(),
                   None],
    "gsn_args": [InstanceOf(dict, "a dict of perform_gsn options"), None],
    "device": [Options(("cpu", "auto")), None],
    "skip_split_half": _FLAG,
    "covariance": [Options(("full", "lowrank"))],
    "rank": [Interval(int, 1, None), None],
    "wantfig": [IGNORED],
    "wantverbose": [IGNORED],
    "figurepath": [IGNORED],
    "cmap": [IGNORED],
    "split_half_metric": [IGNORED],
}
"""Every option of :func:`psn` (current API), and what its value may be."""

PSN_FIXES: dict[str, str] = {
    "basis": "Pass a basis name, or basis vectors in the columns of an (n_units, D) matrix.",
    "variance_threshold": "It is the fraction of signal variance to keep.",
    "alpha": "0 keeps the prediction peak, 1 every dimension; None turns interpolation off.",
    "allowable_thresholds": "They are numbers of dimensions to keep.",
    "unit_groups": "Give one group label per unit (used by hybrid thresholds).",
    "gsn_result": "Pass a previous result's 'gsn_result', or a .npz file written from it with "
                  "np.savez(path, **result['gsn_result']).",
    "gsn_args": "Pass e.g. $gsn_args={'wantshrinkage': False}.",
    "device": "conform_psn runs on the CPU; use $device='cpu'.",
    "covariance": "Use 'full' (exact units x units covariances, up to a few thousand units) "
                  "or 'lowrank' (low rank plus diagonal, any number of units).",
    "rank": "It is the number of subspace directions of covariance='lowrank'; None takes "
            "the default (100).",
}

V_CONSTRAINTS: list[Any] = [Interval(int, 0, 5), InstanceOf(np.ndarray, "an (n_units, D) array"),
                            None]
"""The basis code ``V`` of :func:`psn_cv`."""
V_FIX = ("Use 0 (signal), 1 (whitened-signal), 2 (noise), 3 (pca), 4 (random), 5 (ica), or put "
         "basis vectors in the columns of an (n_units, D) array.")

LEGACY_CONSTRAINTS: dict[str, list[Any]] = {
    "V": V_CONSTRAINTS,
    "cv_mode": [Options((0, 1, -1, 2))],
    "cv_threshold_per": [Options(("unit", "population"))],
    "cv_thresholds": [WholeNumbers("non-negative integers in strictly increasing order",
                                   increasing=True)],
    "cv_scoring_fn": [IsCallable()],
    "unit_groups": PSN_CONSTRAINTS["unit_groups"],
    "truncate": [Interval(int, 0, None)],
    "mag_frac": [Interval(float, None, None)],
    "mag_type": [IGNORED],
    "denoisingtype": [Options((0, 1))],
    "ranking": [Options(RANKINGS)],
    "wantfig": [IGNORED],
    "wantverbose": [IGNORED],
}
"""Every option of :func:`psn_cv` (the cross-validated API), and what its value may be."""

LEGACY_FIXES: dict[str, str] = {
    "V": V_FIX,
    "cv_mode": "Use 0 (leave one trial out), 1 (keep one in), -1 (magnitude fraction) or 2 "
               "(analytic).",
    "cv_scoring_fn": "Pass a function (test, pred) -> scores.",
    "unit_groups": PSN_FIXES["unit_groups"],
    "denoisingtype": "Use 0 (denoise the trial average) or 1 (every trial).",
}

_WIENER_CONFLICTS = ("basis", "basis_eigenvalues", "criterion", "threshold_method",
                     "basis_ordering", "allowable_thresholds", "variance_threshold", "alpha",
                     "unit_groups")


def parse_call(preset_or_opt: Any, opt: Any, options: dict[str, Any]
               ) -> tuple[str | None, dict[str, Any]]:
    """Return ``(preset, user_options)`` from the flexible call forms.

    ``preset_or_opt`` (a preset or a dict, or None) and ``opt`` (a dict or None) have been
    checked against their declarations (``psn``'s :func:`validate_params`).

    Raises
    ------
    ParameterError
        If the options dict is given twice (positionally and as ``opt``).
    """
    preset = None
    merged: dict[str, Any] = {}
    if isinstance(preset_or_opt, str):
        preset = preset_or_opt.lower()
    elif isinstance(preset_or_opt, dict):
        if opt is not None:
            raise ParameterError(
                "psn takes the options dict once; got one as $preset_or_opt and one as $opt.",
                param="opt", value=opt, owner="psn",
                fix="Merge them into one dict, or pass a preset name as $preset_or_opt.")
        merged.update(preset_or_opt)
    if opt is not None:
        merged.update(opt)
    merged.update(options)
    return preset, merged


def _is_wiener(preset: str | None, user: dict[str, Any]) -> bool:
    return (preset == "wiener" or user.get("criterion") == "wiener"
            or (isinstance(user.get("basis"), str) and user.get("basis") == "wiener"))


def check_call(preset_or_opt: Any, opt: Any, options: dict[str, Any]) -> None:
    """Validate a ``psn`` call's preset and options without the data.

    Everything :func:`resolve_options` (or, for the ``"cv"`` preset, ``psn_cv``) checks
    except what needs the number of units (the length of ``unit_groups``), plus the
    ``gsn_args`` that GSN would reject; ``PSNDenoiser.check_params`` runs it.

    Raises
    ------
    ParameterError
        As :func:`resolve_options`.
    """
    preset, user = parse_call(preset_or_opt, opt, options)
    if preset in CV_PRESETS:
        from ._legacy import _resolve

        user = dict(user)
        _resolve(user.pop("V", 0), user, None)
        return
    resolved = resolve_options(preset, user, None)
    if isinstance(resolved["gsn_args"], dict):
        from ._gsn import _resolve_options as _gsn_options

        _gsn_options(dict(resolved["gsn_args"]))


def resolve_options(preset: str | None, user: dict[str, Any], n_units: int | None
                    ) -> dict[str, Any]:
    """Merge preset, user options and defaults; validate everything.

    With ``n_units=None`` (no data yet) the length of ``unit_groups`` is not checked
    and ``unit_groups`` is left as given.

    Raises
    ------
    ParameterError
        For unknown names (with suggestions; an option of the cross-validated API says
        so), values outside their declarations (:data:`PSN_CONSTRAINTS`), and the
        combinations upstream rejects (Wiener with basis/threshold options,
        'variance_eigenvalues' with a random/custom basis or hybrid thresholds).
    """
    legacy = [k for k in user if k in LEGACY_CONSTRAINTS and k not in PSN_CONSTRAINTS]
    if legacy:
        raise ParameterError(
            f"${legacy[0]} is an option of psn's cross-validated API, not of the current one.",
            param=legacy[0], value=user[legacy[0]], owner="psn",
            fix="Call psn(data, 'cv', ...) to use it, or remove it.")
    check_constraints(PSN_CONSTRAINTS, user, owner="psn", fixes=PSN_FIXES, reject_unknown=True)
    if _is_wiener(preset, user):
        conflicts = [k for k in _WIENER_CONFLICTS if k in user
                     and not (k == "criterion" and user[k] == "wiener")
                     and not (k == "basis" and isinstance(user[k], str) and user[k] == "wiener")]
        if conflicts:
            given = ", ".join(f"{k}={user[k]!r}" for k in conflicts)
            raise ParameterError(
                "The Wiener filter (preset or $criterion 'wiener') is basis-free and keeps every "
                "dimension, so psn takes no basis, criterion or threshold options with it.",
                param=conflicts[0], value=user[conflicts[0]], owner="psn",
                fix=f"Remove: {ParameterError.quote(given)}.")
    opt: dict[str, Any] = {
        "basis": "signal", "criterion": "max-tradeoff", "threshold_method": "global",
        "basis_ordering": "eigenvalues", "variance_threshold": 0.99, "alpha": None,
        "allowable_thresholds": None, "basis_eigenvalues": None, "gsn_result": None,
        "gsn_args": {}, "device": "cpu", "skip_split_half": False, "wantfig": False,
        "wantverbose": False, "figurepath": None, "cmap": None,
        "split_half_metric": "correlation", "covariance": "full", "rank": None,
    }
    opt.update(PRESETS.get(preset or "standard", {}))
    opt.update(user)
    if isinstance(opt["basis"], str) and opt["basis"] == "wiener":
        opt["criterion"] = "wiener"
        opt["basis"] = "signal"
    _apply_rules(opt, n_units)
    return opt


def _apply_rules(opt: dict[str, Any], n_units: int | None) -> None:
    """Check the rules between options, and ``unit_groups`` against the number of units."""
    basis, criterion, method = opt["basis"], opt["criterion"], opt["threshold_method"]
    allow = opt["allowable_thresholds"]
    if allow is not None and np.asarray(allow).size == 1 and method != "global":
        opt["threshold_method"] = method = "global"
    groups = opt.get("unit_groups")
    if groups is None or method == "global":
        if n_units is not None:
            opt["unit_groups"] = (np.zeros(n_units, dtype=int) if method == "global"
                                  else np.arange(n_units))
    elif n_units is not None:
        arr = np.asarray(groups)
        if arr.shape != (n_units,):
            raise ParameterError(
                param="unit_groups", value=groups, owner="psn",
                allowed=f"{n_units} non-negative integers (one group label per unit)",
                fix="Give one label per unit, in the order of the data's units.")
        opt["unit_groups"] = arr.astype(int)
    _check_lowrank(opt)
    if criterion == "variance_eigenvalues":
        if isinstance(basis, np.ndarray) or basis == "random":
            raise ParameterError(
                "$criterion='variance_eigenvalues' needs basis eigenvalues, which a random or "
                "custom basis lacks.", param="criterion", value=criterion, owner="psn",
                fix="Use $criterion='variance' instead.")
        if method == "hybrid":
            raise ParameterError(
                "$criterion='variance_eigenvalues' works only with $threshold_method='global'.",
                param="criterion", value=criterion, owner="psn",
                fix="Use $criterion='variance' for hybrid thresholds.")


def _check_lowrank(opt: dict[str, Any]) -> None:
    """``rank`` needs ``covariance='lowrank'``, which refuses hybrid and custom bases."""
    if opt["covariance"] != "lowrank":
        if opt["rank"] is not None:
            raise ParameterError(
                "$rank sets the subspace of low-rank covariances, but $covariance is "
                f"{opt['covariance']!r}.", param="rank", value=opt["rank"], owner="psn",
                fix="Add $covariance='lowrank', or remove $rank.")
        return
    if opt["threshold_method"] == "hybrid":
        raise ParameterError(
            "$covariance='lowrank' thresholds globally: per-unit (hybrid) thresholds need "
            "the units x units basis it avoids.", param="threshold_method",
            value="hybrid", owner="psn",
            fix="Use $threshold_method='global', or $covariance='full' on fewer units.")
    if isinstance(opt["basis"], np.ndarray):
        raise ParameterError(
            "$covariance='lowrank' builds its basis in its own subspace, so it takes a basis "
            "name, not basis vectors.", param="basis", value=opt["basis"], owner="psn",
            fix="Pass a basis name such as $basis='signal', or $covariance='full'.")
