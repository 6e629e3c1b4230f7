"""The ``registry`` dataset: a published MOSAIC version of the registry, by name and version.

``conform fit`` and ``conform braincorl train`` read it like a local MOSAIC folder::

    [dataset]
    plugin = "registry"
    location = "http://registry.example.org:8765"   # default: $CONFORM_REGISTRY_URL / login

    [dataset.params]
    name = "vision-1-catalog"
    version = 3                                      # or "latest", recorded as its number
    rois = [1000, 1001, 1002]                        # any MosaicDataset parameter

The version is pulled once into a cache (``$CONFORM_CACHE_DIR/registry``, else
``~/.cache/conform/registry``; one folder per server, dataset and version), every file
checked against the manifest's sha256, then read by :class:`conform_mosaic.MosaicDataset`
(its split files included). A cached version is reused without the network. When the
dataset is a study's catalog, each subject's stimuli carry the study's pool embeddings, so
``features = "precomputed"`` fits encoders on them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from conform_core.components import Dataset
from conform_core.constraints import InstanceOf, Interval, NonEmptyStr, Options, PathLike
from conform_core.data import StimulusSet, Subject
from conform_core.exceptions import DataFileError, ParameterError

__all__ = ["MARKER", "RegistryDataset", "cache_folder"]

MARKER = ".conform-pull.json"
"""Written in a cached version's folder once every file was pulled and verified."""
_MOSAIC = ("rois", "atlas", "phases", "nan_vertices", "dtype")


def cache_folder(cache_dir: str | os.PathLike[str] | None, url: str, name: str,
                 version: int) -> Path:
    """Return the cache folder of ``name@version`` from the server ``url``."""
    root = Path(cache_dir) if cache_dir else Path(
        os.environ.get("CONFORM_CACHE_DIR") or Path.home() / ".cache" / "conform") / "registry"
    server = re.sub(r"[^A-Za-z0-9.-]+", "_", url.split("://", 1)[-1]).strip("_")
    return root / server / name / f"v{version}"


