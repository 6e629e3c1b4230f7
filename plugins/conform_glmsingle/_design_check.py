"""Which GLMsingle types a design supports, and why not: checked before any fit.

Types A (ON-OFF) and B (single trials, HRF library) need no repeats. Types C (GLMdenoise) and
D (fractional ridge) choose their hyper-parameters (number of noise PCs, ridge fraction per
unit) by cross-validation across runs: the betas of a held-out run's trial are compared with
the training runs' betas of the same condition. That needs at least one condition presented
in two runs that fall into different folds; repeats within one run do not count. The official
package then switches C and D off with a warning only; conform says so before fitting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["DesignReport", "TypeSupport", "check_design_support"]

_TYPES = "ABCD"


@dataclass(frozen=True)
class TypeSupport:
    """Whether one type can be estimated, and why (not)."""

    type: str
    supported: bool
    reason: str


@dataclass(frozen=True)
class DesignReport:
    """What a design holds and which GLMsingle types it supports.

    Attributes
    ----------
    conditions : tuple of str
        Sorted condition labels.
    n_runs, n_sessions, n_trials : int
    trials_per_condition, runs_per_condition, sessions_per_condition : ndarray of int
        Per condition: trials, runs and sessions it occurs in.
    max_in_one_run : ndarray of int
        Per condition: the most trials it has in a single run.
    cv_trials : int
        Held-out trials that have a same-condition trial in the training runs of their fold
        (what the cross-validation of types C and D scores); 0 means it cannot run.
    types : dict of str to TypeSupport
        One entry per type A-D.
    requested : tuple of str
        The types asked for.
    notes : tuple of str
        Warnings that do not stop a type (e.g. sessions too small for z-scoring).
    """

    conditions: tuple[str, ...]
    n_runs: int
    n_sessions: int
    n_trials: int
    trials_per_condition: NDArray[np.int64]
    runs_per_condition: NDArray[np.int64]
    sessions_per_condition: NDArray[np.int64]
    max_in_one_run: NDArray[np.int64]
    cv_trials: int
    types: dict[str, TypeSupport]
    requested: tuple[str, ...]
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def unsupported(self) -> tuple[str, ...]:
        """The requested types the design cannot support."""
        return tuple(t for t in self.requested if not self.types[t].supported)

    @property
    def ok(self) -> bool:
        """True when every requested type is supported."""
        return not self.unsupported

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready summary (counts per condition left out)."""
        return {
            "n_conditions": len(self.conditions), "n_runs": self.n_runs,
            "n_sessions": self.n_sessions, "n_trials": self.n_trials,
            "conditions_repeated_within_a_run": int((self.max_in_one_run > 1).sum()),
            "conditions_repeated_across_runs": int((self.runs_per_condition > 1).sum()),
            "conditions_repeated_across_sessions": int((self.sessions_per_condition > 1).sum()),
            "single_trial_conditions": int((self.trials_per_condition == 1).sum()),
            "cv_trials": self.cv_trials, "requested": list(self.requested),
            "types": {t: {"supported": s.supported, "reason": s.reason}
                      for t, s in self.types.items()},
            "notes": list(self.notes), "ok": self.ok,
        }

    def render(self) -> str:
        """Plain-text report, as ``conform glmsingle`` prints it."""
        n = self.trials_per_condition
        lines = [
            f"Design: {len(self.conditions)} conditions, {self.n_trials} trials in "
            f"{self.n_runs} run(s), {self.n_sessions} session(s)",
            f"  trials per condition: median {np.median(n):g}, range {n.min()}-{n.max()}; "
            f"{int((n == 1).sum())} condition(s) with a single trial",
            f"  conditions repeated within a run: {int((self.max_in_one_run > 1).sum())}, across "
            f"runs: {int((self.runs_per_condition > 1).sum())}, across sessions: "
            f"{int((self.sessions_per_condition > 1).sum())}",
            f"  cross-validation: {self.cv_trials} held-out trial(s) have a same-condition trial "
            "in the other runs of their fold",
        ]
        for t in _TYPES:
            s = self.types[t]
            mark = "yes" if s.supported else "NO"
            asked = " (requested)" if t in self.requested else ""
            lines.append(f"  type {t}: {mark}{asked} - {s.reason}")
        lines.extend(f"  note: {note}" for note in self.notes)
        if not self.ok:
            lines.append(f"Requested type(s) {''.join(self.unsupported)} cannot be estimated "
                         "from this design (see above).")
        return "\n".join(lines)


def _folds(xvalscheme: Any, n_runs: int) -> list[NDArray[np.int64]]:
    from ._crossval import check_xvalscheme

    return check_xvalscheme(xvalscheme, n_runs)


