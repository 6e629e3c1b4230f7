"""Archives: the client packs many small files into one tar; the server reads archives safely.

:func:`pack` writes an uncompressed POSIX (pax) tar whose bytes depend only on the files'
names and contents (sorted names, mtime 0, uid/gid 0, mode 0644), so packing the same files
twice gives the same SHA-256: a re-run resumes the same upload and the store deduplicates it.

:func:`inspect` and :func:`extract` read an untrusted ``.tar``, ``.tar.gz``/``.tgz`` (also
bzip2/xz tars) or ``.zip`` in one streaming pass and raise :class:`ArchiveError` on anything
that could escape the destination or exhaust the server: absolute paths, ``..``, Windows paths,
links, devices, fifos, names that are not UTF-8, duplicates, too many members, and sizes or
expansion ratios above :class:`ArchiveLimits`. Sizes are counted while the data streams (a
declared size is only used to reject early, never trusted to accept).
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import os
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from conform_core.exceptions import DataFileError
from conform_core.io import atomic_directory

from ._archive_checks import _CHUNK, ArchiveError, ArchiveLimits, Member, _fail, _Guard
from ._archive_pack import PackedFile, PackManifest, pack

__all__ = [
    "ArchiveError",
    "ArchiveLimits",
    "Member",
    "PackManifest",
    "PackedFile",
    "extract",
    "inspect",
    "pack",
]


class _DestError(Exception):
    """An OSError of the destination disk (full, permissions): the server's problem, re-raised."""

    def __init__(self, error: OSError) -> None:
        super().__init__(str(error))
        self.error = error


@contextlib.contextmanager
def _on_dest() -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise _DestError(exc) from exc


def _mkdir(dest: Path | None, name: str) -> None:
    if dest is not None:
        with _on_dest():
            (dest / name).mkdir(parents=True, exist_ok=True)


class _Counted:
    """A read-only stream that reports every byte it hands out to the guard."""

    def __init__(self, source: IO[bytes], guard: _Guard) -> None:
        self.source, self.guard = source, guard

    def read(self, n: int = -1) -> bytes:
        data = self.source.read(_CHUNK if n is None or n < 0 else min(n, _CHUNK))
        self.guard.pulled(len(data))
        return data


_TAR_KINDS = ((tarfile.TarInfo.issym, "symlink"), (tarfile.TarInfo.islnk, "hardlink"),
              (tarfile.TarInfo.ischr, "character device"), (tarfile.TarInfo.isblk, "block device"),
              (tarfile.TarInfo.isfifo, "fifo"), (tarfile.TarInfo.issparse, "sparse file"),
              (tarfile.TarInfo.isdir, "dir"), (tarfile.TarInfo.isreg, "file"))


def _copy(src: IO[bytes], name: str, guard: _Guard, out: IO[bytes] | None) -> int:
    done = 0
    while chunk := src.read(_CHUNK):
        guard.count(name, done, len(chunk))
        done += len(chunk)
        if out is not None:
            with _on_dest():
                out.write(chunk)
    return done


def _scan_tar(path: Path, source: IO[bytes], guard: _Guard, dest: Path | None) -> list[Member]:
    members = []
    stream = _Counted(source, guard)
    with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8",
                      errors="surrogateescape") as tar:
        for info in tar:
            kind = next((k for test, k in _TAR_KINDS if test(info)), f"tar entry of type {info.type!r}")
            name = guard.entry(info.name, kind)
            if name is None or kind == "dir":
                if name is not None:
                    _mkdir(dest, name)
                continue
            guard.declared(info.name, info.size)
            members.append(Member(name, _member(tar.extractfile(info), name, guard, dest)))
    return members


def _member(src: IO[bytes] | None, name: str, guard: _Guard, dest: Path | None) -> int:
    assert src is not None  # regular files always have a data stream
    with contextlib.ExitStack() as stack:
        out = None
        if dest is not None:
            _mkdir(dest, str(Path(name).parent))
            with _on_dest():
                out = stack.enter_context(open(dest / name, "xb"))
        return _copy(src, name, guard, out)


def _zip_name(info: zipfile.ZipInfo) -> str:
    if info.flag_bits & 0x800:
        return info.orig_filename  # zipfile decoded it as UTF-8 already (strictly)
    raw = info.orig_filename.encode("cp437")  # zipfile read these bytes as cp437
    return raw.decode("utf-8", "surrogateescape")  # non-UTF-8 bytes -> rejected by _clean_name


def _zip_kind(info: zipfile.ZipInfo) -> str:
    mode = info.external_attr >> 16 if info.create_system == 3 else 0
    for test, kind in ((stat.S_ISLNK, "symlink"), (stat.S_ISCHR, "character device"),
                       (stat.S_ISBLK, "block device"), (stat.S_ISFIFO, "fifo"),
                       (stat.S_ISSOCK, "socket")):
        if mode and test(mode):
            return kind
    return "dir" if info.is_dir() else "file"


