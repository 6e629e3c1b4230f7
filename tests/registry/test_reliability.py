"""Reliability and security of the server, on SQLite and on PostgreSQL.

- A uvicorn server killed with SIGKILL in the middle of uploads and completions loses
  nothing it acknowledged, shows nothing half-written, and the re-run resumes.
- 20 concurrent uploads to one draft over loopback: nothing lost or mixed up.
- Hostile archives (traversal, absolute paths, links, zip bombs, non-UTF-8 names, oversized
  and duplicate members, wrong checksums) are refused with the reason; nothing is visible.
- Requests without a token or with a wrong one are refused; a site cannot read or write
  another site's draft; publishing is gated.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import queue
import re
import signal
import subprocess
import sys
import tarfile
import threading
import time
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from conform_registry._api import create_app
from conform_registry._config import RegistryConfig
from conform_registry._db import Audit
from conform_registry._service import RegistryService
from conform_registry._store import BlobStore

API = "/api/v1"
KiB = 1024
MiB = 1024 * KiB
EVENTS = b"onset\tduration\ttrial_type\n0\t1\tface\n2\t1\thouse\n"
_SERVER = """
import json, sys
from conform_registry._api import serve
from conform_registry._config import RegistryConfig
from conform_registry._db import Audit, normalize_url
serve(RegistryConfig(**json.loads(sys.argv[1])), "127.0.0.1", 0, log_level="info")
"""


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def check_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert set(body) == {"code", "message", "fix"} and body["message"] and body["fix"]
    if code is not None:
        assert body["code"] == code, body
    return body


def send_file(client: httpx.Client | TestClient, headers: dict, dataset: str, path: str, data: bytes,
              *, unpack: bool = False, declared: str | None = None) -> httpx.Response:
    """Upload a whole file the way a client does; return the completion's response."""
    response = client.post(f"{API}/datasets/{dataset}/uploads", headers=headers,
                           json={"path": path, "size": len(data), "sha256": declared or sha(data),
                                 "unpack": unpack})
    assert response.status_code in (200, 201), response.text
    up = response.json()
    for i in range(up["n_chunks"]):
        piece = data[i * up["chunk_bytes"]:(i + 1) * up["chunk_bytes"]]
        put = client.put(f"{API}/uploads/{up['upload_id']}/chunks/{i}", content=piece,
                         headers={**headers, "X-Chunk-SHA256": sha(piece)})
        assert put.status_code == 200, put.text
    return client.post(f"{API}/uploads/{up['upload_id']}/complete", headers=headers)


def wait_for_jobs(service: RegistryService, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while service.pending_jobs() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.pending_jobs() == 0, "jobs did not finish in time"


def prepare(db_url: str, folder: Path, **limits) -> tuple[RegistryConfig, dict[str, str]]:
    """Settings, a migrated database and tokens of sites cam and oxf and of a curator."""
    config = RegistryConfig(data_dir=folder, db_url=db_url, **limits)
    with RegistryService(config) as service:
        service.startup()
        tokens = {"cam": service.create_token("cam", "contributor"),
                  "oxf": service.create_token("oxf", "contributor"),
                  "hq": service.create_token("hq", "curator")}
    return config, tokens


# --- a server killed with SIGKILL -----------------------------------------------------------


@contextlib.contextmanager
def server_process(config: RegistryConfig, log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """A registry server in its own process on a free loopback port."""
    settings = {"data_dir": str(config.data_dir), "db_url": config.db_url,
                "chunk_bytes": config.chunk_bytes,
                "max_upload_chunk_bytes": config.max_upload_chunk_bytes}
    with open(log, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-c", _SERVER, json.dumps(settings)],
                                   stdout=sink, stderr=sink)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and process.poll() is None:
            found = re.findall(r"Uvicorn running on http://127\.0\.0\.1:(\d+)", log.read_text())
            if found:
                yield process, f"http://127.0.0.1:{found[-1]}"
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"the server did not start:\n{log.read_text()[-3000:]}")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)


