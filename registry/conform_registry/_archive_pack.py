"""``pack``: many files into one deterministic, uncompressed tar (the client's upload unit)."""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from conform_core.io import atomic_write

from ._archive_checks import _clean_name, _fail

__all__ = ["PackManifest", "PackedFile", "pack"]


@dataclass(frozen=True)
class PackedFile:
    """One file written by :func:`pack`.

    Parameters
    ----------
    name : str
        Its name in the tar.
    size : int
        Its size in bytes.
    sha256 : str
        The SHA-256 (hex) of the bytes packed.
    """

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class PackManifest:
    """What :func:`pack` wrote.

    Parameters
    ----------
    path : Path
        The tar file.
    size : int
        Its size in bytes.
    sha256 : str
        Its SHA-256 (hex), computed while writing.
    files : tuple of PackedFile
        Its members in archive order (sorted by name).
    """

    path: Path
    size: int
    sha256: str
    files: tuple[PackedFile, ...]

    def entries(self) -> list[dict[str, Any]]:
        """Return the members as ``{"path", "size", "sha256"}`` dicts (the registry manifest)."""
        return [{"path": f.name, "size": f.size, "sha256": f.sha256} for f in self.files]


class _Hashing:
    """Write-through file wrapper that hashes and counts what tarfile writes."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out, self.digest, self.size = out, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.out.write(data)

    def tell(self) -> int:
        return self.size


class _HashingReader:
    def __init__(self, src: IO[bytes]) -> None:
        self.src, self.digest = src, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self.src.read(n)
        self.digest.update(data)
        return data


def _collect(files: Iterable[tuple[str | os.PathLike[str], str]] | str | os.PathLike[str],
             out: Path) -> list[tuple[Path, str]]:
    if isinstance(files, (str, os.PathLike)):
        root = Path(files)
        found = []
        for folder, dirnames, names in os.walk(root):
            dirnames.sort()
            for n in names:
                p = Path(folder) / n
                if p.is_file() and p.resolve() != out.resolve():
                    found.append((p, p.relative_to(root).as_posix()))
        files = found
    chosen: dict[str, Path] = {}
    for source, name in files:
        clean = _clean_name("pack", name)
        if clean is None or clean in chosen:
            raise _fail("pack", name, "archive.duplicate" if clean else "archive.bad_name",
                        "appears twice." if clean else "is empty.", "Give each file its own name.")
        chosen[clean] = Path(source)
    return [(chosen[k], k) for k in sorted(chosen)]


def pack(files: Iterable[tuple[str | os.PathLike[str], str]] | str | os.PathLike[str],
         out_path: str | os.PathLike[str]) -> PackManifest:
    """Pack files into one uncompressed tar whose bytes depend only on names and contents.

    Parameters
    ----------
    files : iterable of (path, name) or path-like
        ``(file on disk, name in the archive)`` pairs, or a folder whose files are packed
        under their paths relative to it (symlinks to files are packed as the file).
    out_path : path-like
        The tar to write (atomically: a temporary name, then renamed).

    Returns
    -------
    PackManifest
        The tar's size and SHA-256 and each member's size and SHA-256, sorted by name.

    Raises
    ------
    ArchiveError
        If a name is unsafe (absolute, ``..``, backslash, not UTF-8) or used twice.

    Notes
    -----
    Members are sorted by name and written as pax regular files with mtime 0, uid/gid 0,
    empty owner names and mode 0644; folders are implied by the names. The same files give
    the same bytes, hence the same SHA-256 and a resumable, deduplicated upload.
    """
    out = Path(out_path)
    entries = _collect(files, out)
    packed = []
    with atomic_write(out, "wb") as handle:
        sink = _Hashing(handle)
        with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT,
                          encoding="utf-8") as tar:
            for source, name in entries:
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = source.stat().st_size, 0, 0o644
                info.uid = info.gid = 0
                info.uname = info.gname = ""
                with open(source, "rb") as src:
                    reader = _HashingReader(src)
                    tar.addfile(info, reader)
                packed.append(PackedFile(name, info.size, reader.digest.hexdigest()))
    return PackManifest(out, sink.size, sink.digest.hexdigest(), tuple(packed))
