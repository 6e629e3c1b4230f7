"""The HTTP API through FastAPI's TestClient: routes, statuses, error bodies, headers.

One app per database backend is shared by the module, with its job runner thread running;
every test works in datasets of its own.
"""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from conform_registry._api import create_app
from conform_registry._config import RegistryConfig

API = "/api/v1"
KiB = 1024
EVENTS = b"onset\tduration\ttrial_type\n0\t1\tface\n2\t1\thouse\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def client(module_db_url: str, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("registry")
    config = RegistryConfig(data_dir=folder, db_url=module_db_url, chunk_bytes=KiB,
                            max_upload_chunk_bytes=4 * KiB, max_file_bytes=64 * KiB)
    app = create_app(config, poll_s=0.1)
    with TestClient(app) as test_client:
        yield test_client


@pytest.fixture(scope="module")
def auth(client: TestClient) -> dict[str, dict[str, str]]:
    service = client.app.state.service
    return {who: {"Authorization": f"Bearer {service.create_token(site, role)}"}
            for who, site, role in (("cam", "cam", "contributor"), ("oxf", "oxf", "contributor"),
                                    ("hq", "hq", "curator"))}


@pytest.fixture
def name(client: TestClient, auth) -> str:
    dataset = f"ds-{uuid.uuid4().hex[:10]}"
    assert client.post(f"{API}/datasets", json={"name": dataset}, headers=auth["cam"]).status_code == 201
    return dataset


def error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fix"}, body
    assert body["error"]["code"] == code, body
    assert body["error"]["message"] and body["error"]["fix"]
    return body["error"]


def upload(client, headers, dataset, path, data, *, complete=True, **extra):
    response = client.post(f"{API}/datasets/{dataset}/uploads", headers=headers,
                           json={"path": path, "size": len(data), "sha256": sha(data), **extra})
    assert response.status_code in (200, 201), response.text
    up = response.json()
    for i in range(up["n_chunks"]):
        if i in up["received"]:
            continue
        piece = data[i * up["chunk_bytes"]:(i + 1) * up["chunk_bytes"]]
        put = client.put(f"{API}/uploads/{up['upload_id']}/chunks/{i}", content=piece,
                         headers={**headers, "X-Chunk-SHA256": sha(piece)})
        assert put.json() == {"index": i, "sha256": sha(piece), "size": len(piece)}, put.text
    if not complete:
        return up
    done = client.post(f"{API}/uploads/{up['upload_id']}/complete", headers=headers)
    assert done.status_code == 200, done.text
    return done.json()


def wait_job(client, headers, job_id, timeout=20.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"{API}/jobs/{job_id}", headers=headers).json()
        if job["state"] in ("passed", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


# --- basics ---------------------------------------------------------------------------------


def test_health_says_the_versions_without_a_token(client):
    body = client.get(f"{API}/health").json()
    assert body["status"] == "ok" and "+" in body["validator_version"]
    assert body["limits"]["chunk_bytes"] == KiB


def test_me_names_the_site_and_role(client, auth):
    assert client.get(f"{API}/me", headers=auth["hq"]).json() == {"site": "hq", "role": "curator"}


def test_openapi_docs_are_served(client):
    assert "swagger" in client.get("/docs").text.lower()
    schema = client.get("/openapi.json").json()
    assert schema["info"]["title"] == "CONFORM registry"
    assert f"{API}/uploads/{{upload_id}}/chunks/{{index}}" in schema["paths"]


# --- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("header, code", [
    (None, "auth.required"),
    ("Bearer nonsense", "auth.unauthenticated"),
    ("Basic dXNlcjpwYXNz", "auth.unauthenticated"),
    ("Bearer cfr_" + "x" * 43, "auth.invalid"),
])
def test_writes_without_a_valid_token_are_refused(client, header, code):
    headers = {} if header is None else {"Authorization": header}
    response = client.post(f"{API}/datasets", json={"name": "never"}, headers=headers)
    error(response, 401, code)
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_unknown_routes_and_methods_answer_the_error_shape(client):
    assert "/api/v1/nothing" in error(client.get(f"{API}/nothing"), 404, "route.not_found")["message"]
    error(client.delete(f"{API}/health"), 405, "route.method_not_allowed")


