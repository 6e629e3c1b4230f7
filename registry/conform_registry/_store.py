"""Content-addressed blob storage over any fsspec filesystem.

Layout under the store's root::

    sha256/ab/cd/abcd...        one blob per distinct content, named by its sha256
    staging/<upload_id>/<i>     chunk i of an upload in progress
    tmp/                        files being written (never read)

Nothing appears under a final name half-written: every file is written to a temporary
name and then renamed (local disks: ``os.replace`` after ``fsync`` of the file, then of the
folder, so an acknowledged chunk or blob survives a power cut) or moved (``fs.mv``, other
filesystems). A blob is moved into place only after its sha256 and size were checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO

import fsspec
from fsspec.implementations.local import LocalFileSystem

from conform_core.exceptions import ConformError, DataFileError, ParameterError

__all__ = ["BlobIntegrityError", "BlobNotFoundError", "BlobStore", "EMPTY_SHA256"]

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
"""The sha256 of zero bytes (the blob of an empty file)."""

_SHA = re.compile(r"^[0-9a-f]{64}$")
_UPLOAD_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")
_BLOCK = 1 << 20


class BlobIntegrityError(ConformError, ValueError):
    """Content does not match the sha256 or size it was declared with.

    Attributes
    ----------
    expected_sha256, actual_sha256 : str
        Declared and computed digests.
    expected_size, actual_size : int or None
        Declared and counted byte sizes.
    """

    def __init__(self, message: str, *, expected_sha256: str, actual_sha256: str,
                 expected_size: int | None = None, actual_size: int | None = None) -> None:
        super().__init__(message)
        self.expected_sha256 = expected_sha256
        self.actual_sha256 = actual_sha256
        self.expected_size = expected_size
        self.actual_size = actual_size


class BlobNotFoundError(DataFileError, FileNotFoundError):
    """A blob or an upload's chunk is not in the store."""


def _check_sha(value: Any, name: str = "sha256") -> str:
    if isinstance(value, str) and _SHA.match(value.lower()):
        return value.lower()
    raise ParameterError(param=name, value=value, owner="BlobStore",
                         allowed="a sha256 digest: 64 hexadecimal characters",
                         fix="Pass hashlib.sha256(data).hexdigest().")


def _check_upload_id(value: Any) -> str:
    if isinstance(value, str) and _UPLOAD_ID.match(value):
        return value
    raise ParameterError(param="upload_id", value=value, owner="BlobStore",
                         allowed="1-128 letters, digits, '_' or '-', starting with a letter or digit",
                         fix="Use the upload's id, e.g. uuid.uuid4().hex.")


