"""conform_mosaic: read and write MOSAIC datasets (per-subject HDF5 on fsLR 91k grayordinates).

MOSAIC (Lahner et al. 2025) pools single-trial GLMsingle betas of 93 participants from 8
fMRI datasets into one format. This plugin registers the dataset ``mosaic``
(:class:`MosaicDataset`), writes any ``TrialData`` as a compliant file
(:func:`write_subject`, :func:`write_merged`), checks files (:func:`validate`) and adds the
command ``conform mosaic validate FILE...``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from conform_core.hookspecs import hookimpl

from ._atlas import Atlas, load_atlas, mosaic_nan_vertices, resolve_vertices
from ._merge import write_merged
from ._noiseceiling import mosaic_noise_ceiling
from ._validate import validate
from ._writer import write_subject
from .dataset import MosaicDataset

if TYPE_CHECKING:
    import typer

    from conform_core import ComponentRegistry
    from conform_core.testing import ContractInstances

__all__ = [
    "Atlas",
    "MosaicDataset",
    "conform_contract_instances",
    "conform_register",
    "conform_register_commands",
    "load_atlas",
    "mosaic_nan_vertices",
    "mosaic_noise_ceiling",
    "resolve_vertices",
    "validate",
    "write_merged",
    "write_subject",
]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register the ``mosaic`` dataset."""
    registry.add("dataset", "mosaic", MosaicDataset)


@hookimpl
def conform_register_commands(app: typer.Typer) -> None:
    """Add ``conform mosaic ...`` (``validate``)."""
    from ._cli import mosaic_app

    app.add_typer(mosaic_app, name="mosaic", help="Check and inspect MOSAIC-format HDF5 files.")


@hookimpl
def conform_contract_instances(instances: ContractInstances) -> None:
    """Have the contract kit check ``mosaic`` on the toy subject (:func:`.testing.toy_dataset`)."""
    from .testing import toy_dataset

    instances.add(MosaicDataset, toy_dataset, id="toy")
