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
        self.n_units_ = data.n_units
        return self

    def _transform(self, data: ConditionTrials) -> ConditionData:
        check_units(self, data)
        return data.mean()


def check_units(denoiser: Denoiser, data: ConditionTrials) -> None:
    """Raise if ``data`` does not have the number of units the denoiser was fitted on."""
    from conform_core import ShapeError

    if data.n_units != denoiser.n_units_:
        raise ShapeError(
            f"{type(denoiser).__name__} was fitted on {denoiser.n_units_} units but got "
            f"{data.n_units}. Apply it to the same units it was fitted on."
        )
