"""Presets and options of ``psn``: parsing, defaults and validation.

Call forms (as upstream): ``psn(data)``, ``psn(data, "preset")``, ``psn(data, opt)``,
``psn(data, "preset", opt)``, ``psn(data, opt={...})`` and keyword options. Keywords
override the options dict, which overrides the preset. ``shared/docs/psn_gsn.md``
section 3.1-3.2 lists every rule reproduced here.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from conform_core.exceptions import ParameterError
from conform_core.validation import suggest

from ._bases import BASIS_NAMES
from ._validation import check_choice_option

__all__ = ["PRESETS", "PSN_OPTIONS", "LEGACY_OPTIONS", "parse_call", "resolve_options",
           "check_call"]

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

PSN_OPTIONS = ("basis", "criterion", "threshold_method", "basis_ordering",
               "variance_threshold", "alpha", "allowable_thresholds", "unit_groups",
               "basis_eigenvalues", "gsn_result", "gsn_args", "device", "skip_split_half",
               "wantfig", "wantverbose", "figurepath", "cmap", "split_half_metric")
LEGACY_OPTIONS = ("V", "cv_mode", "cv_threshold_per", "cv_thresholds", "cv_scoring_fn",
                  "unit_groups", "truncate", "mag_frac", "mag_type", "denoisingtype",
                  "ranking", "wantfig", "wantverbose")
CRITERIA = ("prediction", "max-tradeoff", "variance", "variance_eigenvalues", "wiener")
_WIENER_CONFLICTS = ("basis", "basis_eigenvalues", "criterion", "threshold_method",
                     "basis_ordering", "allowable_thresholds", "variance_threshold", "alpha",
                     "unit_groups")


def parse_call(preset_or_opt: Any, opt: Any, options: dict[str, Any]
               ) -> tuple[str | None, dict[str, Any]]:
    """Return ``(preset, user_options)`` from the flexible call forms."""
    preset = None
    merged: dict[str, Any] = {}
    if isinstance(preset_or_opt, str):
        preset = preset_or_opt.lower()
        if preset not in PRESETS and preset not in CV_PRESETS:
            names = [*PRESETS, *CV_PRESETS]
            raise ParameterError(
                f"psn: unknown preset {preset_or_opt!r}.{suggest(preset, names)} Presets: "
                f"{', '.join(repr(n) for n in names)}; or pass an options dict."
            )
    elif isinstance(preset_or_opt, dict):
        if opt is not None:
            raise ParameterError("psn: pass the options dict once (positionally or as opt=).")
        merged.update(preset_or_opt)
    elif preset_or_opt is not None:
        raise ParameterError(
            f"psn: the second argument must be a preset name or an options dict; got "
            f"{type(preset_or_opt).__name__}. Presets: {', '.join(PRESETS)}."
        )
    if opt is not None:
        if not isinstance(opt, dict):
            raise ParameterError(f"psn: opt must be a dict of options; got {type(opt).__name__}.")
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
        For unknown names (with suggestions), values outside their ranges, and the
        combinations upstream rejects (Wiener with basis/threshold options,
        'variance_eigenvalues' with a random/custom basis or hybrid thresholds).
    """
    unknown = [k for k in user if k not in PSN_OPTIONS]
    if unknown:
        name = unknown[0]
        hint = (" It belongs to the cross-validated API: call psn(data, 'cv', ...)."
                if name in LEGACY_OPTIONS else "")
        raise ParameterError(
            f"psn has no option {name!r}.{suggest(name, PSN_OPTIONS)}{hint} Options: "
            f"{', '.join(PSN_OPTIONS)}."
        )
    if _is_wiener(preset, user):
        conflicts = [f"{k}={user[k]!r}" for k in _WIENER_CONFLICTS if k in user
                     and not (k == "criterion" and user[k] == "wiener")
                     and not (k == "basis" and isinstance(user[k], str) and user[k] == "wiener")]
        if conflicts:
            raise ParameterError(
                "psn: the Wiener filter (preset/criterion 'wiener') is basis-free and keeps "
                "every dimension, so it takes no basis/criterion/threshold options. Remove: "
                + ", ".join(conflicts) + "."
            )
    opt: dict[str, Any] = {
        "basis": "signal", "criterion": "max-tradeoff", "threshold_method": "global",
        "basis_ordering": "eigenvalues", "variance_threshold": 0.99, "alpha": None,
        "allowable_thresholds": None, "basis_eigenvalues": None, "gsn_result": None,
        "gsn_args": {}, "device": "cpu", "skip_split_half": False, "wantfig": False,
        "wantverbose": False, "figurepath": None, "cmap": None,
        "split_half_metric": "correlation",
    }
    opt.update(PRESETS.get(preset or "standard", {}))
    opt.update(user)
    if isinstance(opt["basis"], str) and opt["basis"] == "wiener":
        opt["criterion"] = "wiener"
        opt["basis"] = "signal"
    _validate(opt, n_units)
    return opt


