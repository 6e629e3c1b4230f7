"""The whole flow: pool -> coverage selection -> allocation -> schedule -> package on disk."""

from __future__ import annotations

import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import ConformError, ParameterError
from conform_core.io import atomic_directory, write_json

from ._allocate import Allocation, allocate_stimuli
from ._check import check_package
from ._figure import plot_coverage
from ._inputs import (
    Pool,
    finish_pool,
    images_in_folder,
    load_embeddings,
    read_list_file,
    read_table,
    scan_images,
)
from ._metrics import compare_with_random, nearest_selected
from ._package import (
    Layout,
    StimulusTable,
    write_checksums,
    write_events,
    write_readmes,
    write_stimuli,
)
from ._params import DesignParams, Plan, plan_design
from ._schedule import schedule_participant
from ._select import KCenterResult, select_kcenter, select_stratified

__all__ = ["DesignCheckError", "DesignInputs", "load_pool", "run_design"]


class DesignCheckError(ConformError):
    """A package (or a design about to be written) breaks the design rules."""


@dataclass(frozen=True)
class DesignInputs:
    """Where the candidate pool comes from (exactly one of images, list_file, embeddings).

    Parameters
    ----------
    images, list_file, embeddings : path or None
        The pool: a folder of images, a list file of image paths, or precomputed embeddings.
    ids : path or None
        One stimulus id per row of a ``.npy`` ``embeddings`` file.
    metadata : path or None
        Table with ``id`` and optional ``category``, ``exclude``, ``source``, ``sha256``.
    features : str, default="clip"
        Name of the ``features`` plugin that embeds ``images`` / ``list_file`` (any entry of
        ``conform plugins --kind features``).
    feature_params : dict, default={}
        Parameters of that plugin (checked against its ``param_names()`` and constraints
        before any image is read).
    """

    images: Path | None = None
    list_file: Path | None = None
    embeddings: Path | None = None
    ids: Path | None = None
    metadata: Path | None = None
    features: str = "clip"
    feature_params: dict[str, Any] = field(default_factory=dict)


def _make_features(name: str, params: dict[str, Any]) -> Any:
    """Build the ``features`` plugin ``name`` with ``params`` and check them; nothing is embedded.

    Parameters
    ----------
    name : str
        A registered ``features`` component (``conform plugins --kind features``).
    params : dict
        Its parameters.

    Returns
    -------
    Features
        The component, its parameters checked.

    Raises
    ------
    UnknownComponentError
        If no ``features`` plugin is called ``name`` (with the installed names).
    ParameterError
        If a key is not a parameter of the plugin, or a value breaks its constraints.
    """
    from conform_core.plugins import default_registry
    from conform_core.validation import suggest

    cls = default_registry().get("features", name)
    known = cls.param_names()
    for key in params:
        if key not in known:
            raise ParameterError(
                param="feature_params", value=key, owner="DesignInputs",
                allowed=f"a parameter of the {name!r} features plugin ({cls.__name__})",
                fix=f"{suggest(key, known)} Its parameters are {', '.join(known) or 'none'}.".strip())
    component = cls(**params)
    component.check_params()
    return component


def _features_record(component: Any, name: str) -> dict[str, Any]:
    """Provenance of the embeddings: plugin name, version, parameters and fingerprint."""
    from conform_core.plugins import default_registry

    entry = default_registry().entry("features", name)
    params = {k: (str(v) if isinstance(v, Path) else v) for k, v in component.get_params().items()}
    return {"plugin": name, "version": entry.version, "distribution": entry.distribution,
            "params": params, "fingerprint": str(getattr(component, "fingerprint_", "")),
            "n_computed": int(getattr(component, "n_computed_", 0))}


def _metadata(path: Path | None) -> dict[str, dict[str, str]]:
    if path is None:
        return {}
    rows = read_table(path)
    if rows and "id" not in rows[0] and "path" not in rows[0]:
        raise ParameterError(param="metadata", value=str(path), owner="DesignInputs",
                             allowed="a table with an 'id' (or 'path') column",
                             fix=f"Its columns are {ParameterError.quote(str(list(rows[0])))}.")
    return {(r.get("id") or r.get("path") or ""): r for r in rows}


