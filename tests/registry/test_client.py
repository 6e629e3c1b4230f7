"""The registry client against a real server on loopback (uvicorn in a thread, SQLite).

Covers: uploads that resume after an interruption (an exception after N chunks, and a
client process killed with SIGKILL) with nothing visible in the draft meanwhile and only
the missing chunks sent again (PUTs counted); small files packed with a warning; pulls
that verify and resume (a truncated .part, a corrupt .part, a corrupt local file, a damaged
blob on the server); refused requests as RegistryClientError; retries.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from conform_registry._api import create_app
from conform_registry._client import RegistryClient, RegistryClientError, TransferProgress
from conform_registry._config import RegistryConfig
from conform_registry._service import RegistryService

KiB = 1024
CHUNK = 64 * KiB


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def random_bytes(n: int, seed: int) -> bytes:
    return (hashlib.sha256(str(seed).encode()).digest() * (n // 32 + 1))[:n]


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory,
             serve_app) -> Iterator[SimpleNamespace]:
    """A registry on a free 127.0.0.1 port: tokens of sites cam and oxf and of a curator."""
    folder = tmp_path_factory.mktemp("registry")
    config = RegistryConfig(data_dir=folder, chunk_bytes=CHUNK, max_upload_chunk_bytes=4 * CHUNK,
                            pack_threshold_files=3)
    service = RegistryService(config)
    service.startup()
    tokens = {"cam": service.create_token("cam", "contributor"),
              "oxf": service.create_token("oxf", "contributor"),
              "hq": service.create_token("hq", "curator")}
    try:
        with serve_app(create_app(service, poll_s=0.1)) as url:
            yield SimpleNamespace(url=url, tokens=tokens, service=service, config=config)
    finally:
        service.close()


class Counting(httpx.HTTPTransport):
    """A transport that records every request (method, path, headers)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, dict[str, str]]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append((request.method, request.url.path, dict(request.headers)))
        return super().handle_request(request)

    def count(self, method: str, part: str = "") -> int:
        return sum(1 for m, p, _ in self.calls if m == method and part in p)


def client_for(registry: SimpleNamespace, site: str | None = "cam", **kwargs) -> RegistryClient:
    return RegistryClient(registry.url, registry.tokens.get(site) if site else None, **kwargs)


def new_dataset(registry: SimpleNamespace, name: str, site: str = "cam", **kwargs) -> None:
    with client_for(registry, site) as client:
        client.create_dataset(name, **kwargs)


def draft_files(client: RegistryClient, name: str) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in client.get_version(name, "draft")["files"]}


class StopAfter(TransferProgress):
    """Raise after ``n`` chunks: a client dying in the middle of an upload."""

    def __init__(self, n: int) -> None:
        self.n = n

    def advance(self, path: str, n_bytes: int) -> None:
        self.n -= 1
        if self.n == 0:
            raise RuntimeError("client died")


# --- uploads ------------------------------------------------------------------------------


def test_upload_file_then_pull_the_draft_byte_identical(registry, tmp_path):
    new_dataset(registry, "roundtrip")
    data = random_bytes(5 * CHUNK + 123, 1)
    (tmp_path / "a.bin").write_bytes(data)
    with client_for(registry) as client:
        done = client.upload_file("roundtrip", tmp_path / "a.bin", "sub-01/a.bin")
        assert (done.action, done.chunks_sent, done.network_bytes) == ("uploaded", 6, len(data))
        assert done.added == [{"path": "sub-01/a.bin", "size": len(data), "sha256": sha(data)}]
        assert done.job["state"] in ("queued", "running", "passed")
        result = client.pull("roundtrip", "draft", tmp_path / "out")
    assert (tmp_path / "out" / "sub-01" / "a.bin").read_bytes() == data
    assert [f.action for f in result.files] == ["downloaded"]


def test_an_empty_file_goes_up_and_comes_back(registry, tmp_path):
    new_dataset(registry, "empty")
    (tmp_path / "empty.tsv").write_bytes(b"")
    with client_for(registry) as client:
        done = client.upload_file("empty", tmp_path / "empty.tsv")
        assert (done.chunks_sent, done.size) == (0, 0)
        client.pull("empty", "draft", tmp_path / "out")
    assert (tmp_path / "out" / "empty.tsv").read_bytes() == b""


