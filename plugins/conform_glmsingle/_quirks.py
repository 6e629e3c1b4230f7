"""Official-package behaviour that ``quirks="official"`` reproduces, with a warning each.

``quirks="official"`` (the default of ``GLM_single``) reproduces the official package's
numbers, including where its code departs from its own documentation; ``"fixed"`` (the
default of the denoiser) does what the documentation says. Most quirks are a line where
they act (see docs/glmsingle.md, "Differences from the official package"); the ones here
need a warning because they change results a user would not expect:

* **no repeats**: when no condition occurs in more than one run (one run included), the
  official package switches GLMdenoise off unless ``pcstop <= 0`` and ridge off unless
  ``fracs`` is a single value, so types C and D are not computed, with a warning. Under
  ``"fixed"`` such a design is refused when C or D needs cross-validation.
* **LSS nuisance**: the official least-squares-separate fit of type B fits each run alone
  and, doing so, uses run 0's polynomial degree and run 0's extra regressors in every run.
  Under ``"fixed"`` every run keeps its own.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ConformWarning

if TYPE_CHECKING:
    from ._design import TrialLayout
    from ._options import Options

__all__ = ["OfficialQuirkWarning", "apply_no_repeats", "lss_nuisance_sources"]


class OfficialQuirkWarning(ConformWarning):
    """The official package's behaviour was reproduced (``quirks="official"``) and it matters.

    Each message names the quirk, what it changes and how to avoid it. Silence it with
    ``warnings.filterwarnings("ignore", category=OfficialQuirkWarning)``.
    """


def apply_no_repeats(layout: TrialLayout, opts: Options, *, skip_xval: bool) -> None:
    """Switch GLMdenoise and ridge off, or refuse, when no condition repeats across runs.

    ``opts`` (this fit's own copy) is changed in place, as the official package changes its
    options (``DESIGNINFO['params']`` shows the switched flags).

    Raises
    ------
    ParameterError
        With ``quirks="fixed"``, when the fit would need cross-validation.
    """
    if skip_xval or max(layout.condinruns) > 1:
        return
    pcs_cv = bool(opts["wantglmdenoise"]) and opts["pcstop"] > 0
    ridge_cv = bool(opts["wantfracridge"]) and opts.fracs.size > 1
    if not (pcs_cv or ridge_cv):
        return
    why = ("there is a single run" if layout.n_runs < 2
           else "no condition occurs in more than one run")
    fix = ("fix the number of PCs (pcstop=-K) and the ridge fraction (fracs=[f]) to skip "
           "cross-validation, or present conditions in several runs")
    if opts["quirks"] != "official":
        from ._design import check_run_count_for_xval

        check_run_count_for_xval(layout, True)
    off = []
    if pcs_cv:
        opts.raw["wantglmdenoise"] = 0
        off.append("GLMdenoise (wantglmdenoise=0: no type C)")
    if ridge_cv:
        opts.raw["wantfracridge"] = 0
        off.append("ridge regression (wantfracridge=0: no type D)")
    warnings.warn(
        f"Cross-validation needs conditions repeated across runs, but {why}. As the official "
        f"package does, {' and '.join(off)} {'is' if len(off) == 1 else 'are'} switched off "
        "and only the other types are "
        f"returned. To get types C and D, {fix}.",
        OfficialQuirkWarning, stacklevel=6)


def _same_extras(a: NDArray[np.float64] | None, b: NDArray[np.float64] | None) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return a.shape == b.shape and bool(np.array_equal(a, b))


def lss_nuisance_sources(n_times: list[int], degrees: list[int],
                         extras: list[NDArray[np.float64] | None]
                         ) -> tuple[list[tuple[int, NDArray[np.float64] | None]], list[int]]:
    """Per run, the (polynomial degree, extra regressors) the official LSS fit uses.

    That is run 0's degree and run 0's extra regressors in every run (run ``r``'s own extra
    regressors when run 0's have another length: the official package crashes there).
    Returns them with the runs whose own nuisance differs from that (warns when any does).
    """
    out: list[tuple[int, NDArray[np.float64] | None]] = []
    differ = []
    for r, (n_t, deg, ex) in enumerate(zip(n_times, degrees, extras)):
        ex0 = extras[0] if extras[0] is None or extras[0].shape[0] == n_t else ex
        out.append((degrees[0], ex0))
        if deg != degrees[0] or not _same_extras(ex, ex0):
            differ.append(r)
    if not differ:
        return out, differ
    warnings.warn(
        f"wantlss=1 with polynomial degrees or extra regressors that differ between runs: as "
        f"the official package does, the LSS betas of run(s) {differ} use run 0's polynomial "
        f"degree ({degrees[0]}) and run 0's extra regressors, not their own (their type-B "
        "extrabetas are NaN). Pass quirks='fixed' to give each run its own nuisance "
        "regressors.", OfficialQuirkWarning, stacklevel=6)
    return out, differ
