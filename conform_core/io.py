"""Atomic file writes and checksums.

Every file conform writes goes through :func:`atomic_write` (or one of its
wrappers, or :func:`atomic_path` for libraries that need a file name): the
content is written to a temporary file in the destination folder and then
renamed into place with :func:`os.replace`, so a crash leaves either the old
file or the new one, never half of one. Folders are built the same way by
:func:`atomic_directory`.

Files and folders get the permissions a plain ``open(path, "w")`` or
``mkdir`` would give them: ``0o666`` and ``0o777`` less the process umask (so
``0644``/``0755`` under the usual umask ``022``, readable by lab colleagues),
not the private ``0600``/``0700`` that :mod:`tempfile` uses for its names.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

__all__ = [
    "atomic_directory",
    "atomic_path",
    "atomic_write",
    "current_umask",
    "save_npy",
    "sha256_file",
    "to_builtin",
    "write_json",
    "write_text",
]


_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """Return the process umask without changing it where the system allows.

    Linux reports it in ``/proc/self/status`` (read-only, safe with threads). Elsewhere it is
    read by setting and restoring it with :func:`os.umask`, under a lock; another thread
    creating a file at that instant would see ``022``.
    """
    with (contextlib.suppress(OSError, ValueError, IndexError),
          open("/proc/self/status", encoding="ascii", errors="replace") as handle):
        for line in handle:
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def _file_mode() -> int:
    """Mode of a newly created file: ``0o666`` less the umask, as :func:`open` gives."""
    return 0o666 & ~current_umask()


def _make_temp_file(dest: Path) -> tuple[int, str]:
    """Create a temporary file next to ``dest`` (same suffixes) with umask permissions."""
    suffix = ".tmp" + "".join(dest.suffixes[-2:])  # keep ".nii.gz": libraries pick formats by it
    fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=suffix, dir=dest.parent)
    try:
        os.chmod(tmp, _file_mode())  # mkstemp makes 0600
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    return fd, tmp


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike[str], mode: str = "w", **kwargs: Any) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` and rename it onto ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final destination. Its folder is created if missing.
    mode : {"w", "wb"}, default="w"
        Text or binary mode.
    **kwargs
        Passed to :func:`open` (for example ``encoding`` or ``newline``).

    Yields
    ------
    file object
        Write to it; on normal exit it is flushed, fsynced and renamed into place.
        If the block raises, the temporary file is removed and ``path`` is untouched.
        The new file has the permissions :func:`open` would give a new file (``0o666`` less
        the umask), also when it replaces an existing one.
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_write mode must be 'w' or 'wb'; got {mode!r}.")
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
    with atomic_path(path) as tmp, open(tmp, mode, **kwargs) as handle:
        yield handle


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary file name next to ``path``; rename it onto ``path`` on success.

    For libraries that write to a file *name* rather than a file object (``h5py.File``,
    ``nibabel.save``, ``DataFrame.to_parquet``).

    Parameters
    ----------
    path : path-like
        Final destination. Its folder is created if missing.

    Yields
    ------
    Path
        An empty file in the destination folder whose name ends with the destination's
        suffixes (``.nii.gz`` stays ``.nii.gz``). Write it (truncating or replacing it); on
        normal exit it is fsynced and renamed onto ``path`` with the permissions a new file
        gets (``0o666`` less the umask). If the block raises, it is removed and ``path`` is
        untouched.

    Examples
    --------
    >>> with atomic_path("out/sub-01.hdf5") as tmp:  # doctest: +SKIP
    ...     with h5py.File(tmp, "w") as f:
    ...         f["x"] = 1
    """
    dest = Path(path)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, name = _make_temp_file(dest)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _file_mode())  # in case the library recreated it with its own mode
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Build a folder under a temporary name and rename it onto ``path`` on success.

    Parameters
    ----------
    path : path-like
        Final folder. It must not exist unless ``overwrite`` is true.
    overwrite : bool, default=False
        Replace an existing folder (it is removed only after the new one is complete).

    Yields
    ------
    Path
        The temporary folder to fill. It has the permissions :func:`os.mkdir` gives
        (``0o777`` less the umask, keeping a set-group-ID bit inherited from the parent), so
        the published folder is as readable as any other; if the block raises it is removed.
    """
    from .exceptions import DataFileError

    dest = Path(path)
    if dest.exists() and not overwrite:
        raise DataFileError(
            f"Output folder {str(dest)!r} already exists. Choose another --out folder, "
            "or remove it first; conform never overwrites results silently."
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent))
    try:
        inherited = os.stat(tmp).st_mode & stat.S_ISGID  # shared group folders pass it on
        os.chmod(tmp, inherited | (0o777 & ~current_umask()))  # mkdtemp makes 0700
        yield tmp
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{os.getpid()}")
            os.replace(dest, old)
            try:
                os.replace(tmp, dest)
            except BaseException:
                os.replace(old, dest)  # put the previous folder back
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` to ``path`` atomically (UTF-8) and return the path."""
    with atomic_write(path, "w", newline="\n") as handle:
        handle.write(text)
    return Path(path)


def write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Write ``obj`` as JSON (sorted keys, trailing newline) atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=True, default=_json_default) + "\n"
    return write_text(path, text)


def save_npy(path: str | os.PathLike[str], array: np.ndarray) -> Path:
    """Save ``array`` in ``.npy`` format atomically (no pickles)."""
    with atomic_write(path, "wb") as handle:
        np.save(handle, np.asarray(array), allow_pickle=False)
    return Path(path)


def sha256_file(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def to_builtin(value: Any) -> Any:
    """Numpy values, tuples and paths as plain Python (for JSON, TOML and comparisons)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (tuple, list)):
        return [to_builtin(v) for v in value]
    if isinstance(value, dict):
        return {k: to_builtin(v) for k, v in value.items()}
    return value


def _json_default(obj: Any) -> Any:
    converted = to_builtin(obj)
    if converted is obj:
        raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")
    return converted
