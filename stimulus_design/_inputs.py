"""The candidate pool: images (folder or list file) or precomputed embeddings, plus metadata.

Unreadable or corrupt images are listed and skipped; files with the same SHA-256 count
once (the first by path is kept); rows marked ``exclude`` are dropped before selection.
All embeddings are L2-normalised, so distances are between unit vectors (sqrt(2 - 2 cos)).
"""

from __future__ import annotations

import csv
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from conform_core.exceptions import DataFileError, ParameterError
from conform_core.io import sha256_file

__all__ = [
    "IMAGE_SUFFIXES",
    "Pool",
    "finish_pool",
    "load_embeddings",
    "read_list_file",

    "scan_images",
]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_TRUE = {"1", "true", "yes", "y", "x", "exclude"}


@dataclass
class Pool:
    """The usable candidate images and what was dropped on the way.

    Attributes
    ----------
    ids, sources, sha256 : ndarray of str, shape (n_pool,)
        Stimulus id, the file as written into events files (``stim_file``), and checksum.
    embeddings : ndarray of shape (n_pool, n_features), float32
        Unit-norm embeddings.
    categories : ndarray of str or None
        Category per image (for ``--stratify``).
    report : dict
        Counts and lists: found, unreadable, duplicates, excluded, checksums.
    """

    ids: NDArray[np.str_]
    sources: NDArray[np.str_]
    sha256: NDArray[np.str_]
    embeddings: NDArray[np.float32]
    categories: NDArray[np.str_] | None = None
    report: dict[str, Any] = field(default_factory=dict)


