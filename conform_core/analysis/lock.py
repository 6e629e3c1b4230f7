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


def input_checksums(location: str | None, *, max_files: int = 10_000) -> dict[str, str]:
    """SHA-256 of every file under the dataset location (relative path -> hex digest)."""
    if location is None:
        return {}
    root = Path(location)
    if root.is_file():
        return {root.name: sha256_file(root)}
    if not root.is_dir():
        return {}
    out: dict[str, str] = {}
    for dirpath, _, filenames in sorted(os.walk(root)):
        for name in sorted(filenames):
            path = Path(dirpath) / name
            out[path.relative_to(root).as_posix()] = sha256_file(path)
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
