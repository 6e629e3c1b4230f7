import hashlib
import io
import os
import stat
import uuid

import fsspec
import pytest

from conform_core.exceptions import ConformError, DataFileError, ParameterError
from conform_registry._store import EMPTY_SHA256, BlobIntegrityError, BlobNotFoundError, BlobStore


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(params=["file", "memory"])
def store(request, tmp_path):
    if request.param == "file":
        yield BlobStore(f"file://{tmp_path / 'blobs'}")
        return
    url = f"memory://conform-test-{uuid.uuid4().hex}"  # the memory filesystem is global
    store = BlobStore(url)
    yield store
    if store.fs.exists(store.root):
        store.fs.rm(store.root, recursive=True)


def files_under(store, folder):
    path = f"{store.root}/{folder}"
    return sorted(p.rsplit("/", 1)[-1] for p in store.fs.find(path)) if store.fs.exists(path) else []


def upload(store, upload_id, data, chunk=4):
    parts = [data[i:i + chunk] for i in range(0, len(data), chunk)]
    for index, part in enumerate(parts):
        assert store.put_chunk(upload_id, index, part) == sha(part)
    return len(parts)


def test_chunks_are_stored_listed_and_replaced(store):
    assert not store.has_chunk("u1", 0) and store.list_chunks("u1") == []
    store.put_chunk("u1", 2, b"cc")
    store.put_chunk("u1", 0, b"a")
    store.put_chunk("u1", 0, b"aa")  # a retried chunk replaces the first copy
    assert store.has_chunk("u1", 0) and not store.has_chunk("u1", 1)
    assert store.list_chunks("u1") == [0, 2]
    assert files_under(store, "tmp") == []
    store.discard_staging("u1")
    store.discard_staging("u1")  # nothing left: no error
    assert store.list_chunks("u1") == []


def test_assemble_joins_checks_and_cleans_up(store):
    data = b"hello registry, many chunks!"
    n = upload(store, "up", data)
    digest = store.assemble("up", n, sha(data).upper(), len(data))
    assert digest == sha(data)
    assert store.exists(digest) and store.size(digest) == len(data)
    with store.open(digest) as handle:
        assert handle.read() == data
    assert store.blob_path(digest).endswith(f"sha256/{digest[:2]}/{digest[2:4]}/{digest}")
    assert store.list_chunks("up") == [] and files_under(store, "tmp") == []
    assert list(store.iter_blobs()) == [digest]
    assert store.verify(digest)


def test_large_chunks_are_streamed(store):
    data = os.urandom(5 * 2**19 + 17)  # 2.5 MiB + a tail: several read blocks
    n = upload(store, "big", data, chunk=2**20 + 3)
    digest = store.assemble("big", n, sha(data), len(data))
    with store.open(digest) as handle:
        assert handle.read() == data


def test_an_empty_file_is_the_empty_blob(store):
    assert store.assemble("empty", 0, EMPTY_SHA256, 0) == EMPTY_SHA256
    assert store.size(EMPTY_SHA256) == 0


@pytest.mark.parametrize("wrong", ["sha256", "size"])
def test_a_mismatch_stores_nothing_and_keeps_the_chunks(store, wrong):
    data = b"0123456789"
    n = upload(store, "bad", data)
    declared_sha = sha(b"something else") if wrong == "sha256" else sha(data)
    declared_size = len(data) + (1 if wrong == "size" else 0)
    with pytest.raises(BlobIntegrityError) as info:
        store.assemble("bad", n, declared_sha, declared_size)
    error = info.value
    assert isinstance(error, ConformError) and isinstance(error, ValueError)
    assert error.actual_sha256 == sha(data) and error.actual_size == len(data)
    assert "nothing was stored" in str(error)
    assert not store.exists(declared_sha) and not store.exists(sha(data))
    assert list(store.iter_blobs()) == [] and files_under(store, "tmp") == []
    assert store.list_chunks("bad") == list(range(n))


def test_a_missing_chunk_is_named(store):
    store.put_chunk("gap", 0, b"ab")
    store.put_chunk("gap", 2, b"ef")
    with pytest.raises(BlobNotFoundError, match=r"lacks 1 of its 3 chunks \(indices 1\)") as info:
        store.assemble("gap", 3, sha(b"abcdef"), 6)
    assert isinstance(info.value, FileNotFoundError) and isinstance(info.value, DataFileError)
    assert list(store.iter_blobs()) == []