def _validate(opt: dict[str, Any], n_units: int | None) -> None:
    who = "psn"
    basis = opt["basis"]
    if isinstance(basis, str):
        check_choice_option(basis, (*BASIS_NAMES, "compare"), name="basis", who=who)
    elif not isinstance(basis, np.ndarray):
        raise ParameterError(
            f"psn: option 'basis' must be a name ({', '.join(BASIS_NAMES)}, 'compare') or "
            f"an ndarray of shape (n_units, D); got {type(basis).__name__}."
        )
    criterion = check_choice_option(opt["criterion"], CRITERIA, name="criterion", who=who)
    method = check_choice_option(opt["threshold_method"], ("global", "hybrid"),
                                 name="threshold_method", who=who)
    check_choice_option(opt["basis_ordering"], ("eigenvalues", "signalvariance", "prediction"),
                        name="basis_ordering", who=who)
    vt = opt["variance_threshold"]
    if (isinstance(vt, bool) or not isinstance(vt, numbers.Real) or not np.isfinite(vt)
            or not 0 <= vt <= 1):
        raise ParameterError(f"psn: 'variance_threshold' must be a number in [0, 1]; got {vt!r}.")
    alpha = opt["alpha"]
    if alpha is not None and (isinstance(alpha, bool) or not isinstance(alpha, numbers.Real)
                              or not np.isfinite(alpha) or not 0 <= alpha <= 1):
        raise ParameterError(f"psn: 'alpha' must be None or a number in [0, 1]; got {alpha!r}.")
    allow = opt["allowable_thresholds"]
    if allow is not None:
        arr = np.asarray(allow)
        if (arr.dtype.kind not in "iuf" or arr.ndim > 1 or arr.size == 0
                or not np.all(np.isfinite(arr)) or np.any(arr < 0)
                or not np.all(arr == np.floor(arr))):
            raise ParameterError(
                "psn: 'allowable_thresholds' must be a non-negative integer or a 1-D list of "
                f"them (numbers of dimensions to keep); got {allow!r}."
            )
        if arr.size == 1 and method != "global":
            opt["threshold_method"] = method = "global"
    groups = opt.get("unit_groups")
    if groups is None or method == "global":
        if n_units is not None:
            opt["unit_groups"] = (np.zeros(n_units, dtype=int) if method == "global"
                                  else np.arange(n_units))
    else:
        arr = np.asarray(groups)
        shape_ok = arr.ndim == 1 if n_units is None else arr.shape == (n_units,)
        if not shape_ok or arr.dtype.kind not in "iuf" or np.any(arr < 0) \
                or not np.all(arr == np.floor(arr)):
            raise ParameterError(
                f"psn: 'unit_groups' must be {'n_units' if n_units is None else n_units} "
                f"non-negative integers (one group label per unit); got {groups!r}."
            )
        if n_units is not None:
            opt["unit_groups"] = arr.astype(int)
    if criterion == "variance_eigenvalues":
        if isinstance(basis, np.ndarray) or basis == "random":
            raise ParameterError(
                "psn: criterion 'variance_eigenvalues' needs basis eigenvalues, which a random "
                "or custom basis lacks. Use criterion='variance' instead."
            )
        if method == "hybrid":
            raise ParameterError(
                "psn: criterion 'variance_eigenvalues' works only with threshold_method="
                "'global'. Use criterion='variance' for hybrid thresholds."
            )
    if opt["device"] not in ("cpu", "auto", None):
        raise ParameterError(
            f"psn: device={opt['device']!r} is not supported; conform_psn runs on the CPU."
        )
    if opt["gsn_args"] is not None and not isinstance(opt["gsn_args"], dict):
        raise ParameterError("psn: 'gsn_args' must be a dict of perform_gsn options.")