def load_pool(inputs: DesignInputs, *, stratify: bool = False) -> Pool:
    """Read the candidate pool (embedding images through the ``inputs.features`` plugin)."""
    given = [n for n, v in (("images", inputs.images), ("list_file", inputs.list_file),
                            ("embeddings", inputs.embeddings)) if v is not None]
    if len(given) != 1:
        raise ParameterError(
            "Give exactly one pool: $images=DIR, $list_file=FILE or $embeddings=FILE "
            f"(+ $ids=FILE.txt for .npy); got {', '.join('$' + n for n in given) or 'none'}.",
            param=given[1] if given else "images", owner="DesignInputs")
    meta = _metadata(inputs.metadata)
    if inputs.embeddings is not None:
        emb, ids, extra = load_embeddings(Path(inputs.embeddings), inputs.ids)
        report = {"kind": "embeddings", "file": str(inputs.embeddings), "n_found": len(ids),
                  "unreadable": [], "duplicates": []}
        merged = {i: {**extra.get(i, {}), **meta.get(i, {})} for i in ids}
        return finish_pool(ids, list(ids), [""] * len(ids), emb, merged, report, stratify)
    features = _make_features(inputs.features, dict(inputs.feature_params))
    if inputs.images is not None:
        root = Path(inputs.images)
        files, extra = images_in_folder(root), {}
        kind = "images"
    else:
        files, extra = read_list_file(Path(inputs.list_file))  # type: ignore[arg-type]
        root, kind = Path(inputs.list_file).parent, "list"  # type: ignore[arg-type]
    scanned = scan_images(files, root)
    if not scanned["ids"]:
        raise ConformError(f"None of the {len(files)} images could be read; first problem: "
                           f"{scanned['unreadable'][:1]}. Check the files.")
    from conform_core.data import StimulusSet

    stimuli = StimulusSet(ids=scanned["ids"], sources=scanned["paths"], sha256=scanned["sha256"])
    emb = features.fit_transform(stimuli)
    by_source = {**dict(zip(scanned["given"], scanned["ids"])),
                 **dict(zip(scanned["sources"], scanned["ids"]))}
    merged: dict[str, dict[str, str]] = {}
    for key, row in list(extra.items()) + list(meta.items()):
        sid = by_source.get(key, key)
        merged.setdefault(sid, {}).update({k: v for k, v in row.items() if k != "path"})
    report = {"kind": kind, "file": str(inputs.images or inputs.list_file),
              "n_found": len(files), "unreadable": scanned["unreadable"],
              "duplicates": scanned["duplicates"],
              "features": _features_record(features, inputs.features)}
    return finish_pool(scanned["ids"], scanned["sources"], scanned["sha256"], emb, merged,
                       report, stratify)


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for dist in ("conform-fmri", "numpy", "faiss-cpu", "open_clip_torch", "torch"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _participant_spread(pool: NDArray[np.float32], alloc: Allocation, n_part: int,
                        rng: np.random.Generator) -> list[dict[str, float]]:
    """Mean/p95 distance from a pool sample to each participant's set, and to random sets."""
    probe = np.sort(rng.choice(pool.shape[0], size=min(pool.shape[0], 4000), replace=False))
    selected = np.concatenate([alloc.core, alloc.overlap])
    out = []
    for p in range(n_part):
        own = np.concatenate([alloc.core, alloc.images_of(p)])
        rand = rng.choice(selected, size=own.size, replace=False)
        d_own = nearest_selected(np.ascontiguousarray(pool[np.r_[probe, own]]),
                                 np.arange(probe.size, probe.size + own.size))[: probe.size]
        d_rand = nearest_selected(np.ascontiguousarray(pool[np.r_[probe, rand]]),
                                  np.arange(probe.size, probe.size + rand.size))[: probe.size]
        out.append({"mean": round(float(d_own.mean()), 6),
                    "p95": round(float(np.percentile(d_own, 95)), 6),
                    "random_mean": round(float(d_rand.mean()), 6),
                    "random_p95": round(float(np.percentile(d_rand, 95)), 6)})
    return out


def _select(pool: Pool, params: DesignParams, plan: Plan,
            rng: np.random.Generator) -> KCenterResult:
    n_select = params.core + (plan.n_prototypes if params.allocation == "prototypes"
                              else plan.n_overlap_images)
    if params.stratify and pool.categories is not None:
        return select_stratified(pool.embeddings, pool.categories, n_select, rng=rng)
    first = int(rng.integers(pool.embeddings.shape[0]))
    return select_kcenter(pool.embeddings, n_select, first=first)


def run_design(params: DesignParams, inputs: DesignInputs, out: str | Path, *,
               overwrite: bool = False, pool: Pool | None = None) -> dict[str, Any]:
    """Design the study and write its protocol package to ``out``.

    Everything is checked before the first file is written; the package is built under a
    temporary name, re-validated with :func:`check_package`, and only then renamed to ``out``.

    Returns
    -------
    dict
        The contents of design.json.

    Raises
    ------
    ParameterError
        For impossible designs, with the arithmetic that fails.
    DesignCheckError
        If the finished package breaks a rule (a bug; nothing is written).
    """
    out = Path(out)
    if out.exists() and not overwrite:
        raise ParameterError(param="out", value=str(out), owner="run_design",
                             allowed="a folder that does not exist yet",
                             fix="Choose a new folder, or set $overwrite to replace it.")
    if pool is None:
        pool = load_pool(inputs, stratify=params.stratify)
    plan = plan_design(params, pool.ids.size)
    rng = np.random.default_rng([params.seed, 0])
    selection = _select(pool, params, plan, rng)
    order = selection.order
    alloc = allocate_stimuli(order, pool.embeddings, params, plan, rng)
    rows = np.concatenate([alloc.core, alloc.overlap])
    n_core = alloc.core.size
    members = [list(range(plan.n_participants))] * n_core + [list(m) for m in alloc.members]
    table = StimulusTable(
        ids=pool.ids[rows], files=pool.sources[rows], sha256=pool.sha256[rows],
        group=np.array(["core"] * n_core + ["overlap"] * alloc.overlap.size),
        participants=members,
        categories=None if pool.categories is None else pool.categories[rows],
        prototype=(np.concatenate([np.full(n_core, "n/a"), pool.ids[alloc.prototype]])
                   if params.allocation == "prototypes" else None))
    schedules = []
    for p in range(plan.n_participants):
        own = np.flatnonzero((alloc.members == p).any(axis=1)) + n_core
        schedules.append(schedule_participant(np.arange(n_core), own, params, plan,
                                              [params.seed, 1, p]))
    if np.array_equal(np.sort(rows), np.sort(order)):
        nearest = selection.nearest     # exact already: the selector's final distances
    else:                               # prototypes mode hands out near neighbours instead
        nearest = nearest_selected(pool.embeddings, rows)
    coverage = compare_with_random(pool.embeddings, nearest, rows, rng=rng)
    random_nearest = coverage.pop("random_nearest")
    coverage["participants"] = _participant_spread(pool.embeddings, alloc, plan.n_participants, rng)
    design = {
        "format": "conform-design/1",
        "parameters": params.to_dict(),
        "plan": plan.to_dict(),
        "inputs": pool.report,
        "coverage": coverage,
        "versions": _versions(),
        "selection": {"algorithm": "greedy k-center (exact, batched passes, GEMM updates)",
                      "stratified": bool(params.stratify), "allocation": params.allocation,
                      "distance": "euclidean between L2-normalised embeddings"},
    }
    layout = Layout(params)
    with atomic_directory(out, overwrite=overwrite) as tmp:
        write_json(tmp / "design.json", design)
        write_json(tmp / "coverage.json", coverage)
        write_stimuli(tmp, table, layout, params)
        for p, schedule in enumerate(schedules):
            write_events(tmp, layout, p, schedule, table, plan)
        write_readmes(tmp, layout, plan, design, schedules[0].slots[0, 0])
        plot_coverage(tmp / "coverage.png", pool.embeddings, alloc.core, alloc.overlap, nearest,
                      random_nearest, seed=params.seed)
        write_checksums(tmp)
        problems = check_package(tmp)
        if problems:
            raise DesignCheckError(
                f"The design breaks {len(problems)} rule(s), so nothing was written; first: "
                f"{problems[0]} This is a bug in conform design; please report it with the "
                "command line.")
    return design
