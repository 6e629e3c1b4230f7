"""A published version as one ``.zip`` download, streamed from the blob store as it is written.

Nothing is staged on disk: :func:`zip_stream` writes the archive into a small in-memory sink
and hands each piece to the HTTP response as soon as it exists, so a 50 GB version costs
the server a megabyte of memory. Members are stored, not deflated (betas and images barely
compress, and the client checks each file's sha256 against the manifest anyway), with
ZIP64 records where a member or the archive passes 4 GiB.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from typing import Any

from ._store import BlobStore

__all__ = ["zip_stream"]

_BLOCK = 1 << 20
_ZIP64_FROM = 1 << 31  # zipfile needs to know in advance for a member of unknown length


class _Sink(io.RawIOBase):
    """A write-only stream that keeps what was written until :meth:`take` is called."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        """Return and forget what was written since the last call."""
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def zip_stream(store: BlobStore, files: Iterable[dict[str, Any]], *,
               date_time: tuple[int, int, int, int, int, int] = (1980, 1, 1, 0, 0, 0)
               ) -> Iterator[bytes]:
    """Yield the bytes of a zip archive of ``files``, read from ``store`` block by block.

    Parameters
    ----------
    store : BlobStore
        Where the files' content lives, by sha256.
    files : iterable of dict
        Manifest entries: ``path``, ``size`` and ``sha256`` each.
    date_time : tuple of six int, default=(1980, 1, 1, 0, 0, 0)
        Modification time written for every member (fixed, so the same version always gives
        the same archive bytes).

    Yields
    ------
    bytes
        Consecutive pieces of the archive (about a megabyte each while a member is copied).
    """
    sink = _Sink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for entry in files:
            info = zipfile.ZipInfo(entry["path"], date_time=date_time)
            info.external_attr = 0o644 << 16
            with store.open(entry["sha256"]) as source, \
                    archive.open(info, "w", force_zip64=int(entry["size"]) >= _ZIP64_FROM) as target:
                while block := source.read(_BLOCK):
                    target.write(block)
                    yield sink.take()
            yield sink.take()
    yield sink.take()