def _scan_zip(path: Path, guard: _Guard, dest: Path | None) -> list[Member]:
    try:
        archive = zipfile.ZipFile(path)
    except UnicodeDecodeError as exc:
        data = bytes(exc.object)
        raise _fail(path, data.decode("utf-8", "backslashreplace"), "archive.non_utf8",
                    "is flagged UTF-8 but its name is not valid UTF-8.",
                    "Rename the file with a UTF-8 name and re-create the archive.",
                    shown=repr(data)) from None
    members = []
    with archive:
        infos = archive.infolist()
        if len(infos) > guard.limits.max_members:
            raise guard.too_many()
        declared = sum(i.file_size for i in infos)
        if declared > guard.limits.max_total_bytes:
            raise _fail(path, None, "archive.total_too_large",
                        f"declares {declared} expanded bytes; the limit is "
                        f"{guard.limits.max_total_bytes}.", "Upload the data in several archives.")
        for info in infos:
            raw = _zip_name(info)
            name = guard.entry(raw, _zip_kind(info))
            if name is not None and info.flag_bits & 0x1:
                raise _fail(path, raw, "archive.encrypted", "is encrypted.",
                            "Upload it without a password.")
            if name is None or info.is_dir():
                if name is not None:
                    _mkdir(dest, name)
                continue
            guard.declared(raw, info.file_size)
            with archive.open(info) as src:
                members.append(Member(name, _member(src, name, guard, dest)))
    return members


def _scan(path: Path, limits: ArchiveLimits | None, dest: Path | None) -> list[Member]:
    path = Path(path)
    if not path.is_file():
        raise DataFileError(f"Archive {str(path)!r} does not exist or is not a file. "
                            "Pass the path of a .tar, .tar.gz or .zip file.")
    guard = _Guard(path, limits or ArchiveLimits())
    with open(path, "rb") as handle:
        magic = handle.read(6)
        handle.seek(0)
        try:
            if magic[:2] == b"PK":
                return _scan_zip(path, guard, dest)
            openers: dict[bytes, Any] = {b"\x1f\x8b": gzip.GzipFile, b"BZ": bz2.BZ2File,
                                         b"\xfd7": lzma.LZMAFile}
            opener = openers.get(magic[:2])
            if opener is None:
                return _scan_tar(path, handle, guard, dest)
            with opener(fileobj=handle) if opener is gzip.GzipFile else opener(handle) as source:
                return _scan_tar(path, source, guard, dest)
        except _DestError as exc:
            raise exc.error from None  # the server's own disk, not the archive
        except (tarfile.TarError, zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError,
                NotImplementedError, OSError) as exc:
            raise _fail(path, None, "archive.corrupt",
                        f"is not a readable .tar, .tar.gz or .zip ({type(exc).__name__}: {exc}).",
                        "Re-create it (tar -cf or zip) and upload it again.") from None


def inspect(path: str | os.PathLike[str], limits: ArchiveLimits | None = None) -> list[Member]:
    """List the files of an untrusted archive after checking every member and byte.

    Reads the whole archive once (decompressing it) without writing anything, so sizes are
    counted, not taken from headers.

    Parameters
    ----------
    path : path-like
        A ``.tar``, ``.tar.gz``/``.tgz`` (or bzip2/xz tar) or ``.zip`` file; the format is
        recognised from its first bytes, not its name.
    limits : ArchiveLimits or None, default=None
        None: the defaults.

    Returns
    -------
    list of Member
        Regular files in archive order, with normalised names (``./a//b`` -> ``a/b``).

    Raises
    ------
    ArchiveError
        At the first unsafe member or crossed limit; ``code`` and the message give the reason.
    """
    return _scan(Path(path), limits, None)


def extract(path: str | os.PathLike[str], dest: str | os.PathLike[str],
            limits: ArchiveLimits | None = None) -> list[Member]:
    """Unpack an untrusted archive into the new folder ``dest``, all or nothing.

    Files are written into a temporary folder next to ``dest``, which is renamed to ``dest``
    only when every member passed; on any error it is removed, so nothing half-written is
    ever visible.

    Parameters
    ----------
    path : path-like
        The archive (as for :func:`inspect`).
    dest : path-like
        The folder to create; it must not exist.
    limits : ArchiveLimits or None, default=None
        None: the defaults.

    Returns
    -------
    list of Member
        The files written, in archive order.

    Raises
    ------
    ArchiveError
        As :func:`inspect`.
    DataFileError
        If ``dest`` already exists.
    """
    with atomic_directory(dest) as tmp:
        return _scan(Path(path), limits, tmp)


