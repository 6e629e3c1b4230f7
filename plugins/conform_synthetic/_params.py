"""The simulator's parameters, written once: one frozen record, validated when it is made.

Every other place that lists the simulator's settings is derived from the fields of
:class:`SimulationParams` (name, type, default and the ``help`` text of the field's
metadata): the signature and docstring of :func:`simulate_study`, the parameters of the
``synthetic`` dataset and the options of ``conform simulate``. Add or change a setting
here and all of them follow.
"""

from __future__ import annotations

import inspect
import math
import textwrap
import typing
from dataclasses import Field, asdict, dataclass, field, fields
from typing import Any, ClassVar

from conform_core.constraints import Boolean, Interval, check_constraints
from conform_core.exceptions import ParameterError

__all__ = ["OverlapAllocation", "SimulationParams"]

_OWNER = "simulate_study"

#: Lowest value of each integer setting.
_INT_LOW = {"n_subjects": 1, "n_units": 1, "n_stimuli": 1, "n_features": 1, "n_latent": 1,
            "n_repeats": 1, "noise_rank": 0, "trials_per_run": 1, "runs_per_session": 1}
#: Range of each real setting: (low, high, low excluded).
_FLOAT_RANGE: dict[str, tuple[float, float | None, bool]] = {
    "snr": (0.0, None, False), "snr_spread": (0.0, 3.0, False),
    "test_fraction": (0.0, 0.9, False), "missing_fraction": (0.0, 0.9, False),
    "noise_length_scale": (0.0, None, False), "lowrank_fraction": (0.0, 1.0, False),
    "spatial_fraction": (0.0, 1.0, False), "individual_differences": (0.0, 1.0, False),
    "nonlinearity": (0.0, 1.0, False), "tr": (0.0, 10.0, True),
    "stimdur": (0.0, None, True), "iti": (0.0, None, True),
    "null_fraction": (0.0, 0.9, False), "drift": (0.0, None, False),
    "timeseries_noise": (0.0, None, False), "motion": (0.0, None, False),
    "unit_dropout": (0.0, 0.9, False), "tuning_length_scale": (0.0, None, False),
    "misregistration": (0.0, None, False),
}