def test_invalid_and_malformed_bodies_answer_422_and_400(client, auth):
    message = error(client.post(f"{API}/datasets", json={"kind": 3}, headers=auth["cam"]), 422,
                    "request.invalid")["message"]
    assert "name" in message
    error(client.post(f"{API}/datasets", content=b"{", headers={**auth["cam"],
                                                                 "Content-Type": "application/json"}),
          400, "request.malformed")
    error(client.get(f"{API}/jobs/abc", headers=auth["cam"]), 422, "request.invalid")


def test_bad_dataset_input_is_refused_with_the_fix(client, auth, name):
    error(client.post(f"{API}/datasets", json={"name": "Bad Name"}, headers=auth["cam"]), 422,
          "dataset.bad_name")
    error(client.post(f"{API}/datasets", json={"name": name}, headers=auth["cam"]), 409,
          "dataset.exists")
    error(client.get(f"{API}/datasets/none-such"), 404, "dataset.not_found")


# --- the lifecycle --------------------------------------------------------------------------


def test_upload_validate_publish_and_download(client, auth, name):
    data = os.urandom(3 * KiB + 10)
    created = client.post(f"{API}/datasets/{name}/uploads", headers=auth["cam"],
                          json={"path": "sub-01/data.bin", "size": len(data), "sha256": sha(data)})
    assert created.status_code == 201
    up = upload(client, auth["cam"], name, "sub-01/data.bin", data, complete=False)
    resumed = client.post(f"{API}/datasets/{name}/uploads", headers=auth["cam"],
                          json={"path": "sub-01/data.bin", "size": len(data), "sha256": sha(data)})
    assert resumed.status_code == 200 and resumed.json()["received"] == [0, 1, 2, 3]
    assert client.get(f"{API}/uploads/{up['upload_id']}", headers=auth["cam"]).json()["state"] == "open"
    done = client.post(f"{API}/uploads/{up['upload_id']}/complete", headers=auth["cam"]).json()
    upload(client, auth["cam"], name, "events_events.tsv", EVENTS)
    job = wait_job(client, auth["cam"], done["job"]["id"])
    assert job["state"] in ("passed", "failed")
    latest = client.get(f"{API}/datasets/{name}", headers=auth["cam"]).json()["draft"]["validation"]
    assert wait_job(client, auth["cam"], latest["id"])["state"] == "passed"
    error(client.post(f"{API}/datasets/{name}/publish", headers=auth["cam"]), 403, "auth.forbidden")
    published = client.post(f"{API}/datasets/{name}/publish", headers=auth["hq"])
    assert published.status_code == 201 and published.json()["version"] == 1
    url = f"{API}/datasets/{name}/versions/1/files/sub-01/data.bin"
    whole = client.get(url)  # published: no token needed
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["x-content-sha256"] == sha(data)
    assert whole.headers["etag"] == f'"{sha(data)}"' and whole.headers["accept-ranges"] == "bytes"
    part = client.get(url, headers={"Range": "bytes=100-"})
    assert part.status_code == 206 and part.content == data[100:]
    assert part.headers["content-range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    assert client.get(url, headers={"Range": "bytes=-10"}).content == data[-10:]
    head = client.head(url)
    assert head.status_code == 200 and head.headers["content-length"] == str(len(data))
    assert client.get(url, headers={"Range": f"bytes={len(data)}-"}).status_code == 416
    listing = client.get(f"{API}/datasets/{name}/versions/latest").json()
    assert [f["path"] for f in listing["files"]] == ["events_events.tsv", "sub-01/data.bin"]


def test_chunks_above_the_limit_are_refused_before_they_are_read(client, auth, name):
    up = upload(client, auth["cam"], name, "big.bin", os.urandom(2 * KiB), complete=False)
    body = os.urandom(4 * KiB + 1)
    response = client.put(f"{API}/uploads/{up['upload_id']}/chunks/0", content=body,
                          headers={**auth["cam"], "X-Chunk-SHA256": sha(body)})
    error(response, 413, "chunk.too_large")
    wrong = client.put(f"{API}/uploads/{up['upload_id']}/chunks/0", content=b"y" * KiB,
                       headers={**auth["cam"], "X-Chunk-SHA256": sha(b"x")})
    error(wrong, 422, "chunk.checksum_mismatch")
    too_big = client.post(f"{API}/datasets/{name}/uploads", headers=auth["cam"],
                          json={"path": "huge.bin", "size": 10**12, "sha256": sha(b"")})
    error(too_big, 413, "upload.too_large")


def test_a_checksum_mismatch_on_complete_shows_nothing(client, auth, name):
    data = os.urandom(KiB)
    response = client.post(f"{API}/datasets/{name}/uploads", headers=auth["cam"],
                           json={"path": "x.bin", "size": len(data), "sha256": sha(b"not it")})
    up = response.json()
    client.put(f"{API}/uploads/{up['upload_id']}/chunks/0", content=data,
               headers={**auth["cam"], "X-Chunk-SHA256": sha(data)})
    error(client.post(f"{API}/uploads/{up['upload_id']}/complete", headers=auth["cam"]), 422,
          "upload.checksum_mismatch")
    draft = client.get(f"{API}/datasets/{name}/versions/draft", headers=auth["cam"]).json()
    assert draft["files"] == []


def test_delete_abort_and_missing_things(client, auth, name):
    upload(client, auth["cam"], name, "a.txt", b"a")
    assert client.delete(f"{API}/datasets/{name}/draft/files/a.txt", headers=auth["cam"]).status_code == 204
    error(client.delete(f"{API}/datasets/{name}/draft/files/a.txt", headers=auth["cam"]), 404,
          "file.not_found")
    error(client.get(f"{API}/datasets/{name}/versions/draft/files/a.txt", headers=auth["cam"]), 404,
          "file.not_found")
    up = upload(client, auth["cam"], name, "b.txt", b"bbbb", complete=False)
    assert client.delete(f"{API}/uploads/{up['upload_id']}", headers=auth["cam"]).status_code == 204
    error(client.post(f"{API}/uploads/{up['upload_id']}/complete", headers=auth["cam"]), 409,
          "upload.aborted")
    error(client.get(f"{API}/uploads/{'0' * 32}", headers=auth["cam"]), 404, "upload.not_found")
    error(client.get(f"{API}/datasets/{name}/versions/7"), 404, "dataset.not_found")


def test_listing_shows_drafts_only_to_their_site_and_curators(client, auth, name):
    def names(headers):
        return {d["name"] for d in client.get(f"{API}/datasets", headers=headers).json()["datasets"]}

    assert name in names(auth["cam"]) and name in names(auth["hq"])
    assert name not in names(auth["oxf"]) and name not in names({})


def test_jobs_routes(client, auth, name):
    queued = client.post(f"{API}/datasets/{name}/validate", headers=auth["cam"])
    assert queued.status_code == 202
    job = wait_job(client, auth["cam"], queued.json()["id"])
    assert job["state"] == "failed" and job["report"]["errors"][0]["code"] == "files.none"
    jobs = client.get(f"{API}/datasets/{name}/jobs", headers=auth["cam"]).json()["jobs"]
    assert [j["id"] for j in jobs] == [job["id"]]
    retried = client.post(f"{API}/jobs/{job['id']}/retry", headers=auth["cam"])
    assert retried.status_code == 202 and retried.json()["state"] == "queued"
    assert wait_job(client, auth["cam"], job["id"])["attempts"] == 2
    error(client.get(f"{API}/jobs/{job['id']}", headers=auth["oxf"]), 404, "job.not_found")