def test_an_interrupted_upload_shows_nothing_and_the_rerun_sends_only_missing_chunks(registry, tmp_path):
    new_dataset(registry, "resume")
    data = random_bytes(10 * CHUNK, 2)
    (tmp_path / "big.bin").write_bytes(data)
    with client_for(registry, workers=1) as client:
        with pytest.raises(RuntimeError, match="client died"):
            client.upload_file("resume", tmp_path / "big.bin", progress=StopAfter(4))
        assert draft_files(client, "resume") == {}  # nothing half-visible
    transport = Counting()
    with client_for(registry, transport=transport) as client:
        done = client.upload_file("resume", tmp_path / "big.bin")
        assert done.action == "resumed"
        held = 10 - done.chunks_sent
        assert held >= 4  # what was acknowledged before the failure was kept
        assert transport.count("PUT", "/chunks/") == done.chunks_sent == 10 - held
        assert transport.count("POST", "/uploads") == 2  # resume + complete
        assert draft_files(client, "resume") == {"big.bin": sha(data)}


_KILLED_CLIENT = """
import sys, time
from conform_registry._client import RegistryClient
class Slow(RegistryClient):
    def put_chunk(self, *args, **kwargs):
        answer = super().put_chunk(*args, **kwargs)
        print("chunk", flush=True)
        time.sleep(0.3)
        return answer
with Slow(sys.argv[1], sys.argv[2], workers=1) as client:
    client.upload_file("killed", sys.argv[3])
"""


def test_a_client_killed_mid_upload_leaves_nothing_and_the_rerun_resumes(registry, tmp_path):
    new_dataset(registry, "killed")
    data = random_bytes(12 * CHUNK + 7, 3)
    (tmp_path / "run-01.bin").write_bytes(data)
    child = subprocess.Popen([sys.executable, "-c", _KILLED_CLIENT, registry.url,
                              registry.tokens["cam"], str(tmp_path / "run-01.bin")],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(3):  # three chunks acknowledged, then SIGKILL
            assert child.stdout.readline().strip() == "chunk", child.stderr.read()
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=20)
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
        child.stderr.close()
    transport = Counting()
    with client_for(registry, transport=transport) as client:
        assert draft_files(client, "killed") == {}
        done = client.upload_file("killed", tmp_path / "run-01.bin")
        assert done.action == "resumed" and 3 <= 13 - done.chunks_sent <= 4
        assert transport.count("PUT", "/chunks/") == done.chunks_sent
        assert draft_files(client, "killed") == {"run-01.bin": sha(data)}


def test_small_files_go_up_packed_with_a_warning_above_the_threshold(registry, tmp_path):
    new_dataset(registry, "packed")
    tree = tmp_path / "tree"
    files = {f"sub-01/run-{i}_events.tsv": f"onset\tduration\n{i}\t1\n".encode() for i in range(5)}
    files["sub-01/big.bin"] = random_bytes(2 * CHUNK, 4)
    for rel, data in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(data)
    warnings: list[str] = []

    class Warned(TransferProgress):
        def warn(self, message: str) -> None:
            warnings.append(message)

    transport = Counting()
    with client_for(registry, transport=transport) as client:
        summary = client.upload_tree("packed", tree, prefix="site-a", progress=Warned())
        assert len(warnings) == 1 and "5 small files" in warnings[0]
        assert summary.warnings == warnings
        assert [p["members"] for p in summary.packs] == [5]
        bodies = [c for c in transport.calls if c[0] == "POST" and c[1].endswith("/uploads")]
        assert len(bodies) == 2  # one archive, one large file
        expected = {f"site-a/{rel}": sha(data) for rel, data in files.items()}
        assert draft_files(client, "packed") == expected
        assert {f.path: f.action for f in summary.files}["site-a/sub-01/big.bin"] == "uploaded"
        assert summary.job is not None

        again = Counting()
        with client_for(registry, transport=again) as second:
            rerun = second.upload_tree("packed", tree, prefix="site-a")
        assert {f.action for f in rerun.files} == {"unchanged"}
        assert again.count("POST", "/uploads") == 0 and again.count("PUT") == 0