def test_a_server_killed_mid_write_loses_nothing_it_acknowledged(db_url, tmp_path, serve_app):
    config, tokens = prepare(db_url, tmp_path / "data", chunk_bytes=4 * KiB,
                             max_upload_chunk_bytes=4 * KiB)
    cam = bearer(tokens["cam"])
    big = {f"big/{i}.bin": os.urandom(32 * 4 * KiB) for i in range(2)}  # 32 chunks each
    acked_chunks: dict[str, set[int]] = {path: set() for path in big}
    acked_files: dict[str, str] = {}
    started_files: dict[str, bytes] = {}
    uploads: dict[str, str] = {}
    stop = threading.Event()

    def chunks(base: str, path: str) -> None:
        data, upload_id = big[path], uploads[path]
        with httpx.Client(base_url=base, headers=cam, timeout=10) as client:
            for i in range(32):
                piece = data[i * 4 * KiB:(i + 1) * 4 * KiB]
                try:
                    response = client.put(f"{API}/uploads/{upload_id}/chunks/{i}", content=piece,
                                          headers={"X-Chunk-SHA256": sha(piece)})
                except httpx.HTTPError:
                    return
                if response.status_code == 200:
                    acked_chunks[path].add(i)

    def small_files(base: str) -> None:
        with httpx.Client(base_url=base, headers=cam, timeout=10) as client:
            for n in range(10_000):
                if stop.is_set():
                    return
                data = os.urandom(6 * KiB + n)
                path = f"small/{n}.bin"
                started_files[path] = data
                try:
                    response = send_file(client, {}, "kill", path, data)
                except (httpx.HTTPError, AssertionError):
                    return
                if response.status_code == 200:
                    acked_files[path] = sha(data)

    with server_process(config, tmp_path / "first.log") as (process, base):
        with httpx.Client(base_url=base, headers=cam, timeout=10) as client:
            assert client.post(f"{API}/datasets", json={"name": "kill"}).status_code == 201
            for path, data in big.items():
                up = client.post(f"{API}/datasets/kill/uploads",
                                 json={"path": path, "size": len(data), "sha256": sha(data)}).json()
                uploads[path] = up["upload_id"]
        workers = [threading.Thread(target=chunks, args=(base, p)) for p in big]
        workers.append(threading.Thread(target=small_files, args=(base,)))
        for worker in workers:
            worker.start()
        deadline = time.monotonic() + 30
        while (sum(map(len, acked_chunks.values())) < 20 or len(acked_files) < 3) and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)  # in the middle of writes
        process.wait(timeout=30)
        stop.set()
        for worker in workers:
            worker.join(30)
    assert sum(map(len, acked_chunks.values())) >= 20 and len(acked_files) >= 3

    with serve_app(create_app(config, poll_s=0.1)) as base, \
            httpx.Client(base_url=base, headers=cam, timeout=10) as client:
        draft = {f["path"]: f["sha256"] for f in
                 client.get(f"{API}/datasets/kill/versions/draft").json()["files"]}
        for path, digest in acked_files.items():  # acknowledged files are there, intact
            assert draft[path] == digest
        for path, digest in draft.items():  # nothing else, nothing half-written
            assert path in started_files and digest == sha(started_files[path])
            assert client.get(f"{API}/datasets/kill/versions/draft/files/{path}").content == \
                started_files[path]
        store = BlobStore(config.store_url)
        for path, data in big.items():  # acknowledged chunks are held; held chunks are whole
            up = client.get(f"{API}/uploads/{uploads[path]}").json()
            assert acked_chunks[path] <= set(up["received"]), path
            for i in store.list_chunks(uploads[path]):
                with store.fs.open(f"{store.root}/staging/{uploads[path]}/{i}", "rb") as handle:
                    assert handle.read() == data[i * 4 * KiB:(i + 1) * 4 * KiB]
            # the re-run resumes: it sends only the missing chunks
            resumed = client.post(f"{API}/datasets/kill/uploads",
                                  json={"path": path, "size": len(data), "sha256": sha(data)})
            assert resumed.status_code == 200 and resumed.json()["upload_id"] == uploads[path]
            missing = sorted(set(range(32)) - set(resumed.json()["received"]))
            for i in missing:
                piece = data[i * 4 * KiB:(i + 1) * 4 * KiB]
                assert client.put(f"{API}/uploads/{uploads[path]}/chunks/{i}", content=piece,
                                  headers={"X-Chunk-SHA256": sha(piece)}).status_code == 200
            assert len(missing) < 32
            done = client.post(f"{API}/uploads/{uploads[path]}/complete")
            assert done.status_code == 200, done.text
            assert client.get(f"{API}/datasets/kill/versions/draft/files/{path}").content == data
        with RegistryService(config) as service:
            wait_for_jobs(service)  # jobs the killed server left running were requeued and ran
            assert service.fsck() == []