def _check_image(path: Path) -> str | None:
    """Return why ``path`` cannot be decoded, or None if it can."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            if image.format == "JPEG":
                image.draft("RGB", (64, 64))
            image.load()
    except Exception as exc:  # noqa: BLE001  (PIL raises many types for corrupt files)
        return f"{type(exc).__name__}: {exc}"
    return None


def _bad_text(value: str) -> bool:
    return any(ch in value for ch in "\t\n\r")


def scan_images(files: list[Path], root: Path | None) -> dict[str, Any]:
    """Checksum and decode-check image files; return ids, sources, paths and what was dropped.

    Ids are the path relative to ``root`` (when under it) without its suffix.
    """
    ids, sources, paths, shas, given = [], [], [], [], []
    unreadable, duplicates = [], []
    first_by_sha: dict[str, str] = {}
    for path in files:
        rel = path.as_posix()
        if root is not None and path.is_relative_to(root):
            rel = path.relative_to(root).as_posix()
        if _bad_text(rel):
            unreadable.append({"file": repr(rel), "reason": "tab or newline in the file name"})
            continue
        try:
            sha = sha256_file(path)
        except OSError as exc:
            unreadable.append({"file": rel, "reason": f"{type(exc).__name__}: {exc}"})
            continue
        reason = _check_image(path)
        if reason is not None:
            unreadable.append({"file": rel, "reason": reason})
            continue
        if sha in first_by_sha:
            duplicates.append({"file": rel, "same_as": first_by_sha[sha]})
            continue
        first_by_sha[sha] = rel
        stem = rel.rsplit(".", 1)[0] if "." in Path(rel).name else rel
        ids.append(stem)
        sources.append(rel)
        paths.append(str(path.resolve()))
        given.append(path.as_posix())
        shas.append(sha)
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        clash = sorted({i for i in ids if i in seen or seen.add(i)})  # type: ignore[func-returns-value]
        raise DataFileError(
            f"Two images map to the same stimulus id {clash[:3]} (same name, different "
            "suffix). Rename one of them.")
    return {"ids": ids, "sources": sources, "paths": paths, "sha256": shas, "given": given,
            "unreadable": unreadable, "duplicates": duplicates}


def images_in_folder(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursive), sorted by relative path."""
    if not folder.is_dir():
        raise DataFileError(f"--images {str(folder)!r} is not a folder. Pass the folder that "
                            "holds the candidate images.")
    files = sorted((p for p in folder.rglob("*") if p.is_file()
                    and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")),
                   key=lambda p: p.relative_to(folder).as_posix())
    if not files:
        raise DataFileError(
            f"--images {str(folder)!r} holds no image files ({', '.join(IMAGE_SUFFIXES)}). "
            "Check the folder, or pass --embeddings for precomputed features.")
    return files


def read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV, TSV or Parquet file as dicts of strings."""
    if not path.is_file():
        raise DataFileError(f"Table {str(path)!r} does not exist.")
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        cols = {c: [("" if v is None else str(v)) for v in table.column(c).to_pylist()]
                for c in table.column_names if c != "embedding"}
        return [dict(zip(cols, row)) for row in zip(*cols.values())] if cols else []
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    with open(path, newline="", encoding="utf-8") as handle:
        return [dict(row) for row in csv.DictReader(handle, delimiter=delimiter)]


def read_list_file(path: Path) -> tuple[list[Path], dict[str, dict[str, str]]]:
    """Image paths from a list file (.txt: one per line; .csv/.tsv: a ``path`` column).

    Relative paths are taken relative to the list file's folder. Returns the paths and any
    extra columns keyed by the path as written.
    """
    if not path.is_file():
        raise DataFileError(f"--list {str(path)!r} does not exist.")
    base = path.parent
    extra: dict[str, dict[str, str]] = {}
    if path.suffix.lower() in (".csv", ".tsv"):
        rows = read_table(path)
        if rows and "path" not in rows[0]:
            raise DataFileError(f"--list {str(path)!r} needs a 'path' column; it has "
                                f"{list(rows[0])}.")
        names = [r["path"] for r in rows]
        extra = {_resolve(base, r["path"]).as_posix(): r for r in rows}
    else:
        lines = path.read_text(encoding="utf-8").splitlines()
        names = [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    if not names:
        raise DataFileError(f"--list {str(path)!r} lists no images.")
    return [_resolve(base, n) for n in names], extra


def _resolve(base: Path, name: str) -> Path:
    return Path(name) if Path(name).is_absolute() else base / name


def load_embeddings(path: Path, ids_path: Path | None) -> tuple[NDArray[np.float32], list[str],
                                                                dict[str, dict[str, str]]]:
    """Embeddings from ``.npy`` (+ an ids file) or Parquet (``id`` + ``embedding`` columns)."""
    if not path.is_file():
        raise DataFileError(f"--embeddings {str(path)!r} does not exist.")
    extra: dict[str, dict[str, str]] = {}
    if path.suffix.lower() == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        if "id" not in table.column_names or "embedding" not in table.column_names:
            raise DataFileError(
                f"Parquet file {str(path)!r} needs columns 'id' and 'embedding' (a list of "
                f"floats per row); it has {table.column_names}.")
        ids = [str(v) for v in table.column("id").to_pylist()]
        matrix = np.asarray(table.column("embedding").to_pylist(), dtype=np.float32)
        extra = {r["id"]: r for r in read_table(path)}
    else:
        try:
            matrix = np.load(path, mmap_mode="r", allow_pickle=False)
        except Exception as exc:  # noqa: BLE001  (numpy raises several types)
            raise DataFileError(f"--embeddings {str(path)!r} is not a readable .npy file "
                                f"({type(exc).__name__}: {exc}).") from None
        if ids_path is None:
            raise ParameterError("$embeddings=FILE.npy needs $ids=FILE.txt (one id per line, "
                                 "in the order of the rows).", param="ids", owner="DesignInputs")
        if not ids_path.is_file():
            raise DataFileError(f"--ids {str(ids_path)!r} does not exist.")
        ids = [ln.strip() for ln in ids_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if matrix.ndim != 2 or matrix.shape[0] != len(ids):
        raise DataFileError(
            f"--embeddings has shape {matrix.shape} but there are {len(ids)} ids: expected a "
            f"({len(ids)}, n_features) matrix, one row per id in the same order.")
    if len(set(ids)) != len(ids):
        seen: set[str] = set()
        dup = [i for i in ids if i in seen or seen.add(i)][:3]  # type: ignore[func-returns-value]
        raise DataFileError(f"Stimulus ids must be unique; {dup} appear more than once.")
    bad = [i for i in ids if _bad_text(i) or i == "n/a"]
    if bad:
        raise DataFileError(f"Stimulus ids may not contain tabs or newlines or be 'n/a'; got "
                            f"{bad[:3]!r}.")
    return normalise(matrix), ids, extra


def normalise(matrix: NDArray[np.floating]) -> NDArray[np.float32]:
    """L2-normalise rows (float32); reject non-finite or all-zero rows by index."""
    out = np.empty(matrix.shape, np.float32)
    for start in range(0, matrix.shape[0], 65536):
        block = np.asarray(matrix[start:start + 65536], dtype=np.float32)
        norms = np.linalg.norm(block, axis=1)
        bad = np.flatnonzero(~np.isfinite(norms) | (norms == 0))
        if bad.size:
            raise DataFileError(
                f"Embedding rows {(bad[:5] + start).tolist()} are all zero or not finite; "
                "they cannot be normalised. Remove those images or recompute their features.")
        out[start:start + block.shape[0]] = block / norms[:, None]
    return out


def finish_pool(ids: list[str], sources: list[str], shas: list[str],
                embeddings: NDArray[np.float32], meta: dict[str, dict[str, str]],
                report: dict[str, Any], stratify: bool) -> Pool:
    """Apply metadata (category, exclude, source, sha256), dedupe by sha256, build the Pool."""
    n = len(ids)
    cats = [meta.get(i, {}).get("category", "") for i in ids]
    excluded = np.array([meta.get(i, {}).get("exclude", "").strip().lower() in _TRUE for i in ids],
                        bool)
    sources = [meta.get(i, {}).get("source") or meta.get(i, {}).get("path") or s
               for i, s in zip(ids, sources)]
    shas = [meta.get(i, {}).get("sha256") or s for i, s in zip(ids, shas)]
    keep = ~excluded
    seen: dict[str, str] = {}
    for j in range(n):
        if keep[j] and shas[j]:
            if shas[j] in seen:
                keep[j] = False
                report.setdefault("duplicates", []).append({"file": ids[j], "same_as": seen[shas[j]]})
            else:
                seen[shas[j]] = ids[j]
    report["n_excluded"] = int(excluded.sum())
    report["excluded"] = [i for i, e in zip(ids, excluded) if e]
    rows = np.flatnonzero(keep)
    if rows.size == 0:
        raise DataFileError("No usable images are left after removing unreadable, duplicate and "
                            "excluded ones. Check the inputs and the 'exclude' column.")
    categories = None
    if stratify:
        missing = [ids[j] for j in rows if not cats[j]]
        if missing:
            raise ParameterError(
                f"$stratify needs a category for every image; {len(missing)} have none (e.g. "
                f"{ParameterError.quote(str(missing[:3]))}).", param="stratify",
                owner="DesignParams", fix="Give a $metadata table with 'id' and 'category' columns.")
        categories = np.array([cats[j] for j in rows])
    emb = np.ascontiguousarray(embeddings[rows])
    report["n_usable"] = int(rows.size)
    report["embeddings_sha256"] = hashlib.sha256(emb.tobytes()).hexdigest()
    manifest = "\n".join(f"{ids[j]}\t{shas[j]}" for j in rows).encode()
    report["manifest_sha256"] = hashlib.sha256(manifest).hexdigest()
    return Pool(np.array([ids[j] for j in rows]), np.array([sources[j] for j in rows]),
                np.array([shas[j] for j in rows]), emb, categories, report)
