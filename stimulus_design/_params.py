"""Design parameters, their defaults, and the arithmetic that decides whether a design fits."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Literal

from conform_core.constraints import Boolean, Interval, Options, check_constraints
from conform_core.exceptions import ParameterError

__all__ = ["DesignParams", "Plan", "plan_design"]

Allocation = Literal["overlap", "prototypes"]


@dataclass(frozen=True)
class DesignParams:
    """Every number that shapes a study design (the CLI flags, in Python), checked on creation.

    Parameters
    ----------
    sites, participants_per_site : int
        Participants are numbered globally: sub-01 ... sub-(sites x participants_per_site).
    per_participant : int
        Distinct images each participant sees, core included.
    core : int
        Images every participant sees (the shared core).
    overlap : int
        Participants who see each non-core image.
    core_repeats, repeats : int
        Presentations per participant of each core / non-core image.
    sessions, runs : int
        Sessions per participant and runs per session.
    trials_per_run : int or None
        Slots per run (stimulus + null); default: the stimulus trials plus ``null_trials``.
    null_trials : int or None
        Blank trials per run; default: about 10% of the run, at least 2.
    stim_duration, iti : float
        Seconds an image is shown, and the blank after it (one slot = their sum).
    core_sessions : int or None
        The shared core is shown only in sessions 1..core_sessions (default ceil(sessions/3)).
    min_session_repeats : int
        Images shown twice within every session (GLMsingle cross-validates on them).
    allocation : {"overlap", "prototypes"}
        ``overlap``: balanced partial overlap; ``prototypes``: LAION-fMRI parallel forms.
    stratify : bool
        Select within categories, in proportion to their size.
    seed : int
        Seeds every random choice; same inputs and seed give a byte-identical package.
    """

    sites: int = 1
    participants_per_site: int = 4
    per_participant: int = 1000
    core: int = 200
    overlap: int = 2
    core_repeats: int = 3
    repeats: int = 1
    sessions: int = 1
    runs: int = 8
    trials_per_run: int | None = None
    null_trials: int | None = None
    stim_duration: float = 3.0
    iti: float = 1.0
    core_sessions: int | None = None
    min_session_repeats: int = 5
    allocation: Allocation = "overlap"
    stratify: bool = False
    seed: int = 0

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **{name: [Interval(int, 1, None)] for name in (
            "sites", "participants_per_site", "per_participant", "overlap", "core_repeats",
            "repeats", "sessions", "runs")},
        **{name: [Interval(int, 0, None)] for name in ("core", "min_session_repeats", "seed")},
        "trials_per_run": [Interval(int, 1, None), None],
        "null_trials": [Interval(int, 0, None), None],
        "core_sessions": [Interval(int, 1, None), None],
        "stim_duration": [Interval(float, 0, None, closed="neither")],
        "iti": [Interval(float, 0, None)],
        "allocation": [Options(("overlap", "prototypes"))],
        "stratify": [Boolean()],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "stim_duration": "It is the seconds each image is shown.",
        "iti": "It is the seconds of blank after each image.",
    }

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Check each value against ``_parameter_constraints`` (types, ranges, choices).

        Whether the values fit together (and into the pool) is :func:`plan_design`'s job.

        Raises
        ------
        ParameterError
            Naming the parameter (its Python name; ``conform design`` shows the flag).
        """
        check_constraints(self._parameter_constraints, self.to_dict(), owner="DesignParams",
                          fixes=self._parameter_fixes)

    @classmethod
    def names(cls) -> list[str]:
        """Return the parameter names."""
        return [f.name for f in fields(cls)]

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as a plain dict (for design.json)."""
        return asdict(self)

    @property
    def n_participants(self) -> int:
        """Number of participants over all sites."""
        return self.sites * self.participants_per_site


@dataclass(frozen=True)
class Plan:
    """The sizes derived from :class:`DesignParams` (all integers checked to fit)."""

    n_participants: int
    n_unique_per_participant: int
    n_overlap_images: int
    n_prototypes: int
    n_distinct: int
    presentations: int
    stim_per_run: int
    null_per_run: int
    trials_per_run: int
    core_sessions: int

    def to_dict(self) -> dict[str, int]:
        """Return the plan as a plain dict (for design.json)."""
        return asdict(self)


def _divisible_suggestion(p: DesignParams, n_part: int) -> str:
    ok = [n for n in range(max(p.core + 1, p.per_participant - 2 * p.overlap),
                           p.per_participant + 2 * p.overlap + 1)
          if (n_part * (n - p.core)) % p.overlap == 0]
    return f" Nearby values of $per_participant that work: {', '.join(map(str, ok[:4]))}." if ok else ""


def _error(message: str, param: str, p: DesignParams, fix: str = "") -> ParameterError:
    """Build the error for a broken rule between parameters (``message`` names them as ``$name``)."""
    return ParameterError(message, param=param, value=getattr(p, param), owner="DesignParams",
                          fix=fix)


def plan_design(p: DesignParams, n_pool: int) -> Plan:
    """Check that the design fits and return its sizes.

    Raises
    ------
    ParameterError
        With the arithmetic that fails: core larger than the pool or than the per-participant
        budget, overlap larger than the number of participants, slots that do not divide,
        more distinct images than the pool holds, more trials than slots.
    """
    p.check()
    n_part = p.n_participants
    if p.core > p.per_participant:
        raise _error(
            f"$core={p.core} is larger than $per_participant={p.per_participant}: the core is "
            "part of each participant's images.", "core", p,
            "Lower $core or raise $per_participant.")
    if p.core > n_pool:
        raise _error(f"$core={p.core} is larger than the pool of {n_pool} usable images.", "core",
                     p, "Lower $core or supply more images.")
    if p.overlap > n_part:
        raise _error(
            f"$overlap={p.overlap} is larger than the number of participants: $sites={p.sites} x "
            f"$participants_per_site={p.participants_per_site} = {n_part}.", "overlap", p,
            f"Use $overlap <= {n_part}, or add participants.")
    unique = p.per_participant - p.core
    if p.allocation == "prototypes":
        if n_part % p.overlap:
            raise _error(
                f"Prototype allocation splits the {n_part} participants into groups of "
                f"$overlap={p.overlap}, but {n_part} is not divisible by {p.overlap}.", "overlap",
                p, f"Choose an overlap that divides {n_part} (e.g. 1).")
        n_proto, n_over = unique, unique * (n_part // p.overlap)
    else:
        if (n_part * unique) % p.overlap:
            raise _error(
                f"{n_part} participants x {unique} non-core images each ($per_participant="
                f"{p.per_participant} - $core={p.core}) = {n_part * unique} slots, which is not "
                f"divisible by $overlap={p.overlap}, so not every non-core image can be seen by "
                f"exactly {p.overlap} participants.", "overlap", p,
                _divisible_suggestion(p, n_part).strip())
        n_proto, n_over = 0, n_part * unique // p.overlap
    n_distinct = p.core + n_over
    if n_distinct > n_pool:
        what = (f"{p.core} core + {unique} prototypes x {n_part // p.overlap} neighbours"
                if p.allocation == "prototypes" else
                f"{p.core} core + {n_part} x {unique} / {p.overlap} non-core")
        raise _error(
            f"The design needs {what} = {n_distinct} distinct images, but the pool has only "
            f"{n_pool} usable images.", "per_participant", p,
            "Lower $per_participant, $core or the number of participants, raise $overlap, or "
            "supply a larger pool.")
    presentations = p.core * p.core_repeats + unique * p.repeats
    n_runs = p.sessions * p.runs
    stim = math.ceil(presentations / n_runs)
    nulls = p.null_trials if p.null_trials is not None else max(2, round(0.1 * stim))
    if p.trials_per_run is not None:
        if stim + nulls > p.trials_per_run:
            raise _error(
                f"Each participant has {p.core} x {p.core_repeats} + {unique} x {p.repeats} = "
                f"{presentations} presentations over $sessions={p.sessions} x $runs={p.runs} = "
                f"{n_runs} runs, so {stim} stimulus trials per run, plus {nulls} null trials = "
                f"{stim + nulls} > $trials_per_run={p.trials_per_run}.", "trials_per_run", p,
                "Add sessions or runs, lower the repeats, or allow longer runs.")
        total = p.trials_per_run
    else:
        total = stim + nulls
    window = p.core_sessions if p.core_sessions is not None else math.ceil(p.sessions / 3)
    if window > p.sessions:
        raise _error(f"$core_sessions={window} is larger than $sessions={p.sessions}.",
                     "core_sessions", p, "Lower $core_sessions, or add sessions.")
    window_slots = _slots_in_first_sessions(presentations, p.sessions, p.runs, window)
    if p.core * p.core_repeats > window_slots:
        raise _error(
            f"The core needs {p.core} x {p.core_repeats} = {p.core * p.core_repeats} "
            f"presentations in sessions 1-{window}, which hold only {window_slots} stimulus "
            "trials.", "core_sessions", p, "Raise $core_sessions, lower $core or $core_repeats.")
    _check_session_repeats(p, window, unique)
    return Plan(n_part, unique, n_over, n_proto, n_distinct, presentations, stim,
                total - stim, total, window)


def _slots_in_first_sessions(presentations: int, sessions: int, runs: int, window: int) -> int:
    n_runs = sessions * runs
    base, extra = divmod(presentations, n_runs)
    return base * runs * window + min(extra, runs * window)


def _check_session_repeats(p: DesignParams, window: int, unique: int) -> None:
    need = p.min_session_repeats
    if need == 0:
        return
    core_pairs = p.core if p.core_repeats >= 2 else 0
    other_pairs = unique if p.repeats >= 3 else (unique // 2 if p.repeats == 2 else 0)
    late = (other_pairs // p.sessions) if p.sessions > window else None
    early = core_pairs // window + other_pairs // p.sessions
    if early < need or (late is not None and late < need):
        where = f"sessions {window + 1}-{p.sessions}" if late is not None and late < need \
            else f"sessions 1-{window}"
        raise _error(
            f"GLMsingle needs images repeated within every session ($min_session_repeats="
            f"{need}), but {where} would have only {late if late is not None and late < need else early}: "
            f"the core ({core_pairs} images with a within-session pair) is shown in sessions "
            f"1-{window} and {other_pairs} non-core images have a pair (non-core images get one "
            "with $repeats=3 or more, half of them with $repeats=2).", "min_session_repeats", p,
            "Raise $repeats or $core, set $core_sessions to $sessions, or lower "
            "$min_session_repeats.")