# --- 20 concurrent uploads ------------------------------------------------------------------


def test_twenty_concurrent_uploads_lose_nothing_and_mix_nothing_up(db_url, tmp_path, serve_app):
    config, tokens = prepare(db_url, tmp_path, chunk_bytes=8 * KiB, max_upload_chunk_bytes=8 * KiB)
    files = {f"sub-{i:02d}/data.bin": os.urandom(24 * KiB + i) for i in range(20)}  # 4 chunks
    files["sub-19/data.bin"] = files["sub-18/data.bin"]  # the same content twice: stored once
    results: queue.Queue = queue.Queue()
    barrier = threading.Barrier(20, timeout=30)
    with serve_app(create_app(config, poll_s=0.1)) as base:
        with httpx.Client(base_url=base, headers=bearer(tokens["cam"]), timeout=30) as client:
            assert client.post(f"{API}/datasets", json={"name": "many"}).status_code == 201

        def one(path: str) -> None:
            try:
                with httpx.Client(base_url=base, headers=bearer(tokens["cam"]), timeout=30) as c:
                    barrier.wait()
                    results.put((path, send_file(c, {}, "many", path, files[path]).status_code))
            except Exception as exc:  # reported below
                results.put((path, repr(exc)))

        threads = [threading.Thread(target=one, args=(path,)) for path in files]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        outcomes = dict(results.get_nowait() for _ in range(results.qsize()))
        assert outcomes == {path: 200 for path in files}
        with httpx.Client(base_url=base, headers=bearer(tokens["cam"]), timeout=30) as client:
            draft = client.get(f"{API}/datasets/many/versions/draft").json()["files"]
            assert {f["path"]: f["sha256"] for f in draft} == {p: sha(d) for p, d in files.items()}
            for path, data in files.items():
                assert client.get(f"{API}/datasets/many/versions/draft/files/{path}").content == data
    assert len(list(BlobStore(config.store_url).iter_blobs())) == 19


# --- hostile input, tokens, other sites, publishing (TestClient) -----------------------------


@pytest.fixture(scope="module")
def api(module_db_url: str, tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    """One app per backend for the module; every test uses datasets of its own."""
    folder = tmp_path_factory.mktemp("registry")
    config, tokens = prepare(module_db_url, folder, chunk_bytes=64 * KiB, max_upload_chunk_bytes=64 * KiB,
                             max_file_bytes=2 * MiB)
    with TestClient(create_app(config, poll_s=0.05)) as client:
        yield client, {who: bearer(token) for who, token in tokens.items()}


@pytest.fixture
def dataset(api) -> str:
    """A new, empty dataset of site cam."""
    client, heads = api
    name = f"cam-{uuid.uuid4().hex[:10]}"
    assert client.post(f"{API}/datasets", json={"name": name}, headers=heads["cam"]).status_code == 201
    return name


def tar_bytes(*entries: tarfile.TarInfo | tuple[str, bytes], mode: str = "w") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode, format=tarfile.GNU_FORMAT, encoding="utf-8",
                      errors="surrogateescape") as tar:
        for entry in entries:
            if isinstance(entry, tarfile.TarInfo):
                tar.addfile(entry)
            else:
                info = tarfile.TarInfo(entry[0])
                info.size = len(entry[1])
                tar.addfile(info, io.BytesIO(entry[1]))
    return buffer.getvalue()


