"""The reference denoiser: average the repeats of each condition."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conform_core import ConditionData, ConditionTrials, Denoiser

if TYPE_CHECKING:
    from conform_core.memory import DataSize

__all__ = ["TrialAverageDenoiser"]


class TrialAverageDenoiser(Denoiser):
    """Average each condition's trials, ignoring missing (NaN) trials.

    The baseline every other denoiser is compared with: unbiased, but as noisy as
    ``noise_sd / sqrt(n_trials)``.

    Attributes
    ----------
    n_units_ : int
        Number of units seen in ``fit`` (``transform`` requires the same).
    """

    def peak_memory(self, size: DataSize) -> int:
        """Return the peak bytes of ``transform`` on data of ``size`` (``fit`` stores nothing).

        ``8 * (9/8 U C T + 3 U C)`` for U units, C conditions and T trials: the mean over
        trials ignoring NaN (a float64 working copy of the data with NaN zeroed, and its
        one-byte NaN mask), the trial counts, the sums and the U x C output.
        """
        u, c, t = int(size.n_units), int(size.n_conditions), max(int(size.n_trials), 1)
        return int(8 * (1.125 * u * c * t + 3 * u * c))

    def _fit(self, data: ConditionTrials) -> TrialAverageDenoiser:
        return self

    def _transform(self, data: ConditionTrials) -> ConditionData:
        return data.mean()