def _setting(default: Any, help: str) -> Any:
    """Declare a field with its default and its one help text (read by every interface)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class SimulationParams:
    """Every setting of the simulator, checked when the record is made.

    The one place the simulator's settings are written: :func:`simulate_study`'s
    signature, the ``synthetic`` dataset's parameters and the options of
    ``conform simulate`` are derived from these fields. ``SimulationParams(**kwargs)``
    raises :class:`~conform_core.exceptions.ParameterError` for a value out of range or
    sizes that do not fit together. ``random_state=None`` draws a fresh seed and
    ``n_shared=None`` becomes a third of ``n_stimuli`` (rounded; it stays None when
    ``stimulus_overlap`` decides the allocation instead), so a record reproduces its study
    exactly.
    """

    n_subjects: int = _setting(3, "Number of subjects.")
    n_units: int = _setting(
        100, "Units (voxels) of the unit sheet, a 2-D grid; every subject has all of them "
             "unless unit_dropout is set.")
    n_stimuli: int = _setting(120, "Stimuli in the study.")
    n_features: int = _setting(
        64, "Length of each stimulus feature vector (a stand-in for a CLIP embedding).")
    n_latent: int = _setting(8, "Dimension of the shared latent tuning.")
    n_repeats: int = _setting(
        3, "Trials per stimulus and subject (before the missing fraction is dropped).")
    snr: float = _setting(
        1.0, "Median over units of the single-trial signal sd / noise sd (>= 0).")
    snr_spread: float = _setting(0.5, "Sd of the log per-unit SNR around the median SNR.")
    n_shared: int | None = _setting(
        None, "Stimuli every subject sees (unset: a third of the stimuli, rounded).")
    stimuli_per_subject: int | None = _setting(
        None, "Stimuli each subject sees beyond the shared ones, drawn at random from the "
              "rest (unset: all of them).")
    test_fraction: float = _setting(
        0.2, "Share of the study's stimuli held out for testing; shared stimuli are held "
             "out first, so test stimuli are seen by every subject while there are enough.")
    missing_fraction: float = _setting(
        0.0, "Share of trials dropped at random (one trial per stimulus is always kept).")
    noise_rank: int = _setting(5, "Number of shared (low-rank) noise sources.")
    noise_length_scale: float = _setting(
        2.0, "Spatial correlation length of the noise, in steps of the unit grid (0: white).")
    lowrank_fraction: float = _setting(0.3, "Share of the noise variance that is low-rank.")
    spatial_fraction: float = _setting(
        0.3, "Share of the noise variance that is spatially smooth; the rest is independent.")
    individual_differences: float = _setting(
        0.3, "0: every subject shares one tuning; 1: unrelated tunings (how far each "
             "subject's mixing departs from the shared one).")
    nonlinearity: float = _setting(
        0.2, "Rectified share of the latent tuning (0: linear in the features).")
    unit_dropout: float = _setting(
        0.0, "Each subject misses a random share, drawn uniformly in [0, unit_dropout], of "
             "the units of the sheet, so unit counts differ; the units it keeps have the "
             "sheet's ids and indices, so ids match across subjects (0: every subject has "
             "every unit).")
    tuning_length_scale: float = _setting(
        0.0, "Correlation length, in grid steps, of the shared tuning over the unit sheet: "
             "a smooth random field (Gaussian kernel), so neighbouring units are tuned alike "
             "(0: each unit's shared tuning is drawn independently).")
    misregistration: float = _setting(
        0.0, "Sd, in grid steps, of each subject's smooth displacement of the unit sheet: its "
             "unit at grid position p takes the shared tuning at p + d(p), so units with the "
             "same id differ across subjects (d varies over a quarter of the sheet's longer "
             "side, at least tuning_length_scale). Needs tuning_length_scale > 0 (0: none).")
    stimulus_overlap: float | None = _setting(
        None, "Share, in [0, 1], of each subject's stimuli (train and test alike) that every "
              "subject sees; the others are its own, seen by no other subject. Each subject "
              "sees the largest number m of stimuli for which the shared ones plus every "
              "subject's own fit in n_stimuli (about n_stimuli / (overlap + n_subjects (1 - "
              "overlap))); round(test_fraction m) of them are held out, of which the same "
              "share is shared. 0: no stimulus shared at all (the unpaired case); 1: all. "
              "Unset: n_shared and stimuli_per_subject decide (not combinable with it).")
    timeseries: bool = _setting(
        False, "Also simulate fMRI runs (events convolved with per-unit library HRFs, drift, "
               "AR(1) noise); on disk, BIDS-style NIfTI runs and events.tsv files (for "
               "GLMsingle).")
    tr: float = _setting(1.0, "Repetition time in seconds (time series).")
    stimdur: float = _setting(3.0, "Stimulus duration in seconds (time series).")
    iti: float = _setting(4.0, "Onset-to-onset interval in seconds (time series).")
    trials_per_run: int = _setting(
        60, "Trials per run, when the number of runs is not given.")
    n_runs: int | None = _setting(
        None, "Runs per subject, trials split evenly (unset: from the trials per run).")
    runs_per_session: int = _setting(6, "Runs per session.")
    null_fraction: float = _setting(
        0.15, "Extra empty slots per run, as a share of its trials (time series).")
    drift: float = _setting(
        1.0, "Sd of each drift term, in percent signal change (time series).")
    timeseries_noise: float = _setting(
        0.5, "Sd of the time-series noise, in percent signal change.")
    motion: float = _setting(
        0.0, "Head motion (time series): six smooth random-walk motion parameters per run "
             "(trans_x, trans_y, trans_z in mm, rot_x, rot_y, rot_z in radians) enter each "
             "unit's time series with random loadings of sd motion percent signal change per "
             "z-scored parameter, and are the runs' confounds (0: no motion, no confounds).")
    random_state: int | None = _setting(
        0, "Seed: the same seed gives the same study.")

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **{name: [Interval(int, low, None)] for name, low in _INT_LOW.items()},
        "n_shared": [Interval(int, 0, None), None],
        "stimuli_per_subject": [Interval(int, 0, None), None],
        "n_runs": [Interval(int, 1, None), None],
        "stimulus_overlap": [Interval(float, 0.0, 1.0), None],
        "random_state": [Interval(int, 0, None), None],
        **{name: [Interval(float, low, high, closed="right" if low_open else "both")]
           for name, (low, high, low_open) in _FLOAT_RANGE.items()},
        "timeseries": [Boolean()],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        **{name: f"Pass ${name}={max(low, 1)} or more." for name, low in _INT_LOW.items()},
        "n_shared": "Pass $n_shared=0 or more, or leave it unset (None) for a third of the "
                    "stimuli.",
        "n_runs": "Leave it unset (None) to derive it from $trials_per_run.",
        "random_state": "Pass a seed of 0 or more, or None to draw one.",
        "stimulus_overlap": "Pass a share in [0, 1], or leave it unset (None) to use $n_shared "
                            "and $stimuli_per_subject.",
    }

    def __post_init__(self) -> None:
        if self.random_state is None:
            import numpy as np

            entropy = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]  # an int when unseeded
            object.__setattr__(self, "random_state", entropy % (2**31))
        if (self.n_shared is None and self.stimulus_overlap is None
                and Interval(int, 1, None).is_satisfied_by(self.n_stimuli)):
            object.__setattr__(self, "n_shared", int(round(self.n_stimuli / 3)))
        self.check()

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> SimulationParams:
        """Validate keyword arguments and return the parameter record (``cls(**kwargs)``).

        Raises
        ------
        ParameterError
            If a value is outside its range, or the sizes do not fit together; the
            message names the parameter, the value and the fix.
        TypeError
            If a keyword is not a setting of the simulator.
        """
        return cls(**kwargs)

    def check(self) -> None:
        """Raise :class:`ParameterError` for any value out of range.

        Each field is checked against ``_parameter_constraints`` (see
        :mod:`conform_core.constraints`), then the rules between fields.
        """
        check_constraints(self._parameter_constraints, self.as_dict(), owner=_OWNER,
                          fixes=self._parameter_fixes)
        self._check_alignment()
        if self.stimulus_overlap is None:
            self._check_shared()
        self._check_noise_and_runs()

    def _check_alignment(self) -> None:
        """Check the settings that cross-subject alignment faces."""
        if self.misregistration > 0 and self.tuning_length_scale == 0:
            raise ParameterError(
                f"$misregistration={self.misregistration} displaces each subject's units over "
                "a smooth shared tuning, but $tuning_length_scale=0 makes the tuning of "
                "neighbouring units independent, so there is nothing smooth to displace.",
                param="misregistration", value=self.misregistration, owner=_OWNER,
                fix="Set $tuning_length_scale > 0 (e.g. 2 grid steps) as well, or "
                    "$misregistration=0.")
        if self.stimulus_overlap is not None:
            given = [name for name in ("n_shared", "stimuli_per_subject")
                     if getattr(self, name) is not None]
            if given:
                raise ParameterError(
                    f"$stimulus_overlap={self.stimulus_overlap} decides which stimuli the "
                    f"subjects share, and so does {' and '.join('$' + g for g in given)}.",
                    param="stimulus_overlap", value=self.stimulus_overlap, owner=_OWNER,
                    fix=f"Leave {' and '.join('$' + g for g in given)} unset (None) with "
                        "$stimulus_overlap, or unset $stimulus_overlap.")
            if self.n_stimuli_per_subject < 2:
                raise ParameterError(
                    f"With $stimulus_overlap={self.stimulus_overlap}, {self.n_subjects} "
                    f"subjects and $n_stimuli={self.n_stimuli}, each subject would see "
                    f"{self.n_stimuli_per_subject} stimulus(es); at least 2 are needed to "
                    "define a response variance.", param="n_stimuli", value=self.n_stimuli,
                    owner=_OWNER,
                    fix="Raise $n_stimuli, raise $stimulus_overlap or lower $n_subjects.")

    def _check_shared(self) -> None:
        """Check ``n_shared`` and ``stimuli_per_subject``."""
        assert self.n_shared is not None  # resolved in __post_init__ once n_stimuli is valid
        most = self.n_stimuli - self.n_shared
        if self.n_shared > self.n_stimuli:
            raise ParameterError(
                param="n_shared", value=self.n_shared, owner=_OWNER,
                allowed=f"at most $n_stimuli={self.n_stimuli}",
                fix="Lower $n_shared or raise $n_stimuli.")
        if self.stimuli_per_subject is not None and self.stimuli_per_subject > most:
            raise ParameterError(
                param="stimuli_per_subject", value=self.stimuli_per_subject, owner=_OWNER,
                allowed=f"an int in [0, {most}] or None",
                fix=f"It counts the stimuli drawn per subject beyond the {self.n_shared} shared "
                    f"ones, so it can be at most $n_stimuli - $n_shared = {most}; leave it unset "
                    "(None) to give every subject all of them.")
        if self.n_stimuli_per_subject < 2:
            raise ParameterError(
                f"Each subject would see {self.n_stimuli_per_subject} stimulus(es) "
                f"($n_shared={self.n_shared}, $stimuli_per_subject={self.stimuli_per_subject}); "
                "at least 2 are needed to define a response variance.", param="n_shared",
                value=self.n_shared, owner=_OWNER, fix="Raise $n_shared or $stimuli_per_subject.")

    def _check_noise_and_runs(self) -> None:
        """Check the noise and time-series settings together."""
        if self.lowrank_fraction + self.spatial_fraction > 1.0 + 1e-12:
            raise ParameterError(
                f"$lowrank_fraction + $spatial_fraction must be at most 1 (the rest of the noise "
                f"variance is independent); got {self.lowrank_fraction} + "
                f"{self.spatial_fraction}.", param="lowrank_fraction",
                value=self.lowrank_fraction, owner=_OWNER, fix="Lower one of them.")
        if self.noise_rank == 0 and self.lowrank_fraction > 0:
            raise ParameterError(
                f"$noise_rank=0 leaves no low-rank noise, but "
                f"$lowrank_fraction={self.lowrank_fraction}.", param="lowrank_fraction",
                value=self.lowrank_fraction, owner=_OWNER,
                fix="Set $lowrank_fraction=0 or $noise_rank >= 1.")
        if self.motion > 0 and not self.timeseries:
            raise ParameterError(
                f"$motion={self.motion} moves the head during the fMRI runs, but no runs are "
                "simulated ($timeseries is off).", param="motion", value=self.motion,
                owner=_OWNER, fix="Pass $timeseries as well, or leave $motion at 0.")
        if self.timeseries and self.iti < self.stimdur:
            raise ParameterError(
                param="iti", value=self.iti, owner=_OWNER,
                allowed=f"at least $stimdur={self.stimdur} s (it is the onset-to-onset interval)",
                fix="Raise $iti or shorten $stimdur.")

    @property
    def n_stimuli_per_subject(self) -> int:
        """Number of stimuli each subject sees (shared plus own)."""
        if self.stimulus_overlap is not None:
            return self.overlap_allocation.per_subject
        assert self.n_shared is not None
        own = (self.n_stimuli - self.n_shared if self.stimuli_per_subject is None
               else self.stimuli_per_subject)
        return self.n_shared + own

    @property
    def n_test(self) -> int:
        """Number of held-out stimuli in the study (shared stimuli are held out first)."""
        if self.stimulus_overlap is not None:
            a = self.overlap_allocation
            return a.shared_test + self.n_subjects * a.own_test
        return _round(self.test_fraction * self.n_stimuli)

    @property
    def overlap_allocation(self) -> OverlapAllocation:
        """How many stimuli of each kind a subject sees when ``stimulus_overlap`` is set.

        Each subject sees ``m`` stimuli, the largest number for which the shared ones and
        every subject's own ones fit in ``n_stimuli``: ``t = round(test_fraction m)`` held
        out, ``round(overlap t)`` of them shared, and ``round(overlap (m - t))`` of the
        ``m - t`` training stimuli shared.

        Raises
        ------
        ValueError
            If ``stimulus_overlap`` is None.
        """
        if self.stimulus_overlap is None:
            raise ValueError("overlap_allocation needs stimulus_overlap to be set.")
        return _overlap_allocation(self.n_stimuli, self.n_subjects, self.stimulus_overlap,
                                   self.test_fraction)

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters as a plain JSON-ready dict."""
        return asdict(self)

    # ------------------------------------------------ what the other interfaces derive
    @classmethod
    def names(cls) -> list[str]:
        """Return the names of the settings, in declaration order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Return each setting's default (what ``simulate_study()`` uses when it is not given)."""
        return {f.name: f.default for f in fields(cls)}

    @classmethod
    def help(cls, name: str) -> str:
        """Return the help text of setting ``name`` (for docstrings and ``--help``)."""
        return str(_field(cls, name).metadata["help"])

    @classmethod
    def types(cls) -> dict[str, Any]:
        """Return each setting's type, evaluated (``int``, ``float``, ``bool``, ``int | None``)."""
        hints = typing.get_type_hints(cls)
        return {name: hints[name] for name in cls.names()}

    @classmethod
    def signature_parameters(cls, *, positional: int = 0) -> list[inspect.Parameter]:
        """Return the settings as :class:`inspect.Parameter` objects, with defaults and types.

        Parameters
        ----------
        positional : int, default=0
            How many of the first settings may also be passed by position; the others are
            keyword-only.
        """
        types = cls.types()
        return [inspect.Parameter(
                    name, inspect.Parameter.POSITIONAL_OR_KEYWORD if i < positional
                    else inspect.Parameter.KEYWORD_ONLY, default=default, annotation=types[name])
                for i, (name, default) in enumerate(cls.defaults().items())]

    @classmethod
    def numpydoc(cls, indent: str = "") -> str:
        """Return the numpydoc ``Parameters`` entries of every setting (without the header)."""
        lines = []
        for name, default in cls.defaults().items():
            kind = str(_field(cls, name).type).replace(" | ", " or ")
            lines.append(f"{indent}{name} : {kind}, default={default!r}")
            lines.extend(textwrap.wrap(cls.help(name), width=88, initial_indent=indent + "    ",
                                       subsequent_indent=indent + "    "))
        return "\n".join(lines)


