"""conform_registry: the CONFORM registry, where sites upload data and download what to run.

A FastAPI service over SQLAlchemy (SQLite by default, PostgreSQL by URL) and a
content-addressed blob store (a local folder by default, any fsspec store by URL), with a
command-line client. Drafts accept any upload; the server validates them in background
jobs with the same pinned validator the client runs; curators publish immutable versions
with frozen manifests. The commands arrive as ``conform registry ...`` through the
``conform_register_commands`` hook; importing this package imports neither FastAPI nor
SQLAlchemy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conform_core.hookspecs import hookimpl

if TYPE_CHECKING:
    import typer

    from conform_core import ComponentRegistry
    from conform_core.testing import ContractInstances

_LAZY = {
    "RegistryConfig": "_config", "RegistryService": "_service", "RegistryError": "_service_base",
    "create_app": "_api", "serve": "_api", "JobRunner": "_jobs", "BlobStore": "_store",
    "RegistryClient": "_client", "RegistryClientError": "_client", "Report": "_validators",
    "RegistryDataset": "_dataset_plugin",
    "validate_files": "_validators", "pack": "_archive", "ArchiveError": "_archive",
    "ArchiveLimits": "_archive",
}

__all__ = [
    "ArchiveError",
    "ArchiveLimits",
    "BlobStore",
    "JobRunner",
    "RegistryClient",
    "RegistryClientError",
    "RegistryConfig",
    "RegistryDataset",
    "RegistryError",
    "RegistryService",
    "Report",
    "conform_contract_instances",
    "conform_register",
    "conform_register_commands",
    "create_app",
    "pack",
    "serve",
    "validate_files",
]


@hookimpl
def conform_register(registry: ComponentRegistry) -> None:
    """Register the ``registry`` dataset (a published MOSAIC version, pulled and cached)."""
    from ._dataset_plugin import RegistryDataset

    registry.add("dataset", "registry", RegistryDataset)


@hookimpl
def conform_contract_instances(instances: ContractInstances) -> None:
    """Have the contract kit check ``registry`` on a cached toy version (no server needed)."""
    from ._dataset_plugin import RegistryDataset
    from .testing import cached_toy_dataset

    instances.add(RegistryDataset, cached_toy_dataset, id="cached-toy")


@hookimpl
def conform_register_commands(app: typer.Typer) -> None:
    """Add ``conform registry`` (serve, token, login, submit, status, list, pull, publish, fsck)."""
    from ._cli import registry_app

    app.add_typer(registry_app, name="registry")


def __getattr__(name: str) -> Any:
    """Import the public API lazily: loading the plugin (for its CLI hook) stays cheap."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
