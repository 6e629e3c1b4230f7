"""conform_psn: GSN signal/noise estimation and PSN low-rank denoising.

Functional API (official names, orientation and result keys, so analysis code written
for the official ``gsn``/``psn`` packages ports by changing the import):

- :func:`perform_gsn` -- signal and noise covariances, ncsnr (cvnlab/GSN v1.2.0);
- :func:`psn` -- PSN with presets and advanced options (jacob-prince/PSN v0.2.0);
- :func:`psn_cv` -- the cross-validated legacy API (PSN v0.1.0), also reachable as
  ``psn(data, "cv", ...)``.

Components registered with conform: ``denoiser`` ``psn`` (:class:`PSNDenoiser`; its
default, conform's preset ``"auto"``, chooses among the official presets, rank-limited
Wiener filters and the unit means by cross-validation on the training trials) and
``denoiser`` ``gsn`` (:class:`GSNDenoiser`, trial averages plus noise ceilings).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conform_core.hookspecs import hookimpl

from ._gsn import perform_gsn
from ._legacy import psn_cv
from ._psn import psn
from .components import GSNDenoiser, PSNDenoiser

if TYPE_CHECKING:
    from conform_core import ComponentRegistry
    from conform_core.testing import ContractInstances

__all__ = ["perform_gsn", "psn", "psn_cv", "PSNDenoiser", "GSNDenoiser",
           "conform_contract_instances", "conform_register"]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register the ``psn`` and ``gsn`` denoisers."""
    registry.add("denoiser", "psn", PSNDenoiser)
    registry.add("denoiser", "gsn", GSNDenoiser)


@hookimpl
def conform_contract_instances(instances: ContractInstances) -> None:
    """Have the contract kit check ``psn`` with each preset and threshold rule, and ``gsn``.

    The default instance is conform's ``auto`` preset; ``standard`` is PSN's own default.
    """
    instances.add(PSNDenoiser)
    for params in ({"preset": "standard"}, {"preset": "aggressive"}, {"preset": "wiener"},
                   {"preset": "cv"}, {"threshold_method": "hybrid"}):
        instances.add(PSNDenoiser, params=params)
    instances.add(GSNDenoiser)
