"""A study's catalog: every accepted subject in MOSAIC form, with one split for all.

The catalog is a MOSAIC folder (per-subject ``sub-XX_<CODE>.hdf5`` files, flat), plus:

- ``train_naturalistic.json`` and ``test_naturalistic.json``: MOSAIC's split files, which
  :class:`conform_mosaic.MosaicDataset` follows (``split="auto"``). The split is by
  stimulus for the whole catalog: the study's shared core, and any stimulus a contribution
  marked test, is test for every subject; everything else is train. A contribution that
  would put a test stimulus in training (or the reverse) is refused, so no test image is
  ever in any subject's training set.
- ``stimuli.tsv``: one row per stimulus of the catalog (id, source and sha256 when the study
  has them, whether it is in the pool, split, participants and presentations).
- ``catalog.json``: the contributions (dataset@version, site, subjects with their
  participant labels and stimulus counts) and the split's stimulus sets.

This module reads subject files and computes those side files; the service stores them.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conform_core.exceptions import DataFileError

__all__ = ["CATALOG_FILE", "SIDE_FILES", "SPLIT_FILES", "SubjectTrials", "merge_catalog", "pool_id",
           "read_subjects"]

CATALOG_FILE = "catalog.json"
SPLIT_FILES = {"train": "train_naturalistic.json", "test": "test_naturalistic.json"}
SIDE_FILES = (CATALOG_FILE, "stimuli.tsv", *SPLIT_FILES.values(), "test_artificial.json")
"""Files the catalog regenerates (everything else in it is a subject file)."""


@dataclass(frozen=True)
class SubjectTrials:
    """One subject file's trials, as the catalog needs them.

    Parameters
    ----------
    name : str
        ``sub-XX_<CODE>``.
    path : str
        The file's path in its dataset.
    keys, stimuli, phases : tuple of str
        Per trial: the beta key, the presented stimulus (file name) and the stored phase.
    """

    name: str
    path: str
    keys: tuple[str, ...]
    stimuli: tuple[str, ...]
    phases: tuple[str, ...]


def read_subjects(folder: Path, paths: Mapping[str, str]) -> list[SubjectTrials]:
    """Read the trial index of every MOSAIC subject file in ``folder``.

    ``paths`` maps a file name in ``folder`` to its path in the dataset.
    """
    from conform_mosaic._source import discover, open_h5, read_index

    out = []
    for source in discover(folder, layout="subject"):
        with open_h5(source.path) as h5:
            index = read_index(h5, source)
        stimuli = [s or stem for s, stem in zip(index.stimulus_ids.tolist(),
                                                 index.stems.tolist(), strict=True)]
        out.append(SubjectTrials(source.name, paths.get(source.path.name, source.path.name),
                                 tuple(index.keys.tolist()), tuple(stimuli),
                                 tuple(index.phases.tolist())))
    return out


def pool_id(stimulus: str, pool: Mapping[str, int]) -> str | None:
    """Return the pool id of a presented stimulus file name (``img009`` or ``img009.png``)."""
    if stimulus in pool:
        return stimulus
    stem = stimulus.rsplit(".", 1)[0]
    return stem if stem in pool else None


def merge_catalog(previous: Mapping[str, Any] | None, splits: Mapping[str, list[Any]],
                  subjects: Sequence[SubjectTrials], contribution: Mapping[str, Any], *,
                  core: Sequence[str], pool: Mapping[str, int],
                  images: Sequence[Mapping[str, str]] | None
                  ) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Add one contribution's subjects to the catalog; return its new catalog.json and side files.

    Parameters
    ----------
    previous : mapping or None
        The catalog's ``catalog.json`` so far (None: the first contribution).
    splits : mapping
        The previous split files' content (``{"train": [...], "test": [...]}``).
    subjects : sequence of SubjectTrials
        The contribution's subjects.
    contribution : mapping
        ``dataset``, ``version``, ``site`` and ``labels`` (subject name -> participant label).
    core : sequence of str
        The study's shared core (always test).
    pool : mapping of str to int
        Pool id -> row.
    images : sequence of mapping or None
        Per pool row ``{"source", "sha256"}``.

    Returns
    -------
    catalog : dict
        The new ``catalog.json``.
    files : dict of str to bytes
        The regenerated side files (split JSONs, stimuli.tsv, catalog.json).

    Raises
    ------
    DataFileError
        If a subject is already in the catalog, or a trial's phase contradicts the split.
    """
    catalog: dict[str, Any] = dict(previous or {"format": "conform-catalog/1", "contributions": [],
                                                "subjects": {}, "test": sorted(core), "train": []})
    known = dict(catalog["subjects"])
    test, train = set(catalog["test"]), set(catalog["train"])
    for subject in subjects:
        if subject.name in known:
            raise DataFileError(f"{subject.path}: subject {subject.name!r} is already in the "
                                f"catalog (from {known[subject.name]['dataset']}). Rename the "
                                "subject (sub-XX, or another dataset code) and publish again.")
        for stimulus, phase in zip(subject.stimuli, subject.phases, strict=True):
            name = pool_id(stimulus, pool) or stimulus
            if phase == "train" and name in test:
                raise DataFileError(f"{subject.path}: {stimulus!r} is a training trial, but it is "
                                    "a test image of the study (the shared core, or test "
                                    "elsewhere). Mark its trials phase 'test'.")
            if phase != "train" and name in train:
                raise DataFileError(f"{subject.path}: {stimulus!r} is a test trial, but it is a "
                                    "training image of other subjects in the catalog. Mark its "
                                    "trials phase 'train'.")
    entries: dict[str, list[Any]] = {k: list(splits.get(k, [])) for k in SPLIT_FILES}
    for subject in subjects:
        grouped: dict[tuple[str, str], list[str]] = {}
        for key, stimulus, phase in zip(subject.keys, subject.stimuli, subject.phases, strict=True):
            name = pool_id(stimulus, pool) or stimulus
            split = "train" if phase == "train" else "test"
            (train if split == "train" else test).add(name)
            grouped.setdefault((split, stimulus), []).append(f"{key}.npz")
        for (split, stimulus), keys in sorted(grouped.items()):
            entries[split].append({f"{subject.name}_stimulus-{stimulus}": keys})
        counts = Counter(pool_id(s, pool) or s for s in subject.stimuli)
        known[subject.name] = {"dataset": f"{contribution['dataset']}@{contribution['version']}",
                               "site": contribution["site"], "path": subject.path,
                               "participant": contribution["labels"].get(subject.name),
                               "stimuli": dict(sorted(counts.items()))}
    catalog.update(subjects=dict(sorted(known.items())), test=sorted(test), train=sorted(train))
    catalog["contributions"] = [*catalog["contributions"], {
        "dataset": contribution["dataset"], "version": contribution["version"],
        "site": contribution["site"], "subjects": [s.name for s in subjects]}]
    files = {name: (json.dumps(entries[split], indent=1) + "\n").encode()
             for split, name in SPLIT_FILES.items()}
    files["stimuli.tsv"] = _stimuli_table(catalog, pool, images)
    files[CATALOG_FILE] = (json.dumps(catalog, indent=1, sort_keys=True) + "\n").encode()
    return catalog, files


def _stimuli_table(catalog: Mapping[str, Any], pool: Mapping[str, int],
                   images: Sequence[Mapping[str, str]] | None) -> bytes:
    people: Counter[str] = Counter()
    shown: Counter[str] = Counter()
    for entry in catalog["subjects"].values():
        for stimulus, n in entry["stimuli"].items():
            people[stimulus] += 1
            shown[stimulus] += int(n)
    test = set(catalog["test"])
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(["stimulus_id", "source", "sha256", "in_pool", "split", "n_participants",
                     "n_presentations"])
    for stimulus in sorted(people):
        row = pool.get(stimulus)
        ref = images[row] if images is not None and row is not None else {}
        writer.writerow([stimulus, ref.get("source", "n/a"), ref.get("sha256", "n/a"),
                         "yes" if row is not None else "no",
                         "test" if stimulus in test else "train", people[stimulus], shown[stimulus]])
    return buffer.getvalue().encode()