def check_design_support(trial_labels: Sequence[Sequence[Any]], *,
                         sessions: Sequence[int] | None = None, requested: str = "ABCD",
                         params: dict[str, Any] | None = None) -> DesignReport:
    """Count the repeats of a design and say which types A-D it supports.

    Parameters
    ----------
    trial_labels : sequence of sequences
        Per run, the condition label of each trial (any hashable; compared as text).
    sessions : sequence of int or None, default=None
        Session of each run (None: one session).
    requested : str, default="ABCD"
        The types asked for (letters from ABCD).
    params : dict or None, default=None
        GLM_single options that decide whether C/D cross-validate: ``wantglmdenoise``,
        ``wantfracridge``, ``pcstop``, ``fracs``, ``xvalscheme`` (official defaults).

    Returns
    -------
    DesignReport
    """
    from ._options import check_options

    opts = check_options({k: v for k, v in (params or {}).items()
                          if k in ("wantglmdenoise", "wantfracridge", "pcstop", "fracs",
                                   "xvalscheme", "n_pcs", "wantlibrary")})
    runs = [np.asarray(r).astype(str).ravel() for r in trial_labels]
    n_runs = len(runs)
    sess = (np.zeros(n_runs, np.int64) if sessions is None
            else np.asarray(sessions, np.int64).ravel())
    names = np.unique(np.concatenate(runs)) if runs else np.array([], str)
    col = {c: i for i, c in enumerate(names.tolist())}
    counts = np.zeros((n_runs, names.size), np.int64)
    for r, lab in enumerate(runs):
        np.add.at(counts[r], [col[x] for x in lab.tolist()], 1)
    per_cond = counts.sum(axis=0)
    in_runs = (counts > 0).sum(axis=0)
    in_sessions = np.array([np.unique(sess[counts[:, c] > 0]).size for c in range(names.size)],
                           np.int64)
    folds = _folds(opts["xvalscheme"], n_runs) if n_runs else []
    cv = 0
    for held in folds:
        train = np.setdiff1d(np.arange(n_runs), held)
        has_train = counts[train].sum(axis=0) > 0
        cv += int(counts[held][:, has_train].sum())

    fracs = (np.linspace(1, 0.05, 20) if opts["fracs"] is None
             else np.unique(np.atleast_1d(np.asarray(opts["fracs"], np.float64))))
    why_not = _why_no_cv(n_runs, in_runs, cv, opts["xvalscheme"] is not None)
    types = {
        "A": TypeSupport("A", True, "ON-OFF model, needs no repeats"),
        "B": TypeSupport("B", True, "single trials with "
                         + ("the best library HRF per unit" if opts["wantlibrary"]
                            else "the assumed HRF (wantlibrary=0)") + ", needs no repeats"),
    }
    pcs_cv = bool(opts["wantglmdenoise"]) and opts["pcstop"] > 0
    ridge_cv = bool(opts["wantfracridge"]) and fracs.size > 1
    if not opts["wantglmdenoise"]:
        types["C"] = TypeSupport("C", True, "GLMdenoise is off: no noise PCs (type B's fit)")
    elif not pcs_cv:
        types["C"] = TypeSupport("C", True,
                                 f"{int(-opts['pcstop'])} noise PCs fixed (pcstop), no "
                                 "cross-validation needed")
    elif why_not is None:
        types["C"] = TypeSupport("C", True, "noise PC count chosen by cross-validation across "
                                 f"runs ({cv} held-out trials)")
    else:
        types["C"] = TypeSupport("C", False, f"the noise PC count is chosen by cross-validation, "
                                 f"but {why_not}. Fix: present conditions in several runs, or fix "
                                 "the PC count (option pcstop=-K; -o pcstop=-3 on the "
                                 "command line)")
    if ridge_cv and why_not is not None:
        types["D"] = TypeSupport("D", False, f"the ridge fraction is chosen by cross-validation, "
                                 f"but {why_not}. Fix: present conditions in several runs, or use "
                                 "a single fraction (option fracs=[f]; -o 'fracs=[0.5]' "
                                 "on the command line)")
    elif not types["C"].supported:
        types["D"] = TypeSupport("D", False, "builds on type C, which cannot be estimated")
    elif not opts["wantfracridge"]:
        types["D"] = TypeSupport("D", True, "ridge is off (wantfracridge=0): type C's betas")
    elif ridge_cv:
        types["D"] = TypeSupport("D", True, "ridge fraction per unit chosen by cross-validation "
                                 f"across runs ({cv} held-out trials)")
    else:
        types["D"] = TypeSupport("D", True, f"one ridge fraction ({fracs[0]:g}), no "
                                 "cross-validation needed")
    if (pcs_cv or ridge_cv) and why_not is not None:
        # the fit cross-validates as soon as any computed type needs it (make_context)
        for t in "CD":
            if types[t].supported and t in requested.upper():
                types[t] = TypeSupport(t, False, "the fit cross-validates for the other type, "
                                       f"but {why_not}")
    notes = []
    for s in np.unique(sess):
        n_s = int(counts[sess == s].sum())
        if n_s < 2 and n_runs > 1 and (pcs_cv or ridge_cv):
            notes.append(f"session {s} has {n_s} trial: its betas cannot be z-scored for the "
                         "cross-validation (they count as 0)")
    if names.size and (in_runs > 1).sum() and ((in_runs > 1).sum() < names.size):
        single = int((in_runs == 1).sum())
        notes.append(f"{single} condition(s) occur in one run only: they get betas but do not "
                     "inform the cross-validation")
    return DesignReport(
        conditions=tuple(names.tolist()), n_runs=n_runs, n_sessions=int(np.unique(sess).size),
        n_trials=int(per_cond.sum()), trials_per_condition=per_cond,
        runs_per_condition=in_runs, sessions_per_condition=in_sessions,
        max_in_one_run=counts.max(axis=0) if n_runs else per_cond, cv_trials=cv,
        types=types, requested=tuple(t for t in _TYPES if t in requested.upper()),
        notes=tuple(notes))


def _why_no_cv(n_runs: int, in_runs: NDArray[np.int64], cv: int, custom: bool) -> str | None:
    """Why the cross-validation cannot run (None when it can)."""
    if n_runs < 2:
        return "there is a single run (cross-validation holds out whole runs)"
    if not (in_runs > 1).any():
        return ("no condition occurs in more than one run (repeats within a run do not count: "
                "runs are held out whole)")
    if cv == 0:
        return ("with this xvalscheme no held-out trial has a same-condition trial in the "
                "training runs" if custom else "no held-out trial has a same-condition trial in "
                "the other runs")
    return None
