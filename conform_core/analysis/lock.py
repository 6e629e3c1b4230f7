"""``spec.lock.toml``: every stage's plugin, distribution version and full parameters."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import tomli_w

from .. import __version__
from ..io import sha256_file
from ..spec import STAGE_KIND, StageEntry
from .plan import Plan

__all__ = ["input_checksums", "lock_text", "path_inputs"]


def _fingerprint(path: Path, full_hash_below: int, budget: list[int]) -> str:
    """Return the SHA-256 of a file, or ``size-mtime:SIZE:MTIME_NS`` when it is too large.

    Too large to hash on every run: above ``full_hash_below`` bytes, or once ``budget[0]``
    bytes have been hashed.
    """
    stat = path.stat()
    if stat.st_size <= full_hash_below and stat.st_size <= budget[0]:
        budget[0] -= stat.st_size
        return sha256_file(path)
    return f"size-mtime:{stat.st_size}:{stat.st_mtime_ns}"


def _is_conform_output(folder: Path, names: set[str]) -> bool:
    """Whether ``folder`` (holding files ``names``) is written by conform, not read by it.

    A results folder of ``conform fit`` (its ``spec.lock.toml``), a ``conform glmsingle``
    output (``provenance.json`` beside ``trials.tsv``), or one being built (the hidden
    ``.NAME.*.tmp`` of :func:`~conform_core.io.atomic_directory`). BIDS keeps results under
    the study (``derivatives/conform/``): fingerprinting them would change the lock of every
    job of an array as the others finish.
    """
    if folder.name.startswith(".") and folder.name.endswith(".tmp"):
        return True
    return "spec.lock.toml" in names or {"provenance.json", "trials.tsv"} <= names


def walk_inputs(root: Path, *, skip: Callable[[str], bool] | None = None) -> list[Path]:
    """Every input file under ``root`` (itself, if a file), in a stable order.

    Folders of conform's own outputs (:func:`_is_conform_output`) are left out, and so are
    folders whose name ``skip`` returns True for (e.g. other subjects' ``sub-X``).
    """
    if root.is_file():
        return [root]
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here != root and _is_conform_output(here, set(filenames)):
            dirnames[:] = []
            continue
        dirnames[:] = sorted(d for d in dirnames if skip is None or not skip(d))
        found += [here / name for name in sorted(filenames)]
    return found


def input_checksums(location: str | None, *, inputs: dict[str, str] | None = None,
                    full_hash_below: int = 256 * 2**20,
                    hash_budget: int = 2 * 2**30) -> dict[str, str]:
    """Fingerprint every file an analysis reads.

    Parameters
    ----------
    location : str or None
        The dataset location; its files are keyed by their path relative to it.
    inputs : dict of str to str, optional
        Other paths the analysis reads (``"features.weights"`` -> a file, or
        ``"dataset.stimuli_dir"`` -> a folder); their files are keyed
        ``"NAME:relative/path"``. Paths inside ``location`` are covered already.
    full_hash_below : int, default=256 MiB
        Files up to this size get their SHA-256; larger ones (e.g. multi-gigabyte MOSAIC
        subject files, which a full hash would re-read on every run) their size and
        modification time, which still catches a replaced or rewritten file.
    hash_budget : int, default=2 GiB
        Bytes hashed in all; past it (a folder of a hundred thousand images) the
        remaining files are fingerprinted by size and time too. Every file is listed.

    Returns
    -------
    dict of str to str
        Key -> fingerprint, every file covered (no file is left out).
    """
    budget = [hash_budget]
    out: dict[str, str] = {}
    roots: list[tuple[str, Path]] = []
    if location is not None and Path(location).exists():
        roots.append(("", Path(location)))
    for name, value in sorted((inputs or {}).items()):
        path = Path(value)
        if path.exists() and not any(_inside(path, r) for _, r in roots):
            roots.append((f"{name}:", path))
    for prefix, root in roots:
        for path in walk_inputs(root):
            rel = path.name if root.is_file() else path.relative_to(root).as_posix()
            out[prefix + rel] = _fingerprint(path, full_hash_below, budget)
    return out


def _inside(path: Path, root: Path) -> bool:
    try:
        path.resolve().relative_to(root.resolve())
    except ValueError:
        return False
    return True


def path_inputs(stages: Mapping[str, Sequence[StageEntry]]) -> dict[str, str]:
    """Parameters of ``stages`` that name an existing file or folder (``stage.param``).

    A parameter counts when its value (or an item of a list value) is a string that
    looks like a path (has a folder separator or a file suffix) and exists, e.g. a
    dataset's ``stimuli_dir``, an atlas, or CLIP ``weights``.
    """
    found: dict[str, str] = {}
    for stage, entries in stages.items():
        for entry in entries:
            target = stage if len(entries) == 1 else f"{stage}[{entry.label}]"
            for param, value in entry.params.items():
                values = value if isinstance(value, list) else [value]
                for i, item in enumerate(values):
                    if not isinstance(item, str) or not (os.sep in item or Path(item).suffix):
                        continue
                    if Path(item).exists():
                        key = f"{target}.{param}" + (f"[{i}]" if isinstance(value, list) else "")
                        found[key] = item
    return found


def _toml_entry(stage: str, entry: Any, registry: Any) -> dict[str, Any]:
    registered = registry.entry(STAGE_KIND[stage], entry.plugin)
    params = {k: v for k, v in entry.params.items() if v is not None}
    table: dict[str, Any] = {"plugin": entry.plugin, "label": entry.label, "params": params,
                             "distribution": registered.distribution, "version": registered.version}
    nones = sorted(k for k, v in entry.params.items() if v is None)
    if nones:
        table["none_params"] = nones
    return table


def lock_text(plan: Plan, registry: Any, *, name: str, checksums: dict[str, str],
              dataset_params: dict[str, Any] | None = None) -> str:
    """Render the lock file for ``plan`` (deterministic: no timestamps).

    ``dataset_params`` replaces the dataset entry's parameters: those that describe the
    data actually read (:meth:`Dataset.data_params`), e.g. a simulated study folder's own
    settings rather than the spec's simulator defaults.
    """
    doc: dict[str, Any] = {
        "analysis": {"name": name, "seed": plan.seed},
        "evaluation": {"metrics": list(plan.metrics),
                       "split_fallback_test_fraction": plan.test_fraction},
    }
    if plan.context_sizes:  # few-shot fits (absent otherwise, so older locks read the same)
        doc["evaluation"].update(context_sizes=list(plan.context_sizes),
                                 context_draws=plan.context_draws)
    entry = plan.stages["dataset"][0]
    if dataset_params is not None:
        entry = StageEntry(entry.plugin, dict(dataset_params), entry.label)
    dataset = _toml_entry("dataset", entry, registry)
    dataset["subjects"] = list(plan.subjects)
    if plan.location is not None:
        dataset["location"] = plan.location
    if plan.rois:
        dataset["rois"] = list(plan.rois)
    doc["dataset"] = dataset
    for stage in ("glm", "denoiser", "aligner", "encoder", "features"):
        entries = plan.stages.get(stage, ())
        if entries:
            doc[stage] = [_toml_entry(stage, e, registry) for e in entries]
    digest = hashlib.sha256(repr(sorted(checksums.items())).encode()).hexdigest()
    doc["lock"] = {"conform_version": __version__, "inputs_sha256": digest, "inputs": checksums}
    header = ("# Locked analysis written by `conform fit`. Re-run it exactly with\n"
              "#   conform fit spec.lock.toml\n# or swap one stage with --set STAGE=PLUGIN.\n")
    return header + tomli_w.dumps(doc)