class RegistryDataset(Dataset):
    """A published version of a registry dataset in MOSAIC form (e.g. a study's catalog).

    Parameters
    ----------
    location : str or None, default=None
        The registry's URL; None: ``$CONFORM_REGISTRY_URL``, else the one
        ``conform registry login`` saved.
    name : str, default="catalog"
        The dataset, e.g. ``"vision-1-catalog"``.
    version : int or "latest", default="latest"
        The published version; "latest" is resolved on first use (the lock records the
        number, so a re-run reads the same data).
    cache_dir : str or None, default=None
        Cache root; None: ``$CONFORM_CACHE_DIR/registry``, else ``~/.cache/conform/registry``.
    embeddings : bool, default=True
        Give each subject's stimuli the study's pool embeddings (catalogs of a study only).
    rois, atlas, phases, nan_vertices, dtype
        As :class:`conform_mosaic.MosaicDataset`'s.
    """

    _name: ClassVar[str] = "registry"
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "location": [NonEmptyStr("the registry's URL"), None],
        "name": [NonEmptyStr("a dataset name")],
        "version": [Interval(int, 1, None), Options(("latest",))],
        "cache_dir": [PathLike("any", must_exist=False), None],
        "embeddings": [InstanceOf(bool)],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "version": "Give a published version number, e.g. 2, or 'latest'.",
    }

    def __init__(self, location: str | None = None, name: str = "catalog",
                 version: int | str = "latest", cache_dir: str | None = None,
                 embeddings: bool = True, rois: Any = "grayordinates", atlas: str | None = None,
                 phases: Any = ("train", "test"), nan_vertices: str = "keep",
                 dtype: str = "float64") -> None:
        self.location = location
        self.name = name
        self.version = version
        self.cache_dir = cache_dir
        self.embeddings = embeddings
        self.rois = rois
        self.atlas = atlas
        self.phases = phases
        self.nan_vertices = nan_vertices
        self.dtype = dtype

    # ------------------------------------------------------------------ the local copy
    def _url(self) -> str:
        if self.location:
            return str(self.location).rstrip("/")
        from ._settings import load_settings

        return load_settings().url

    def _resolved(self) -> tuple[Path, dict[str, Any]]:
        """Return the verified local folder and its marker, pulling it if needed."""
        cached = getattr(self, "_local", None)
        if cached is not None:
            return cached
        url = self._url()
        if self.version != "latest":
            folder = cache_folder(self.cache_dir, url, self.name, int(self.version))
            if (folder / MARKER).is_file():
                found = (folder, json.loads((folder / MARKER).read_text(encoding="utf-8")))
                self._local = found
                return found
        found = self._pull(url)
        self._local = found
        return found

    def _pull(self, url: str) -> tuple[Path, dict[str, Any]]:
        from ._client import RegistryClient
        from ._client_types import RegistryClientError
        from ._settings import load_settings

        settings = load_settings(url=url)
        try:
            with RegistryClient(url, settings.token) as client:
                info = client.get_version(self.name, self.version)
                number = int(info["version"])
                folder = cache_folder(self.cache_dir, url, self.name, number)
                marker = folder / MARKER
                if not marker.is_file():
                    client.pull(self.name, number, folder)
                    study = client.get_dataset(self.name).get("study")
                    meta = {"url": url, "name": self.name, "version": number, "study": study,
                            "manifest_sha256": info["manifest_sha256"]}
                    if study is not None and self.embeddings:
                        ids, embeddings = client.study_pool(study)
                        np.save(folder / ".study-embeddings.npy", embeddings, allow_pickle=False)
                        meta["ids"] = ids
                    tmp = marker.with_name(marker.name + ".tmp")
                    tmp.write_text(json.dumps(meta), encoding="utf-8")
                    tmp.replace(marker)
        except RegistryClientError as exc:
            raise DataFileError(f"Dataset 'registry' cannot read {self.name}@{self.version} from "
                                f"{url}: {exc.message} {exc.fix}".strip()) from None
        return folder, json.loads(marker.read_text(encoding="utf-8"))

    def _mosaic(self) -> Any:
        from conform_mosaic import MosaicDataset

        folder, _ = self._resolved()
        reader = getattr(self, "_reader", None)
        if reader is None:
            reader = MosaicDataset(location=str(folder),
                                   **{k: getattr(self, k) for k in _MOSAIC})
            self._reader = reader
        return reader

    def _check_params_extra(self) -> None:
        if self.version != "latest" and isinstance(self.version, bool):
            raise ParameterError(param="version", value=self.version, owner=self,
                                 allowed="a version number or 'latest'")

    # ------------------------------------------------------------------ Dataset
    def data_params(self) -> dict[str, Any]:
        """Return the parameters with ``version`` resolved to the number that was read."""
        params = dict(self.get_params(deep=False))
        params["version"] = int(self._resolved()[1]["version"])
        params["location"] = self._url()
        return params

    def subjects(self) -> list[str]:
        """Return the subjects of the version (``sub-XX_<CODE>``)."""
        return self._mosaic().subjects()

    def roi_labels(self) -> list[str] | None:
        """Return the ROI labels of the units (from the MOSAIC reader)."""
        return self._mosaic().roi_labels()

    def _load_subject(self, name: str) -> Subject:
        subject = self._mosaic().load_subject(name)
        folder, meta = self._resolved()
        pool_file = folder / ".study-embeddings.npy"
        if not (self.embeddings and pool_file.is_file() and meta.get("ids")):
            return subject
        rows = {str(i): k for k, i in enumerate(meta["ids"])}
        ids = subject.stimuli.ids.tolist()
        missing = [i for i in ids if i not in rows and i.rsplit(".", 1)[0] not in rows]
        if missing:  # stimuli outside the pool: no embeddings for anyone, say which
            return subject
        pool = np.load(pool_file, allow_pickle=False)
        take = [rows.get(i, rows.get(i.rsplit(".", 1)[0])) for i in ids]
        stimuli = StimulusSet(ids=subject.stimuli.ids, sources=subject.stimuli.sources,
                              embeddings=np.asarray(pool[take], dtype=np.float32))
        return Subject(name=subject.name, stimuli=stimuli, trials=subject.trials,
                       timeseries=subject.timeseries, train_ids=subject.train_ids,
                       test_ids=subject.test_ids, truth=subject.truth)

    def stimulus_set(self) -> StimulusSet | None:
        """Return the stimuli of the version (from the MOSAIC stimulus tables, if any)."""
        return self._mosaic().stimulus_set()
