"""The rules every archive member must pass (see :mod:`._archive`): names, types, sizes, ratio.

:class:`_Guard` follows one archive as it streams: it counts members and expanded bytes and
raises :class:`ArchiveError` (with a stable ``code``, the member and the fix) at the first
member or byte that crosses a rule of :class:`ArchiveLimits`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conform_core.exceptions import ConformError, ParameterError

__all__ = ["ArchiveError", "ArchiveLimits", "Member"]

GiB = 1 << 30
_CHUNK = 1 << 20
_HEADER_SLACK = 16 << 20  # tar header bytes allowed beyond 8 KiB per member (pax/long names)
_DRIVE = re.compile(r"^[A-Za-z]:")
_FIX_LAYOUT = "Re-create the archive from inside the data folder (e.g. `tar -cf data.tar -C folder .`)."


class ArchiveError(ConformError, ValueError):
    """An archive is unsafe or unreadable; ``code`` says why and ``member`` names the entry.

    Parameters
    ----------
    message : str
        What is wrong, naming the archive and the member, and the fix.
    code : str, default="archive.invalid"
        A stable machine-readable reason, e.g. ``"archive.traversal"`` or ``"archive.ratio"``.
    member : str or None, default=None
        The offending member as stored in the archive, when there is one.
    """

    def __init__(self, message: str, code: str = "archive.invalid", member: str | None = None):
        super().__init__(message)
        self.code = code
        self.member = member

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (str(self), self.code, self.member))


@dataclass(frozen=True)
class ArchiveLimits:
    """What the server accepts in one archive.

    Parameters
    ----------
    max_members : int, default=100_000
        Entries (files and folders) in the archive.
    max_file_bytes : int, default=50 GiB
        Expanded size of any one file.
    max_total_bytes : int, default=200 GiB
        Expanded size of all files together.
    max_ratio : float, default=200
        Expanded bytes per byte of the archive on disk (zip-bomb guard).
    ratio_floor_bytes : int, default=1 MiB
        The ratio is enforced once this many bytes have expanded, so a tiny archive of
        very compressible text is not mistaken for a bomb.
    """

    max_members: int = 100_000
    max_file_bytes: int = 50 * GiB
    max_total_bytes: int = 200 * GiB
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1 << 20

    def __post_init__(self) -> None:
        for name in ("max_members", "max_file_bytes", "max_total_bytes", "max_ratio"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ParameterError(param=name, value=value, owner="ArchiveLimits",
                                     allowed="a positive number",
                                     fix="Set it in the registry configuration.")
        if self.ratio_floor_bytes < 0:
            raise ParameterError(param="ratio_floor_bytes", value=self.ratio_floor_bytes,
                                 owner="ArchiveLimits", allowed="an int >= 0")


@dataclass(frozen=True)
class Member:
    """One file of an archive.

    Parameters
    ----------
    name : str
        Its normalised relative path (``/``-separated, no ``.`` or empty parts).
    size : int
        Its size in bytes, as counted while reading (not as declared).
    """

    name: str
    size: int


def _fail(archive: Path | str, member: str | None, code: str, what: str, fix: str,
          shown: str | None = None) -> ArchiveError:
    if shown is None and member is not None:
        shown = repr(member)
    where = f"{archive}: member {shown}" if shown is not None else f"{archive}:"
    return ArchiveError(f"{where} {what} {fix}", code, member)


def _clean_name(archive: Path | str, raw: str) -> str | None:
    """Return the safe relative path of ``raw`` (None for a ``.`` entry) or raise."""
    try:
        raw.encode("utf-8")
    except UnicodeEncodeError:
        data = raw.encode("utf-8", "surrogateescape")
        raise _fail(archive, data.decode("utf-8", "backslashreplace"), "archive.non_utf8",
                    "has a name that is not UTF-8.",
                    "Rename the file with a UTF-8 name (or re-create the archive with UTF-8 "
                    "names, e.g. `zip` with the -UN=UTF8 option).", shown=repr(data)) from None
    if "\\" in raw or _DRIVE.match(raw):
        raise _fail(archive, raw, "archive.windows_path",
                    "is a Windows path (backslash or drive letter).",
                    "Use '/' between folders and relative paths; " + _FIX_LAYOUT)
    if raw.startswith("/"):
        raise _fail(archive, raw, "archive.absolute", "is an absolute path.",
                    "Archives must hold relative paths only. " + _FIX_LAYOUT)
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise _fail(archive, raw, "archive.traversal", "contains '..' (path traversal).",
                    "Remove '..' from member names. " + _FIX_LAYOUT)
    if any(ord(c) < 32 or ord(c) == 127 for c in raw):
        raise _fail(archive, raw, "archive.bad_name", "contains control characters.",
                    "Rename the file with printable characters only.")
    return "/".join(parts) or None


class _Guard:
    """Counts members and bytes while one archive streams, raising at the first limit crossed."""

    def __init__(self, archive: Path, limits: ArchiveLimits) -> None:
        self.archive, self.limits = archive, limits
        self.disk = max(archive.stat().st_size, 1)
        self.n_members = 0
        self.data = 0  # member bytes read
        self.stream = 0  # decompressed bytes the tar parser pulled (headers included)
        self.files: set[str] = set()
        self.dirs: set[str] = set()

    def entry(self, raw: str, kind: str) -> str | None:
        """Check one entry (``kind``: file, dir or a rejected type); return its clean name."""
        self.n_members += 1
        if self.n_members > self.limits.max_members:
            raise self.too_many()
        name = _clean_name(self.archive, raw)
        if kind not in ("file", "dir"):
            fix = {"symlink": "Archive the file it points to instead (`tar -h`, `zip` without -y).",
                   "hardlink": "Archive the file itself (`tar --hard-dereference`)."}
            raise _fail(self.archive, raw, "archive.link" if "link" in kind else "archive.special",
                        f"is a {kind}; only regular files and folders are accepted.",
                        fix.get(kind, "Leave it out of the archive."))
        if name is None:
            return None
        parents = name.split("/")[:-1]
        for i in range(1, len(parents) + 1):
            prefix = "/".join(parents[:i])
            if prefix in self.files:
                raise _fail(self.archive, raw, "archive.conflict",
                            f"lies inside {prefix!r}, which is a file in the same archive.",
                            "Rename one of them.")
            self.dirs.add(prefix)
        if kind == "dir":
            if name in self.files:
                raise _fail(self.archive, raw, "archive.conflict",
                            "is both a file and a folder.", "Rename one of them.")
            self.dirs.add(name)
            return name
        if name in self.files or name in self.dirs:
            what = "appears twice" if name in self.files else "is both a file and a folder"
            raise _fail(self.archive, raw, "archive.duplicate", f"{what} (as {name!r}).",
                        "Keep one copy per path.")
        self.files.add(name)
        return name

    def too_many(self) -> ArchiveError:
        return _fail(self.archive, None, "archive.too_many_members",
                     f"has more than {self.limits.max_members} members.",
                     "Split the data over several archives, or pack small files into fewer, "
                     "larger ones (one HDF5 or NPZ per run).")

    def declared(self, name: str, size: int) -> None:
        if size > self.limits.max_file_bytes:
            raise self._too_big(name, size)

    def _too_big(self, name: str, size: int) -> ArchiveError:
        return _fail(self.archive, name, "archive.file_too_large",
                     f"expands to more than {self.limits.max_file_bytes} bytes ({size}+).",
                     "Split it, or ask the registry operator to raise max_file_bytes.")

    def count(self, name: str, done: int, n: int) -> None:
        """Add ``n`` bytes of member ``name`` (``done`` counted before) and check every limit."""
        self.data += n
        if done + n > self.limits.max_file_bytes:
            raise self._too_big(name, done + n)
        if self.data > self.limits.max_total_bytes:
            raise _fail(self.archive, name, "archive.total_too_large",
                        f"takes the expanded total above {self.limits.max_total_bytes} bytes.",
                        "Upload the data in several archives, or ask the operator to raise "
                        "max_total_bytes.")
        self._ratio(name)

    def pulled(self, n: int) -> None:
        """Count ``n`` decompressed bytes read by the tar parser (headers and padding too)."""
        self.stream += n
        if self.stream - self.data > _HEADER_SLACK + 8192 * self.n_members:
            raise _fail(self.archive, None, "archive.headers",
                        f"tar headers take more than {self.stream - self.data} bytes "
                        f"around {self.n_members} members.",
                        "Re-create the archive with a standard tar; huge pax or long-name "
                        "headers are refused.")
        self._ratio(None)

    def _ratio(self, name: str | None) -> None:
        expanded = max(self.data, self.stream)
        if expanded > self.limits.ratio_floor_bytes and expanded > self.limits.max_ratio * self.disk:
            raise _fail(self.archive, name, "archive.ratio",
                        f"expands more than {self.limits.max_ratio:g} times its size on disk "
                        f"({expanded} bytes from {self.disk}; a zip bomb?).",
                        "Upload the files uncompressed (a plain .tar) if they are this "
                        "compressible, or ask the operator to raise max_ratio.")