def test_the_same_content_is_stored_once(store):
    data = b"same bytes twice"
    first = store.assemble("one", upload(store, "one", data), sha(data), len(data))
    second = store.assemble("two", upload(store, "two", data, chunk=5), sha(data), len(data))
    assert first == second
    assert files_under(store, "sha256") == [first]
    assert store.list_chunks("two") == [] and files_under(store, "tmp") == []


def test_dedup_still_checks_the_uploaded_chunks(store):
    data = b"the real content"
    digest = store.assemble("one", upload(store, "one", data), sha(data), len(data))
    upload(store, "forged", b"other content!!!")  # same size, claims the stored digest
    with pytest.raises(BlobIntegrityError):
        store.assemble("forged", 4, digest, len(data))
    with store.open(digest) as handle:
        assert handle.read() == data


def test_put_stream_stores_and_deduplicates(store):
    data = b"x" * 3_000_000
    assert store.put_stream(io.BytesIO(data)) == (sha(data), len(data))
    assert store.put_stream(data, expected_sha256=sha(data), expected_size=len(data)) == (
        sha(data), len(data))
    assert files_under(store, "sha256") == [sha(data)] and files_under(store, "tmp") == []
    with pytest.raises(BlobIntegrityError):
        store.put_stream(b"abc", expected_sha256=sha(b"abd"))
    assert not store.exists(sha(b"abc"))


def test_a_failing_stream_leaves_no_file(store):
    class Broken(io.RawIOBase):
        calls = 0

        def read(self, n=-1):
            self.calls += 1
            if self.calls > 1:
                raise OSError("connection reset")
            return b"partial data"

    with pytest.raises(OSError, match="connection reset"):
        store.put_stream(Broken())
    assert list(store.iter_blobs()) == [] and files_under(store, "tmp") == []


def test_verify_detects_corruption(store):
    digest, _ = store.put_stream(b"pristine")
    with store.fs.open(store.blob_path(digest), "wb") as handle:
        handle.write(b"bit rot!")
    assert store.verify(digest) is False
    assert store.delete(digest) is True and store.delete(digest) is False


def test_missing_blobs_raise_a_clear_error(store):
    for call in (store.open, store.size, store.verify):
        with pytest.raises(BlobNotFoundError, match="is not in the store"):
            call(sha(b"never stored"))
    assert not store.exists(sha(b"never stored"))


@pytest.mark.parametrize(("call", "param"), [
    (lambda s: s.put_chunk("../escape", 0, b"x"), "upload_id"),
    (lambda s: s.put_chunk("a/b", 0, b"x"), "upload_id"),
    (lambda s: s.put_chunk("ok", -1, b"x"), "index"),
    (lambda s: s.has_chunk("ok", True), "index"),
    (lambda s: s.exists("xyz"), "sha256"),
    (lambda s: s.open("g" * 64), "sha256"),
    (lambda s: s.assemble("ok", 1, "0" * 63, 1), "expected_sha256"),
    (lambda s: s.assemble("ok", 1, "0" * 64, -5), "expected_size"),
])
def test_bad_arguments_are_refused_before_touching_the_store(store, call, param):
    with pytest.raises(ParameterError, match=param):
        call(store)
    assert files_under(store, "") == []


def test_local_writes_are_fsynced_before_the_rename(tmp_path, monkeypatch):
    store = BlobStore(str(tmp_path / "blobs"))  # a plain path is a local store too
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        kind = "dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "file"
        events.append(kind)
        real_fsync(fd)

    def replace(src, dst):
        events.append("rename")
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    store.put_chunk("u", 0, b"durable")
    assert events[0] == "file" and events[-2:] == ["rename", "dir"]
    assert events.index("file") < events.index("rename")


def test_local_files_get_the_umask_permissions(tmp_path, umask):
    umask(0o022)
    store = BlobStore(f"file://{tmp_path / 'blobs'}")
    digest, _ = store.put_stream(b"readable by the lab")
    assert stat.S_IMODE(os.stat(store.blob_path(digest)).st_mode) == 0o644


def test_the_store_works_on_any_fsspec_url(tmp_path):
    fs = fsspec.filesystem("memory")
    store = BlobStore(f"memory://conform-test-{uuid.uuid4().hex}/nested")
    try:
        digest, _ = store.put_stream(b"abc")
        assert fs.exists(store.blob_path(digest)) and repr(store).startswith("BlobStore('memory://")
    finally:
        fs.rm(store.root.rsplit("/", 1)[0], recursive=True)