def _check_count(value: Any, name: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    raise ParameterError(param=name, value=value, owner="BlobStore", allowed="an int in [0, inf)")


class BlobStore:
    """Blobs named by their sha256, and the staging area of chunked uploads.

    Parameters
    ----------
    url : str
        An fsspec URL of the store's root folder: ``file:///srv/conform/blobs``,
        ``memory://blobs``, ``s3://bucket/blobs``, ... (created when needed).
    **storage_options
        Passed to the filesystem (credentials, endpoints).

    Examples
    --------
    >>> import hashlib
    >>> store = BlobStore("memory://doctest-blobs")
    >>> store.put_chunk("upload1", 0, b"hello ") == hashlib.sha256(b"hello ").hexdigest()
    True
    >>> _ = store.put_chunk("upload1", 1, b"world")
    >>> sha = store.assemble("upload1", 2, hashlib.sha256(b"hello world").hexdigest(), 11)
    >>> with store.open(sha) as handle:
    ...     handle.read()
    b'hello world'
    """

    def __init__(self, url: str, **storage_options: Any) -> None:
        self.url = url
        fs, root = fsspec.core.url_to_fs(url, **storage_options)
        self.fs: fsspec.AbstractFileSystem = fs
        self.root: str = root.rstrip("/") or "/"
        self._local = isinstance(fs, LocalFileSystem)

    def __repr__(self) -> str:
        return f"BlobStore({self.url!r})"

    # ------------------------------------------------------------------ paths
    def _join(self, *parts: str) -> str:
        return "/".join([self.root.rstrip("/"), *parts])

    def blob_path(self, sha256: str) -> str:
        """Return the path (on the store's filesystem) of the blob ``sha256``."""
        sha = _check_sha(sha256)
        return self._join("sha256", sha[:2], sha[2:4], sha)

    def _chunk_path(self, upload_id: str, index: int) -> str:
        return self._join("staging", _check_upload_id(upload_id), str(_check_count(index, "index")))

    # ------------------------------------------------------------------ writing
    def _write(self, final: str | None, blocks: Iterable[bytes], *,
               expected_sha256: str | None = None,
               expected_size: int | None = None) -> tuple[str, int]:
        """Write ``blocks`` to a temporary file, check them, then move it to ``final``.

        ``final=None`` means the blob named by the content; if that blob exists already,
        the temporary file is dropped (one copy per content). Returns the sha256 and size.
        On a mismatch the temporary file is deleted and :class:`BlobIntegrityError`
        raised; nothing appears under a final name.
        """
        tmp = self._join("tmp", f"{uuid.uuid4().hex}.part")
        digest, size = hashlib.sha256(), 0
        self.fs.makedirs(self._join("tmp"), exist_ok=True)
        try:
            with open(tmp, "xb") if self._local else self.fs.open(tmp, "wb") as out:
                for block in blocks:
                    digest.update(block)
                    size += len(block)
                    out.write(block)
                if self._local:
                    out.flush()
                    os.fsync(out.fileno())
            sha = digest.hexdigest()
            _check_content(sha, size, expected_sha256, expected_size)
            if final is None and self.fs.exists(self.blob_path(sha)):
                self.fs.rm(tmp)  # same content already stored: keep one copy
            else:
                self._move(tmp, self.blob_path(sha) if final is None else final)
        except BaseException:
            with contextlib.suppress(OSError):
                if self.fs.exists(tmp):
                    self.fs.rm(tmp)
            raise
        return sha, size

    def _move(self, tmp: str, final: str) -> None:
        parent = final.rsplit("/", 1)[0]
        if not self._local:
            self.fs.makedirs(parent, exist_ok=True)
            self.fs.mv(tmp, final)
            return
        _makedirs_durable(parent)
        os.replace(tmp, final)
        _fsync_dir(parent)

    def put_chunk(self, upload_id: str, index: int, data: bytes) -> str:
        """Store chunk ``index`` of an upload, replacing any earlier copy of it.

        Parameters
        ----------
        upload_id : str
            The upload's id (letters, digits, ``_``, ``-``).
        index : int
            The chunk's position, from 0.
        data : bytes
            The chunk's content.

        Returns
        -------
        str
            The sha256 of ``data`` (hex).
        """
        final = self._chunk_path(upload_id, index)
        sha, _ = self._write(final, [bytes(data)])
        return sha

    def has_chunk(self, upload_id: str, index: int) -> bool:
        """Return whether chunk ``index`` of the upload is stored."""
        return bool(self.fs.exists(self._chunk_path(upload_id, index)))

    def list_chunks(self, upload_id: str) -> list[int]:
        """Return the indices of the upload's stored chunks, sorted."""
        folder = self._join("staging", _check_upload_id(upload_id))
        if not self.fs.exists(folder):
            return []
        names = (str(p).rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False))
        return sorted(int(n) for n in names if n.isdigit())

    def assemble(self, upload_id: str, n_chunks: int, expected_sha256: str,
                 expected_size: int) -> str:
        """Join an upload's chunks into a blob, check it, and drop the staging area.

        Chunks are streamed and hashed; the blob is moved into place only if the sha256 and
        the size match. If the blob is already stored, the chunks are still checked, then
        only the staging area is dropped (one copy per content).

        Parameters
        ----------
        upload_id : str
            The upload's id.
        n_chunks : int
            Number of chunks (0 for an empty file).
        expected_sha256 : str
            The declared sha256 of the whole file.
        expected_size : int
            The declared size of the whole file in bytes.

        Returns
        -------
        str
            The blob's sha256.

        Raises
        ------
        BlobNotFoundError
            If a chunk is missing (nothing is written; the staging area is kept).
        BlobIntegrityError
            If the content does not match (nothing is written; the staging area is kept).
        """
        sha = _check_sha(expected_sha256, "expected_sha256")
        size = _check_count(expected_size, "expected_size")
        paths = [self._chunk_path(upload_id, i) for i in range(_check_count(n_chunks, "n_chunks"))]
        missing = [i for i, path in enumerate(paths) if not self.fs.exists(path)]
        if missing:
            shown = ", ".join(map(str, missing[:10])) + (", ..." if len(missing) > 10 else "")
            raise BlobNotFoundError(
                f"Upload {upload_id!r} lacks {len(missing)} of its {n_chunks} chunks "
                f"(indices {shown}). Upload those chunks again, then complete the upload.")
        blocks = self._read_blocks(paths)
        final = self.blob_path(sha)
        if self.fs.exists(final):
            digest, count = hashlib.sha256(), 0
            for block in blocks:
                digest.update(block)
                count += len(block)
            _check_content(digest.hexdigest(), count, sha, size)
        else:
            self._write(None, blocks, expected_sha256=sha, expected_size=size)
        self.discard_staging(upload_id)
        return sha

    def put_stream(self, stream: BinaryIO | bytes, *, expected_sha256: str | None = None,
                   expected_size: int | None = None) -> tuple[str, int]:
        """Store a file's content as a blob (e.g. a member unpacked from an archive).

        Parameters
        ----------
        stream : binary file object or bytes
            The content, read to its end.
        expected_sha256 : str or None, default=None
            If given, the content must have this sha256.
        expected_size : int or None, default=None
            If given, the content must have this size.

        Returns
        -------
        tuple of (str, int)
            The blob's sha256 and size.

        Raises
        ------
        BlobIntegrityError
            If an expected value does not match (nothing is stored).
        """
        if expected_sha256 is not None:
            expected_sha256 = _check_sha(expected_sha256, "expected_sha256")
        if expected_size is not None:
            expected_size = _check_count(expected_size, "expected_size")
        if isinstance(stream, (bytes, bytearray, memoryview)):
            blocks: Iterable[bytes] = [bytes(stream)]
        else:
            blocks = iter(lambda: stream.read(_BLOCK), b"")
        sha, size = self._write(None, blocks, expected_sha256=expected_sha256,
                                expected_size=expected_size)
        return sha, size

    def discard_staging(self, upload_id: str) -> None:
        """Delete the upload's chunks (nothing happens if there are none)."""
        folder = self._join("staging", _check_upload_id(upload_id))
        if self.fs.exists(folder):
            self.fs.rm(folder, recursive=True)

    def delete(self, sha256: str) -> bool:
        """Delete a blob; return whether it existed (only for garbage collection)."""
        path = self.blob_path(sha256)
        if not self.fs.exists(path):
            return False
        self.fs.rm(path)
        return True

    # ------------------------------------------------------------------ reading
    def _read_blocks(self, paths: Iterable[str]) -> Iterator[bytes]:
        for path in paths:
            with self.fs.open(path, "rb") as handle:
                yield from iter(lambda h=handle: h.read(_BLOCK), b"")

    def exists(self, sha256: str) -> bool:
        """Return whether the blob ``sha256`` is stored."""
        return bool(self.fs.exists(self.blob_path(sha256)))

    def _existing(self, sha256: str) -> str:
        path = self.blob_path(sha256)
        if not self.fs.exists(path):
            raise BlobNotFoundError(f"Blob {sha256} is not in the store {self.url}. Upload the "
                                    "file again, or restore the store from a backup.")
        return path

    def open(self, sha256: str) -> BinaryIO:
        """Open the blob ``sha256`` for reading (binary); close it after use.

        Raises
        ------
        BlobNotFoundError
            If the blob is not stored.
        """
        handle: BinaryIO = self.fs.open(self._existing(sha256), "rb")
        return handle

    def size(self, sha256: str) -> int:
        """Return the size of the blob ``sha256`` in bytes."""
        return int(self.fs.size(self._existing(sha256)))

    def iter_blobs(self) -> Iterator[str]:
        """Yield the sha256 of every stored blob, in sorted order."""
        folder = self._join("sha256")
        if not self.fs.exists(folder):
            return
        for path in sorted(self.fs.find(folder)):
            name = str(path).rsplit("/", 1)[-1]
            if _SHA.match(name) and str(path).endswith(f"{name[:2]}/{name[2:4]}/{name}"):
                yield name

    def verify(self, sha256: str) -> bool:
        """Re-hash the blob and return whether its content still matches its name.

        Raises
        ------
        BlobNotFoundError
            If the blob is not stored.
        """
        digest = hashlib.sha256()
        for block in self._read_blocks([self._existing(sha256)]):
            digest.update(block)
        return digest.hexdigest() == _check_sha(sha256)


def _check_content(sha: str, size: int, expected_sha: str | None, expected_size: int | None) -> None:
    if expected_size is not None and size != expected_size:
        raise BlobIntegrityError(
            f"The content has {size} bytes but was declared with {expected_size}; nothing was "
            "stored. Upload the file again (a chunk may be missing, duplicated or truncated).",
            expected_sha256=expected_sha or "", actual_sha256=sha,
            expected_size=expected_size, actual_size=size)
    if expected_sha is not None and sha != expected_sha:
        raise BlobIntegrityError(
            f"The content has sha256 {sha} but was declared with {expected_sha}; nothing was "
            "stored. Re-hash the file and upload it again (it may have changed while it was sent).",
            expected_sha256=expected_sha, actual_sha256=sha,
            expected_size=expected_size, actual_size=size)


def _makedirs_durable(path: str) -> None:
    """Create a folder and its missing parents, and fsync each new entry's parent."""
    created = []
    while not os.path.isdir(path):
        created.append(path)
        path = os.path.dirname(path)
    for folder in reversed(created):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder)
        _fsync_dir(os.path.dirname(folder))


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):  # not every system can open a folder
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
