"""The simulator's parameters: one frozen record, validated in one place."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, ClassVar

from ..constraints import Interval, check_constraints
from ..exceptions import ParameterError

__all__ = ["SimulationParams"]

_OWNER = "simulate_study"

#: Lowest value of each integer knob.
_INT_LOW = {"n_subjects": 1, "n_units": 1, "n_stimuli": 1, "n_features": 1, "n_latent": 1,
            "n_repeats": 1, "n_shared": 0, "noise_rank": 0, "trials_per_run": 1,
            "runs_per_session": 1, "random_state": 0}
#: Range of each real knob: (low, high, low excluded).
_FLOAT_RANGE: dict[str, tuple[float, float | None, bool]] = {
    "snr": (0.0, None, False), "snr_spread": (0.0, 3.0, False),
    "test_fraction": (0.0, 0.9, False), "missing_fraction": (0.0, 0.9, False),
    "noise_length_scale": (0.0, None, False), "lowrank_fraction": (0.0, 1.0, False),
    "spatial_fraction": (0.0, 1.0, False), "individual_differences": (0.0, 1.0, False),
    "nonlinearity": (0.0, 1.0, False), "tr": (0.0, 10.0, True),
    "stimdur": (0.0, None, True), "iti": (0.0, None, True),
    "null_fraction": (0.0, 0.9, False), "drift": (0.0, None, False),
    "timeseries_noise": (0.0, None, False),
}


@dataclass(frozen=True)
class SimulationParams:
    """Every knob of :func:`~conform_core.simulation.simulate_study`, checked.

    See :func:`~conform_core.simulation.simulate_study` for the meaning of each field.
    ``random_state`` is always an int here (a fresh one is drawn when the user passed None),
    so a recorded ``SimulationParams`` reproduces its study exactly; likewise
    ``n_shared=None`` is resolved to a third of ``n_stimuli``.
    """

    n_subjects: int = 3
    n_units: int = 100
    n_stimuli: int = 120
    n_features: int = 64
    n_latent: int = 8
    n_repeats: int = 3
    snr: float = 1.0
    snr_spread: float = 0.5
    n_shared: int = 40
    stimuli_per_subject: int | None = None
    test_fraction: float = 0.2
    missing_fraction: float = 0.0
    noise_rank: int = 5
    noise_length_scale: float = 2.0
    lowrank_fraction: float = 0.3
    spatial_fraction: float = 0.3
    individual_differences: float = 0.3
    nonlinearity: float = 0.2
    timeseries: bool = False
    tr: float = 1.0
    stimdur: float = 3.0
    iti: float = 4.0
    trials_per_run: int = 60
    n_runs: int | None = None
    runs_per_session: int = 6
    null_fraction: float = 0.15
    drift: float = 1.0
    timeseries_noise: float = 0.5
    random_state: int = 0

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        **{name: [Interval(int, low, None)] for name, low in _INT_LOW.items()},
        "stimuli_per_subject": [Interval(int, 0, None), None],
        "n_runs": [Interval(int, 1, None), None],
        **{name: [Interval(float, low, high, closed="right" if low_open else "both")]
           for name, (low, high, low_open) in _FLOAT_RANGE.items()},
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        **{name: f"Pass ${name}={max(low, 1)} or more." for name, low in _INT_LOW.items()},
        "n_runs": "Leave it unset (None) to derive it from $trials_per_run.",
    }

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> SimulationParams:
        """Validate keyword arguments and return the parameter record.

        ``random_state=None`` draws a seed and ``n_shared=None`` becomes a third of
        ``n_stimuli``, so the record always reproduces its study.

        Raises
        ------
        ParameterError
            If a value is outside its range, or the sizes do not fit together; the
            message names the parameter, the value and the fix.
        """
        if kwargs.get("random_state") is None:
            import numpy as np

            entropy = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]  # an int when unseeded
            kwargs["random_state"] = entropy % (2**31)
        n_stimuli = kwargs.get("n_stimuli", cls.n_stimuli)
        if kwargs.get("n_shared", 0) is None and isinstance(n_stimuli, int):
            kwargs["n_shared"] = int(round(n_stimuli / 3))
        params = cls(**kwargs)
        params.check()
        return params

    def check(self) -> None:
        """Raise :class:`ParameterError` for any value out of range.

        Each field is checked against ``_parameter_constraints`` (see
        :mod:`conform_core.constraints`), then the rules between fields.
        """
        check_constraints(self._parameter_constraints, self.as_dict(), owner=_OWNER,
                          fixes=self._parameter_fixes)
        most = self.n_stimuli - self.n_shared
        if self.n_shared > self.n_stimuli:
            raise ParameterError(
                param="n_shared", value=self.n_shared, owner=_OWNER,
                allowed=f"at most $n_stimuli={self.n_stimuli}", fix="Lower $n_shared or raise $n_stimuli.")
        if self.stimuli_per_subject is not None and self.stimuli_per_subject > most:
            raise ParameterError(
                param="stimuli_per_subject", value=self.stimuli_per_subject, owner=_OWNER,
                allowed=f"an int in [0, {most}] or None",
                fix=f"It counts the stimuli drawn per subject beyond the {self.n_shared} shared "
                    f"ones, so it can be at most $n_stimuli - $n_shared = {most}; leave it unset "
                    "(None) to give every subject all of them.")
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
        if self.n_stimuli_per_subject < 2:
            raise ParameterError(
                f"Each subject would see {self.n_stimuli_per_subject} stimulus(es) "
                f"($n_shared={self.n_shared}, $stimuli_per_subject={self.stimuli_per_subject}); "
                "at least 2 are needed to define a response variance.", param="n_shared",
                value=self.n_shared, owner=_OWNER, fix="Raise $n_shared or $stimuli_per_subject.")
        if self.timeseries and self.iti < self.stimdur:
            raise ParameterError(
                param="iti", value=self.iti, owner=_OWNER,
                allowed=f"at least $stimdur={self.stimdur} s (it is the onset-to-onset interval)",
                fix="Raise $iti or shorten $stimdur.")

    @property
    def n_stimuli_per_subject(self) -> int:
        """Number of stimuli each subject sees (shared plus own)."""
        own = (self.n_stimuli - self.n_shared if self.stimuli_per_subject is None
               else self.stimuli_per_subject)
        return self.n_shared + own

    @property
    def n_test(self) -> int:
        """Number of held-out stimuli in the study (shared stimuli are held out first)."""
        return int(math.floor(self.test_fraction * self.n_stimuli + 0.5))

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters as a plain JSON-ready dict."""
        return asdict(self)