def link(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, "/etc/passwd"
    return info


def zip_bytes(*entries: tuple[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            archive.writestr(name, data)
    return buffer.getvalue()


HOSTILE = {
    "traversal": (lambda: tar_bytes(("ok.txt", b"1"), ("../../evil.txt", b"x")), "archive.traversal",
                  "../../evil.txt"),
    "absolute": (lambda: tar_bytes(("/etc/cron.d/evil", b"x")), "archive.absolute", "/etc/cron.d/evil"),
    "symlink": (lambda: tar_bytes(link("passwd", tarfile.SYMTYPE)), "archive.link", "passwd"),
    "hardlink": (lambda: tar_bytes(link("passwd", tarfile.LNKTYPE)), "archive.link", "passwd"),
    "zip bomb": (lambda: zip_bytes(("zeros.bin", bytes(int(1.5 * MiB)))), "archive.ratio", "zip bomb"),
    "non-UTF-8 name": (lambda: tar_bytes(("caf\udce9.txt", b"x")), "archive.non_utf8", "UTF-8"),
    "oversized member": (lambda: tar_bytes(("big.bin", bytes(3 * MiB)), mode="w:gz"),
                         "archive.file_too_large", "big.bin"),
    "duplicate": (lambda: tar_bytes(("a.txt", b"1"), ("a.txt", b"2")), "archive.duplicate", "a.txt"),
    "not an archive": (lambda: b"just some bytes" * 100, "archive.corrupt", "readable"),
}


@pytest.mark.parametrize("kind", list(HOSTILE))
def test_hostile_archives_are_refused_with_the_reason_and_leave_nothing(api, dataset, kind):
    client, heads = api
    make, code, words = HOSTILE[kind]
    data = make()
    response = send_file(client, heads["cam"], dataset, "sub-01/pack.tar", data, unpack=True)
    error = check_error(response, 422, code)
    assert words in error["message"], error
    assert str(client.app.state.service.config.data_dir) not in error["message"]  # no server paths
    draft = client.get(f"{API}/datasets/{dataset}/versions/draft", headers=heads["cam"]).json()
    assert draft["files"] == []
    assert not (Path(client.app.state.service.config.data_dir) / "evil.txt").exists()


def test_a_safe_archive_adds_its_members_under_the_folder(api, dataset):
    client, heads = api
    data = tar_bytes(("a.txt", b"alpha"), ("deep/b.txt", b"beta"))
    response = send_file(client, heads["cam"], dataset, "sub-01/pack.tar", data, unpack=True)
    assert response.status_code == 200, response.text
    expected = {"sub-01/a.txt": sha(b"alpha"), "sub-01/deep/b.txt": sha(b"beta")}
    assert {f["path"]: f["sha256"] for f in response.json()["files"]} == expected
    draft = client.get(f"{API}/datasets/{dataset}/versions/draft", headers=heads["cam"]).json()
    assert {f["path"]: f["sha256"] for f in draft["files"]} == expected


def test_wrong_checksums_and_oversized_files_are_refused(api, dataset):
    client, heads = api
    data = b"content" * 100
    check_error(send_file(client, heads["cam"], dataset, "x.bin", data, declared=sha(b"other")),
                422, "upload.checksum_mismatch")
    oversized = client.post(f"{API}/datasets/{dataset}/uploads", headers=heads["cam"],
                            json={"path": "huge.bin", "size": 2 * MiB + 1, "sha256": sha(b"")})
    check_error(oversized, 413, "upload.too_large")
    assert client.get(f"{API}/datasets/{dataset}/versions/draft",
                      headers=heads["cam"]).json()["files"] == []


ROUTES = [  # every route that needs a token, with what it acts on
    ("POST", f"{API}/datasets", {"name": "newer"}),
    ("GET", f"{API}/me", None),
    ("POST", f"{API}/datasets/DS/uploads", {"path": "a", "size": 1, "sha256": "0" * 64}),
    ("GET", f"{API}/uploads/UPLOAD", None),
    ("PUT", f"{API}/uploads/UPLOAD/chunks/0", b"x"),
    ("POST", f"{API}/uploads/UPLOAD/complete", None),
    ("DELETE", f"{API}/uploads/UPLOAD", None),
    ("DELETE", f"{API}/datasets/DS/draft/files/a.txt", None),
    ("GET", f"{API}/datasets/DS/versions/draft", None),
    ("GET", f"{API}/datasets/DS/versions/draft/files/a.txt", None),
    ("POST", f"{API}/datasets/DS/validate", None),
    ("GET", f"{API}/datasets/DS/jobs", None),
    ("GET", f"{API}/jobs/JOB", None),
    ("POST", f"{API}/jobs/JOB/retry", None),
    ("POST", f"{API}/datasets/DS/publish", None),
]


def call(client: TestClient, method: str, url: str, body, headers: dict[str, str]):
    if isinstance(body, bytes):
        return client.request(method, url, content=body, headers={**headers, "X-Chunk-SHA256": sha(body)})
    return client.request(method, url, json=body, headers=headers)


@pytest.fixture
def targets(api, dataset) -> dict[str, str]:
    """An open upload and a job of site cam's draft (which holds a.txt)."""
    client, heads = api
    send_file(client, heads["cam"], dataset, "a.txt", b"secret draft")
    up = client.post(f"{API}/datasets/{dataset}/uploads", headers=heads["cam"],
                     json={"path": "b.txt", "size": 1, "sha256": sha(b"x")}).json()
    job = client.get(f"{API}/datasets/{dataset}/jobs", headers=heads["cam"]).json()["jobs"][0]
    return {"UPLOAD": up["upload_id"], "JOB": str(job["id"]), "DS": dataset}


def fill(url: str, targets: dict[str, str]) -> str:
    for key, value in targets.items():
        url = url.replace(key, value)
    return url


@pytest.mark.parametrize("header", [None, "Bearer cfr_" + "A" * 43, "Bearer wrong", "Token abc"])
def test_requests_without_a_valid_token_are_refused_everywhere(api, dataset, targets, header):
    client, heads = api
    headers = {} if header is None else {"Authorization": header}
    for method, url, body in ROUTES:
        check_error(call(client, method, fill(url, targets), body, headers), 401)
    assert client.get(f"{API}/datasets/{dataset}/versions/draft",
                      headers=heads["cam"]).json()["files"][0]["path"] == "a.txt"


def test_another_site_can_neither_read_nor_write_the_draft(api, dataset, targets):
    client, heads = api
    for method, url, body in ROUTES:
        if url in (f"{API}/datasets", f"{API}/me"):
            continue
        response = call(client, method, fill(url, targets), body, heads["oxf"])
        assert response.status_code in (403, 404), (method, url, response.text)
        check_error(response, response.status_code)
        assert b"secret draft" not in response.content
    up = client.get(f"{API}/uploads/{targets['UPLOAD']}", headers=heads["cam"]).json()
    assert up["state"] == "open" and up["received"] == []
    draft = client.get(f"{API}/datasets/{dataset}/versions/draft", headers=heads["cam"]).json()
    assert [f["path"] for f in draft["files"]] == ["a.txt"]


def test_publishing_is_gated_and_for_curators_only(api, dataset):
    client, heads = api
    service = client.app.state.service
    publish = f"{API}/datasets/{dataset}/publish"
    check_error(client.post(publish, headers=heads["hq"]), 409, "publish.empty")
    assert send_file(client, heads["cam"], dataset, "sub-01_task-a_run-1_events.tsv",
                     EVENTS).status_code == 200
    wait_for_jobs(service)
    check_error(client.post(publish, headers=heads["cam"]), 403, "auth.forbidden")
    bad = EVENTS.replace(b"\t1\thouse", b"\t-5\thouse")
    assert send_file(client, heads["cam"], dataset, "sub-01_task-a_run-2_events.tsv",
                     bad).status_code == 200
    wait_for_jobs(service)
    check_error(client.post(publish, headers=heads["hq"]), 409, "publish.validation_failed")
    assert client.delete(f"{API}/datasets/{dataset}/draft/files/sub-01_task-a_run-2_events.tsv",
                         headers=heads["cam"]).status_code == 204
    wait_for_jobs(service)
    published = client.post(publish, headers=heads["hq"])
    assert published.status_code == 201 and published.json()["version"] == 1
    assert client.get(f"{API}/datasets/{dataset}/versions/1/files/sub-01_task-a_run-1_events.tsv",
                      headers=heads["oxf"]).content == EVENTS
    with service._tx() as session:  # every write left an audit row
        actions = set(session.scalars(select(Audit.action)))
    assert {"token.create", "dataset.create", "upload.create", "upload.complete", "file.delete",
            "publish"} <= actions