@dataclass(frozen=True)
class OverlapAllocation:
    """Stimulus counts of one subject under ``stimulus_overlap``.

    Attributes
    ----------
    shared_train, shared_test : int
        Training and held-out stimuli every subject sees.
    own_train, own_test : int
        Training and held-out stimuli of each subject that no other subject sees.
    """

    shared_train: int
    shared_test: int
    own_train: int
    own_test: int

    @property
    def per_subject(self) -> int:
        """Stimuli each subject sees."""
        return self.shared_train + self.shared_test + self.own_train + self.own_test


def _round(x: float) -> int:
    """Round half up (``round`` rounds half to even)."""
    return int(math.floor(x + 0.5))


def _overlap_allocation(n_stimuli: int, n_subjects: int, overlap: float,
                        test_fraction: float) -> OverlapAllocation:
    """Largest per-subject allocation of ``stimulus_overlap`` that fits in ``n_stimuli``."""
    guess = n_stimuli / max(overlap + n_subjects * (1.0 - overlap), 1e-12)
    for m in range(min(n_stimuli, int(math.ceil(guess)) + 2), 0, -1):
        test = _round(test_fraction * m)
        shared_test, shared_train = _round(overlap * test), _round(overlap * (m - test))
        own_test, own_train = test - shared_test, m - test - shared_train
        if shared_test + shared_train + n_subjects * (own_test + own_train) <= n_stimuli:
            return OverlapAllocation(shared_train, shared_test, own_train, own_test)
    return OverlapAllocation(0, 0, 0, 0)


def _field(cls: type, name: str) -> Field[Any]:
    for f in fields(cls):
        if f.name == name:
            return f
    raise KeyError(f"{name!r} is not a setting of SimulationParams; settings: "
                   f"{', '.join(f.name for f in fields(cls))}.")


SimulationParams.__doc__ = (
    f"{inspect.cleandoc(SimulationParams.__doc__ or '')}\n\nParameters\n----------\n"
    f"{SimulationParams.numpydoc()}\n")
