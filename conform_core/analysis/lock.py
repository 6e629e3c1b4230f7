"""``spec.lock.toml``: every stage's plugin, distribution version and full parameters."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import tomli_w

from .. import __version__
from ..io import sha256_file
from ..spec import STAGE_KIND
from .plan import Plan

__all__ = ["input_checksums", "lock_text"]


def _fingerprint(path: Path, full_hash_below: int) -> str:
    """SHA-256 of a file, or ``size-mtime:SIZE:MTIME_NS`` for files too large to hash on every run."""
    stat = path.stat()
    if stat.st_size <= full_hash_below:
        return sha256_file(path)
    return f"size-mtime:{stat.st_size}:{stat.st_mtime_ns}"


def input_checksums(location: str | None, *, max_files: int = 10_000,
                    full_hash_below: int = 256 * 2**20) -> dict[str, str]:
    """Fingerprint every file under the dataset location (relative path -> fingerprint).

    Files up to ``full_hash_below`` bytes (256 MiB) get their SHA-256; larger ones (e.g.
    multi-gigabyte MOSAIC subject files, which a full hash would re-read on every run) get
    their size and modification time, which still catches a replaced or rewritten file.
    """
    if location is None:
        return {}
    root = Path(location)
    if root.is_file():
        return {root.name: _fingerprint(root, full_hash_below)}
    if not root.is_dir():
        return {}
    out: dict[str, str] = {}
    for dirpath, _, filenames in sorted(os.walk(root)):
        for name in sorted(filenames):
            path = Path(dirpath) / name
            out[path.relative_to(root).as_posix()] = _fingerprint(path, full_hash_below)
            if len(out) >= max_files:
                return out
    return out


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
              dataset_extra: dict[str, Any]) -> str:
    """Render the lock file for ``plan`` (deterministic: no timestamps)."""
    doc: dict[str, Any] = {
        "analysis": {"name": name, "seed": plan.seed},
        "evaluation": {"metrics": list(plan.metrics),
                       "split_fallback_test_fraction": plan.test_fraction},
    }
    dataset = _toml_entry("dataset", plan.stages["dataset"][0], registry)
    dataset["subjects"] = list(plan.subjects)
    if plan.location is not None:
        dataset["location"] = plan.location
    if plan.rois:
        dataset["rois"] = list(plan.rois)
    dataset.update(dataset_extra)
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
