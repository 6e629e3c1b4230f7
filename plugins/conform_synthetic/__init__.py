"""conform_synthetic: the ground-truth simulator of multi-subject vision fMRI studies.

Registers two datasets and one command:

- ``synthetic`` (:class:`SyntheticDataset`): a study simulated in memory;
- ``synthetic-folder`` (:class:`SimulatedFolderDataset`): a study folder written by
  ``conform simulate``, read back exactly;
- ``conform simulate OUT``: write a study to a folder (:func:`write_study`), in the format
  of ``docs/formats.md``.

The contract kit checks both datasets on a small study (``conform_contract_instances``).

:func:`simulate_study` returns a whole :class:`SimulatedStudy` in memory and
:func:`read_study` reads one back from a folder.

For a study simulated with ``nonlinearity=0`` every unit's true response is linear in the
stimulus features: :func:`linear_tuning` gives each unit's exact weights and intercept,
:func:`population_prior` the moments (:class:`TuningPrior`) of that tuning over units of
fresh subjects (the population prior a voxel of a new person is drawn from), and
:func:`posterior_mean_readout` the Gaussian posterior mean of a unit's tuning given a few
examples: the oracle that few-shot encoders are compared with. :func:`noise_covariance` gives
a subject's exact single-trial noise covariance (what an oracle denoiser reads).

Every setting of the simulator is written once, as a field of :class:`SimulationParams`;
the function's signature, the ``synthetic`` dataset's parameters and the command's options
are derived from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from conform_core.hookspecs import hookimpl

from ._noise import grid_shape
from ._params import SimulationParams
from ._prior import (
    LinearTuning,
    TuningPrior,
    linear_tuning,
    noise_covariance,
    population_prior,
    posterior_mean_readout,
)
from ._reader import read_stimuli, read_study, read_study_info, read_study_subject
from ._study import (
    SimulatedStudy,
    StudyPlan,
    plan_study,
    simulate_study,
    simulate_subject,
    subject_name,
)
from ._writer import FORMAT_NAME, FORMAT_VERSION, write_study
from .dataset import SimulatedFolderDataset, SyntheticDataset

if TYPE_CHECKING:
    import typer

    from conform_core import ComponentRegistry
    from conform_core.testing import ContractInstances

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "LinearTuning",
    "SimulatedFolderDataset",
    "SimulatedStudy",
    "SimulationParams",
    "StudyPlan",
    "SyntheticDataset",
    "TuningPrior",
    "conform_contract_instances",
    "conform_register",
    "conform_register_commands",
    "grid_shape",
    "linear_tuning",
    "noise_covariance",
    "plan_study",
    "population_prior",
    "posterior_mean_readout",
    "read_stimuli",
    "read_study",
    "read_study_info",
    "read_study_subject",
    "simulate_study",
    "simulate_subject",
    "subject_name",
    "write_study",
]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register the ``synthetic`` and ``synthetic-folder`` datasets."""
    registry.add("dataset", "synthetic", SyntheticDataset)
    registry.add("dataset", "synthetic-folder", SimulatedFolderDataset)


@hookimpl
def conform_register_commands(app: typer.Typer) -> None:
    """Add ``conform simulate``."""
    from .cli import simulate

    app.command("simulate")(simulate)


#: The small study the contract kit checks (a few hundred trials: quick to simulate and write).
_CONTRACT_STUDY: dict[str, Any] = {"n_subjects": 2, "n_units": 12, "n_stimuli": 24, "n_shared": 8,
                                   "n_repeats": 2, "n_features": 8}


#: The same, facing what alignment must: unit counts that differ, a smooth misregistered
#: tuning and partial stimulus overlap.
_CONTRACT_ALIGNMENT_STUDY: dict[str, Any] = {
    **{k: v for k, v in _CONTRACT_STUDY.items() if k != "n_shared"}, "unit_dropout": 0.3,
    "tuning_length_scale": 2.0, "misregistration": 1.0, "stimulus_overlap": 0.5}


def _contract_folder(folder: Path) -> SimulatedFolderDataset:
    return SimulatedFolderDataset(location=str(write_study(folder / "study", _CONTRACT_STUDY)))


def _contract_location(folder: Path) -> SyntheticDataset:
    return SyntheticDataset(location=str(write_study(folder / "study", _CONTRACT_STUDY)))


@hookimpl
def conform_contract_instances(instances: ContractInstances) -> None:
    """Give the contract kit a small study: in memory, in a folder, and through ``location``.

    ``location`` is what ``synthetic`` keeps for older specs.
    """
    instances.add(SyntheticDataset, params=_CONTRACT_STUDY, id="small")
    instances.add(SyntheticDataset, params=_CONTRACT_ALIGNMENT_STUDY, id="alignment")
    instances.add(SyntheticDataset, _contract_location, id="small-location")
    instances.add(SimulatedFolderDataset, _contract_folder, id="small")
