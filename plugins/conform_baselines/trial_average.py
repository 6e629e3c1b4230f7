"""The reference denoiser: average the repeats of each condition."""

from __future__ import annotations

from conform_core import ConditionData, ConditionTrials, Denoiser

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

    def _fit(self, data: ConditionTrials) -> TrialAverageDenoiser:
        return self

    def _transform(self, data: ConditionTrials) -> ConditionData:
        return data.mean()