def test_two_local_files_for_one_remote_path_are_refused_before_any_upload(registry, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.tsv").write_text("1")
    (tmp_path / "x.tsv").write_text("2")
    with client_for(registry) as client, pytest.raises(RegistryClientError, match="'x.tsv'"):
        client.upload_tree("packed", [tmp_path / "a", tmp_path / "x.tsv"])


# --- pulls --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pulled(registry, tmp_path_factory) -> SimpleNamespace:
    """A dataset with three files in its draft (one of 7 chunks)."""
    new_dataset(registry, "pulls")
    src = tmp_path_factory.mktemp("pull-src")
    files = {"big.bin": random_bytes(7 * CHUNK + 5, 5), "sub-02/a.tsv": b"onset\n1\n",
             "sub-02/b.tsv": b"onset\n2\n"}
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
    with client_for(registry) as client:
        client.upload_tree("pulls", src)
    return SimpleNamespace(files=files)


def test_pull_resumes_a_truncated_part_with_a_range_request(registry, pulled, tmp_path):
    big = pulled.files["big.bin"]
    (tmp_path / "big.bin.part").write_bytes(big[:100_000])
    transport = Counting()
    with client_for(registry, transport=transport) as client:
        result = client.pull("pulls", "draft", tmp_path)
    actions = {f.path: f for f in result.files}
    assert actions["big.bin"].action == "resumed"
    assert actions["big.bin"].network_bytes == len(big) - 100_000
    ranges = [h.get("range") for m, p, h in transport.calls if p.endswith("/files/big.bin")]
    assert ranges == ["bytes=100000-"]
    assert (tmp_path / "big.bin").read_bytes() == big
    assert not list(tmp_path.rglob("*.part"))
    with client_for(registry) as client:  # a re-run downloads nothing
        again = client.pull("pulls", "draft", tmp_path)
    assert {f.action for f in again.files} == {"verified"}


def test_pull_restarts_a_corrupt_part_and_replaces_a_corrupt_file(registry, pulled, tmp_path):
    big = pulled.files["big.bin"]
    (tmp_path / "big.bin.part").write_bytes(b"x" * 1000)  # not a prefix of the file
    (tmp_path / "sub-02").mkdir()
    (tmp_path / "sub-02" / "a.tsv").write_bytes(b"onset\n9\n")  # same size, other content
    with client_for(registry) as client:
        result = client.pull("pulls", "draft", tmp_path)
    assert (tmp_path / "big.bin").read_bytes() == big
    assert (tmp_path / "sub-02" / "a.tsv").read_bytes() == pulled.files["sub-02/a.tsv"]
    assert {f.path: f.action for f in result.files}["sub-02/a.tsv"] == "downloaded"
    assert not list(tmp_path.rglob("*.part"))


def test_a_damaged_blob_on_the_server_fails_the_pull_clearly(registry, tmp_path):
    new_dataset(registry, "damaged")
    data = random_bytes(3 * CHUNK, 6)
    (tmp_path / "d.bin").write_bytes(data)
    with client_for(registry) as client:
        client.upload_file("damaged", tmp_path / "d.bin")
        blob = Path(registry.service.store.blob_path(sha(data)))
        blob.write_bytes(b"\0" * len(data))  # bit rot on the server
        try:
            with pytest.raises(RegistryClientError) as info:
                client.pull("damaged", "draft", tmp_path / "out")
        finally:
            blob.write_bytes(data)
    error = info.value
    assert error.code == "pull.checksum_mismatch" and "'d.bin'" in error.message
    assert "conform registry fsck" in error.fix
    assert not (tmp_path / "out" / "d.bin").exists() and not (tmp_path / "out" / "d.bin.part").exists()


def test_published_versions_are_pulled_byte_identical_without_a_token(registry, tmp_path):
    new_dataset(registry, "public", kind="other")
    src = tmp_path / "src"
    src.mkdir()
    (src / "notes.txt").write_bytes(b"hello")
    (src / "data.bin").write_bytes(random_bytes(3 * CHUNK + 1, 7))
    with client_for(registry) as client:
        summary = client.upload_tree("public", src)
        job = client.wait_job(summary.job["id"], timeout=30, poll_s=0.05)
        assert job["state"] == "passed", job
    with client_for(registry, "hq") as curator:
        version = curator.publish("public")
    with client_for(registry, None) as anonymous:
        result = anonymous.pull("public", "latest", tmp_path / "copy")
    assert result.version == version["version"] == 1
    assert result.manifest_sha256 == version["manifest_sha256"]
    for name in ("notes.txt", "data.bin"):
        assert (tmp_path / "copy" / name).read_bytes() == (src / name).read_bytes()


# --- refusals and failures ----------------------------------------------------------------


def test_a_wrong_token_is_refused_with_the_servers_reason(registry):
    with RegistryClient(registry.url, "cfr_" + "x" * 43) as client, \
            pytest.raises(RegistryClientError) as info:
        client.me()
    assert info.value.status == 401 and info.value.code == "auth.invalid"
    assert "token create" in info.value.fix and "HTTP 401 auth.invalid" in str(info.value)


def test_another_sites_draft_is_not_visible(registry):
    new_dataset(registry, "cam-only")
    with client_for(registry, "oxf") as client, pytest.raises(RegistryClientError) as info:
        client.get_version("cam-only", "draft")
    assert info.value.status == 404 and info.value.code == "dataset.not_found"


def test_without_a_token_the_fix_says_how_to_log_in(registry):
    with client_for(registry, None) as client, pytest.raises(RegistryClientError) as info:
        client.create_dataset("anon")
    assert info.value.status == 401 and "conform registry login --url" in info.value.fix


def test_a_server_that_is_down_is_reported_at_once_with_its_url():
    import socket

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    start = time.monotonic()
    with RegistryClient(f"http://127.0.0.1:{port}") as client, \
            pytest.raises(RegistryClientError) as info:
        client.list_datasets()
    assert time.monotonic() - start < 5  # no retries for a server that was never there
    assert info.value.code == "connection.failed" and f"127.0.0.1:{port}" in info.value.message


def test_an_answer_that_is_not_the_registrys_json_is_described():
    transport = httpx.MockTransport(lambda request: httpx.Response(502, text="<html>Bad gateway</html>"))
    with RegistryClient("http://proxy.example", transport=transport, retries=0) as client, \
            pytest.raises(RegistryClientError) as info:
        client.publish("x")
    assert info.value.status == 502 and "Bad gateway" in info.value.message


def test_repeatable_requests_are_retried_after_a_503(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    answers = iter([httpx.Response(503, json={"error": {"code": "db.unavailable", "message": "m",
                                                        "fix": "f"}}),
                    httpx.Response(200, json={"status": "ok"})])
    transport = httpx.MockTransport(lambda request: next(answers))
    with RegistryClient("http://r.example", transport=transport) as client:
        assert client.health() == {"status": "ok"}


def test_a_path_leaving_the_destination_is_refused(tmp_path):
    version = {"dataset": "x", "version": 1, "manifest_sha256": "0" * 64,
               "files": [{"path": "../../etc/evil", "size": 1, "sha256": "0" * 64}]}
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=version))
    with RegistryClient("http://r.example", transport=transport) as client, \
            pytest.raises(RegistryClientError, match="would leave the destination"):
        client.pull("x", 1, tmp_path / "out")
    assert not os.path.exists(tmp_path / "etc")


def test_wait_job_follows_a_job_that_superseded_it(monkeypatch):
    monkeypatch.setattr(time, "sleep", lambda s: None)
    jobs = {1: [{"id": 1, "state": "failed", "superseded_by": 2}],
            2: [{"id": 2, "state": "running"}, {"id": 2, "state": "passed", "report": {}}]}

    def answer(request: httpx.Request) -> httpx.Response:
        job_id = int(request.url.path.rsplit("/", 1)[-1])
        return httpx.Response(200, json=jobs[job_id].pop(0) if len(jobs[job_id]) > 1
                              else jobs[job_id][0])

    seen: list[tuple[int, str]] = []
    with RegistryClient("http://r.example", transport=httpx.MockTransport(answer)) as client:
        job = client.wait_job(1, on_change=lambda j: seen.append((j["id"], j["state"])))
    assert job["id"] == 2 and job["state"] == "passed"
    assert seen == [(1, "failed"), (2, "running"), (2, "passed")]
