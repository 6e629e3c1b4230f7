"""``validate(path)``: every way a file departs from the MOSAIC per-subject format."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from conform_core.exceptions import ConformError

from . import _source as src
from ._spec import (
    _BETA_RE,
    _CEILING_RE,
    BETA_KEY_PATTERN,
    CEILING_KEY_PATTERN,
    N_VERTICES,
    REQUIRED_ATTRIBUTES,
    parse_file_name,
    stimulus_stem,
)

__all__ = ["validate"]

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def validate(path: str | os.PathLike[str], *, check_values: bool = True) -> list[str]:
    """List every departure of ``path`` from the MOSAIC format (empty list: compliant).

    Checks the file name, the eleven root attributes and their types, group layout and key
    order, every beta (key syntax, shape, dtype, the four attributes, ``nan_indices`` against
    the data when ``check_values``), repetitions contiguous from 0, noise ceilings (key, shape,
    attributes, range 0-100) and ``nan_indices_all``. Merged files are checked per subject group.

    Parameters
    ----------
    path : path
        A per-subject ``sub-XX_<CODE>.hdf5`` or a merged file.
    check_values : bool, default=True
        Read every vector to compare its NaNs with ``nan_indices`` (reads the whole file once,
        one trial at a time).

    Returns
    -------
    list of str
        One line per problem, each naming the file, the key and the fix.
    """
    path = Path(path)
    try:
        h5 = src.open_h5(path)
    except ConformError as exc:
        return [str(exc)]
    with h5:
        parsed = parse_file_name(path)
        if parsed is not None:
            return _check_subject(h5, str(path), parsed.subject, parsed.code, check_values)
        groups = [
            k for k, v in h5.items() if isinstance(v, h5py.Group) and parse_file_name(f"{k}.hdf5")
        ]
        if not groups:
            return [
                (
                    f"{path}: file name does not follow sub-XX_<CODE>.hdf5 (CODE without '_') and the file "
                    "holds no sub-XX_<CODE> groups of a merged file. Rename it, e.g. sub-01_NSD.hdf5."
                )
            ]
        problems = []
        for name in groups:
            group, part = h5[name], parse_file_name(f"{name}.hdf5")
            assert part is not None
            if isinstance(group.get("betas"), h5py.Dataset):
                problems += _check_chunks(group, f"{path}:/{name}")
            else:
                problems += _check_subject(
                    group, f"{path}:/{name}", part.subject, part.code, check_values
                )
        return problems


def _attr_problems(root: h5py.Group, where: str, subject: str) -> list[str]:
    problems = []
    attrs = {k: src.as_str(v) for k, v in root.attrs.items()}
    for name, types in REQUIRED_ATTRIBUTES.items():
        if name not in attrs:
            problems.append(
                f"{where}: root attribute {name!r} is missing. Add it "
                f"(f.attrs[{name!r}] = ...; a {' or '.join(t.__name__ for t in types)})."
            )
            continue
        value = attrs[name]
        if isinstance(value, (np.integer, np.floating)):
            value = value.item()
        if not isinstance(value, types) or (isinstance(value, str) and not value.strip()):
            problems.append(
                f"{where}: root attribute {name!r} must be a non-empty "
                f"{' or '.join(t.__name__ for t in types)}; got {value!r}. Set it to a scalar value."
            )
    if "subjectID" in attrs and attrs["subjectID"] != subject:
        problems.append(
            f"{where}: attribute subjectID={attrs['subjectID']!r} disagrees with the name "
            f"({subject!r}). Make them the same."
        )
    if isinstance(attrs.get("owner_email"), str) and not _EMAIL.match(attrs["owner_email"]):
        problems.append(
            f"{where}: owner_email {attrs['owner_email']!r} is not an e-mail address. Give one "
            "responsible person's address."
        )
    if isinstance(attrs.get("github_url"), str) and not attrs["github_url"].startswith(
        "https://github.com/"
    ):
        problems.append(
            f"{where}: github_url {attrs['github_url']!r} must be the public GitHub repository "
            "with the preprocessing code (https://github.com/...)."
        )
    if isinstance(attrs.get("visual_angle"), str):
        try:
            float(attrs["visual_angle"])
        except ValueError:
            problems.append(
                f"{where}: visual_angle {attrs['visual_angle']!r} is not a number of degrees."
            )
    return problems


def _tracks_order(group: h5py.Group) -> bool:
    flags = group.id.get_create_plist().get_link_creation_order()
    return bool(flags & h5py.h5p.CRT_ORDER_TRACKED)


def _check_subject(
    root: h5py.Group, where: str, subject: str, code: str, check_values: bool
) -> list[str]:
    problems = _attr_problems(root, where, subject)
    union: set[int] = set()
    if "betas" not in root or not isinstance(root["betas"], h5py.Group):
        problems.append(
            f"{where}: no 'betas' group. Store one float64 ({N_VERTICES},) dataset per trial under "
            "/betas."
        )
    else:
        betas = root["betas"]
        if not _tracks_order(betas):
            problems.append(
                f"{where}: group 'betas' does not track insertion order, so readers get keys "
                "alphabetically instead of test, train, artificial. Create it with track_order=True."
            )
        reps: dict[tuple[str, str], list[int]] = defaultdict(list)
        for key, item in betas.items():
            problems += _check_beta(key, item, where, subject, code, check_values, reps, union)
        for (stem, phase), found in reps.items():
            if sorted(found) != list(range(len(found))):
                problems.append(
                    f"{where}: stimulus {stem!r} (phase {phase}) has repetitions {sorted(found)}; "
                    "they must count 0, 1, ... without gaps. Renumber the rep-<r> keys."
                )
    if "noiseceilings" in root:
        for key, item in root["noiseceilings"].items():
            problems += _check_ceiling(key, item, where, subject, code, union)
    if "nan_indices_all" not in root:
        problems.append(
            f"{where}: dataset 'nan_indices_all' is missing. Store the union of every nan_indices "
            "attribute as int64."
        )
    else:
        stored = np.asarray(root["nan_indices_all"][()])
        if stored.size and stored.dtype.kind not in "iu":
            problems.append(f"{where}: nan_indices_all must be int64; got {stored.dtype}.")
        elif set(stored.astype(np.int64).tolist()) != union:
            problems.append(
                f"{where}: nan_indices_all ({stored.size} entries) is not the union of the nan_indices "
                f"attributes ({len(union)} entries). Rewrite it as that union."
            )
    return problems


def _check_beta(
    key: str,
    item: Any,
    where: str,
    subject: str,
    code: str,
    check_values: bool,
    reps: dict[tuple[str, str], list[int]],
    union: set[int],
) -> list[str]:
    at = f"{where}: beta {key!r}"
    match = _BETA_RE.match(key)
    if match is None:
        return [f"{at} does not parse; keys look like {BETA_KEY_PATTERN!r}. Rename it."]
    problems = []
    if (match["subject"], match["code"]) != (subject, code):
        problems.append(
            f"{at} names {match['subject']}_{match['code']} but the file is {subject}_{code}. Rename it."
        )
    if (
        not isinstance(item, h5py.Dataset)
        or item.shape != (N_VERTICES,)
        or item.dtype != np.float64
    ):
        shape = getattr(item, "shape", None)
        dtype = getattr(item, "dtype", None)
        return problems + [
            (
                f"{at} must be a float64 dataset of shape ({N_VERTICES},); got shape {shape}, dtype "
                f"{dtype}. Write one fsLR 91k vector per trial."
            )
        ]
    attrs = item.attrs
    for name in ("nan_indices", "phase", "repetition", "presented_stimulus_filename"):
        if name not in attrs:
            problems.append(f"{at} lacks attribute {name!r}. Add it.")
    phase = src.as_str(attrs.get("phase"))
    if "phase" in attrs and phase != match["phase"]:
        problems.append(
            f"{at} has phase={phase!r} but its key says phase-{match['phase']}. Make them agree."
        )
    if "repetition" in attrs and int(attrs["repetition"]) != int(match["rep"]):
        problems.append(
            f"{at} has repetition={int(attrs['repetition'])} but its key says rep-{match['rep']}."
        )
    filename = src.as_str(attrs.get("presented_stimulus_filename"))
    if isinstance(filename, str) and stimulus_stem(filename) != match["stem"]:
        problems.append(
            f"{at}: presented_stimulus_filename {filename!r} does not match the key's stem "
            f"{match['stem']!r}. The key must be the file name without its extension."
        )
    reps[(match["stem"], match["phase"])].append(int(match["rep"]))
    if "nan_indices" in attrs:
        listed = np.asarray(attrs["nan_indices"]).reshape(-1)
        if listed.size and listed.dtype.kind not in "iu":
            problems.append(f"{at}: nan_indices must be int64; got {listed.dtype}.")
        listed = np.unique(listed.astype(np.int64))
        union.update(listed.tolist())
        if check_values:
            actual = np.flatnonzero(~np.isfinite(item[()]))
            if not np.array_equal(actual, listed):
                problems.append(
                    f"{at}: nan_indices lists {listed.size} vertices but the data is non-finite at "
                    f"{actual.size} (e.g. {np.setxor1d(actual, listed)[:5].tolist()}). Set it to "
                    "np.flatnonzero(~np.isfinite(beta))."
                )
    return problems


def _check_ceiling(
    key: str, item: Any, where: str, subject: str, code: str, union: set[int]
) -> list[str]:
    at = f"{where}: noise ceiling {key!r}"
    match = _CEILING_RE.match(key)
    if match is None:
        return [f"{at} does not parse; keys look like {CEILING_KEY_PATTERN!r}. Rename it."]
    problems = []
    if (match["subject"], match["code"]) != (subject, code):
        problems.append(
            f"{at} names {match['subject']}_{match['code']} but the file is {subject}_{code}."
        )
    if (
        not isinstance(item, h5py.Dataset)
        or item.shape != (N_VERTICES,)
        or item.dtype != np.float64
    ):
        return problems + [
            f"{at} must be float64 of shape ({N_VERTICES},); got {getattr(item, 'shape', None)}."
        ]
    values = item[()]
    finite = values[np.isfinite(values)]
    if finite.size and (finite.min() < 0 or finite.max() > 100):
        problems.append(
            f"{at} has values outside [0, 100] ({finite.min():.3g}..{finite.max():.3g}); ceilings are "
            "stored in percent."
        )
    expect_phase = "train" if match["split"] == "train" else "test"
    if src.as_str(item.attrs.get("phase")) != expect_phase:
        problems.append(f"{at}: attribute phase must be {expect_phase!r}.")
    if src.as_str(item.attrs.get("n")) != match["n"]:
        problems.append(f"{at}: attribute n must be {match['n']!r} (a str).")
    if "nan_indices" not in item.attrs:
        problems.append(f"{at} lacks attribute 'nan_indices'.")
    else:
        listed = np.unique(np.asarray(item.attrs["nan_indices"]).astype(np.int64))
        union.update(listed.tolist())
        if not np.array_equal(listed, np.flatnonzero(~np.isfinite(values))):
            problems.append(
                f"{at}: nan_indices disagree with the non-finite values. Recompute them."
            )
    return problems


def _check_chunks(group: h5py.Group, where: str) -> list[str]:
    problems = []
    betas = group["betas"]
    if betas.ndim != 2 or betas.shape[1] != N_VERTICES:
        problems.append(
            f"{where}: merged 'betas' must be (n_trials, {N_VERTICES}); got {betas.shape}."
        )
    n = betas.shape[0]
    for name in ("presented_stimulus_filename", "nan_indices"):
        if name not in group:
            problems.append(f"{where}: merged-chunks group lacks {name!r}.")
    if "nan_indices" in group and len(group["nan_indices"]) != n:
        problems.append(
            f"{where}: 'nan_indices' lists {len(group['nan_indices'])} keys for {n} rows of betas; "
            "rows map to keys by order, so they must match."
        )
    if "nan_indices" in group:
        bad = [k for k in group["nan_indices"] if not _BETA_RE.match(k)]
        problems += [
            f"{where}: key {k!r} does not parse; keys look like {BETA_KEY_PATTERN!r}."
            for k in bad[:10]
        ]
    return problems
