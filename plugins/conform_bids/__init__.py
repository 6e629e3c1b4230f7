"""conform_bids: subjects from a BIDS study with fMRIPrep (or any BIDS-derivatives) outputs.

Registers the dataset ``bids`` (:class:`BIDSDataset`): per subject, session, task and run,
the preprocessed BOLD as volumes (NIfTI with the brain mask, MNI or T1w space), surfaces
(GIFTI hemispheres of fsaverage/fsLR) or CIFTI dtseries; the TR from the JSON sidecars
(BIDS inheritance); the events with a configurable stimulus column; fMRIPrep confounds as
extra GLM regressors; ROIs from an atlas, a mask or surface labels; the stimuli of
``stimuli/`` (with embeddings); and, for simulated studies, the ground truth. The layout is
indexed with pybids (:mod:`conform_bids._layout` says why); images are read lazily, a run at
a time. ``conform data info bids DIR`` describes what was found and what cannot be used.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from conform_core.hookspecs import hookimpl

from .dataset import BIDSDataset
from .testing import toy_dataset, write_toy_study

if TYPE_CHECKING:
    from conform_core import ComponentRegistry
    from conform_core.testing import ContractInstances

__all__ = ["BIDSDataset", "conform_contract_instances", "conform_register", "toy_dataset",
           "write_toy_study"]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register the ``bids`` dataset."""
    registry.add("dataset", "bids", BIDSDataset)


def _toy_volume(folder: Path) -> BIDSDataset:
    return toy_dataset(folder)


def _toy_confounds(folder: Path) -> BIDSDataset:
    return toy_dataset(folder, confounds=["motion6", "framewise_displacement"],
                       confounds_na="zero")


@hookimpl
def conform_contract_instances(instances: ContractInstances) -> None:
    """Have the contract kit check ``bids`` on a toy fMRIPrep-style study (:mod:`.testing`)."""
    instances.add(BIDSDataset, _toy_volume, id="toy")
    instances.add(BIDSDataset, _toy_confounds, id="toy-confounds")
