"""The registry service: datasets, uploads, access, publishing, audit, tokens and fsck.

One service per database backend is shared by the module (migrating per test would cost
more than the tests); every test works in datasets of its own.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from conform_registry._auth import Principal
from conform_registry._config import RegistryConfig
from conform_registry._db import Audit, Blob, Job, Upload
from conform_registry._jobs import JobRunner
from conform_registry._service import RegistryService
from conform_registry._service_base import RegistryError, check_path, manifest_sha256

KiB = 1024
EVENTS = b"onset\tduration\ttrial_type\n0\t1\tface\n2\t1\thouse\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def service(module_db_url: str, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[RegistryService]:
    folder = tmp_path_factory.mktemp("registry")
    config = RegistryConfig(data_dir=folder, db_url=module_db_url, chunk_bytes=KiB,
                            max_upload_chunk_bytes=4 * KiB, max_file_bytes=64 * KiB)
    svc = RegistryService(config)
    svc.startup()
    yield svc
    svc.close()


@pytest.fixture(scope="module")
def people(service: RegistryService) -> dict[str, Principal]:
    tokens = {"cam": service.create_token("cam", "contributor"),
              "oxf": service.create_token("oxf", "contributor"),
              "hq": service.create_token("hq", "curator")}
    return {who: service.authenticate(token) for who, token in tokens.items()}


@pytest.fixture
def name(service: RegistryService, people: dict[str, Principal]) -> str:
    """A new, empty dataset of site 'cam'."""
    dataset = f"ds-{uuid.uuid4().hex[:10]}"
    service.create_dataset(people["cam"], dataset)
    return dataset


def refused(status: int, code: str, call, *args, **kwargs) -> RegistryError:
    with pytest.raises(RegistryError) as info:
        call(*args, **kwargs)
    assert (info.value.status, info.value.code) == (status, code), info.value
    assert info.value.message and info.value.fix
    return info.value


def start(service: RegistryService, who: Principal, dataset: str, path: str, data: bytes,
          **kwargs) -> dict:
    upload, _ = service.create_upload(who, dataset, path=path, size=len(data), sha256=sha(data),
                                      **kwargs)
    return upload


def send(service: RegistryService, who: Principal, upload: dict, data: bytes,
         indices: list[int] | None = None) -> None:
    size = upload["chunk_bytes"]
    for i in range(upload["n_chunks"]) if indices is None else indices:
        piece = data[i * size:(i + 1) * size]
        service.put_chunk(who, upload["upload_id"], i, piece, sha(piece))


def put(service: RegistryService, who: Principal, dataset: str, path: str, data: bytes,
        **kwargs) -> dict:
    upload = start(service, who, dataset, path, data, **kwargs)
    send(service, who, upload, data)
    return service.complete_upload(who, upload["upload_id"])


def draft_files(service: RegistryService, who: Principal, dataset: str) -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in service.get_version(who, dataset, "draft")["files"]}


def audits(service: RegistryService, dataset: str) -> list[str]:
    with service._tx() as session:
        return list(session.scalars(select(Audit.action).where(Audit.target == dataset)
                                    .order_by(Audit.id)))


def run_jobs(service: RegistryService) -> None:
    JobRunner(service).run_pending()


# --- tokens ---------------------------------------------------------------------------------


def test_a_token_authenticates_its_site_and_role(service, people):
    assert (people["cam"].site, people["cam"].role.value) == ("cam", "contributor")
    assert people["hq"].is_curator


@pytest.mark.parametrize("token, code", [("", "auth.unauthenticated"),
                                         ("cfr_short", "auth.unauthenticated"),
                                         ("cfr_" + "A" * 43, "auth.invalid")])
def test_missing_malformed_and_unknown_tokens_are_refused(service, token, code):
    error = refused(401, code, service.authenticate, token)
    assert "A" * 20 not in str(error)  # never echo a token


def test_revoked_tokens_are_refused(service):
    token = service.create_token("revoked-site", "contributor", label="laptop")
    assert service.revoke_token(token[:8]) == 1
    refused(401, "auth.invalid", service.authenticate, token)


def test_bad_roles_and_site_names_are_refused(service):
    assert "curator" in str(refused(422, "request.invalid", service.create_token, "x", "curatr"))
    refused(422, "site.bad_name", service.create_token, "../etc", "curator")


def test_bearer_headers_are_parsed(service, people):
    token = service.create_token("cam", "contributor")
    assert service.authenticate_header(f"Bearer {token}").site == "cam"
    refused(401, "auth.unauthenticated", service.authenticate_header, f"Basic {token}")
    refused(401, "auth.unauthenticated", service.authenticate_header, None)


# --- datasets -------------------------------------------------------------------------------


def test_a_new_dataset_has_an_empty_draft_and_an_audit_row(service, people, name):
    info = service.get_dataset(people["cam"], name)
    assert (info["site"], info["versions"], info["draft"]["files"]) == ("cam", [], 0)
    assert service.get_version(people["cam"], name, "draft")["files"] == []
    assert audits(service, name) == ["dataset.create"]


@pytest.mark.parametrize("bad, code", [("Upper", "dataset.bad_name"), ("-x", "dataset.bad_name"),
                                       ("a/b", "dataset.bad_name")])
def test_bad_dataset_names_are_refused(service, people, bad, code):
    refused(422, code, service.create_dataset, people["cam"], bad)


def test_bad_kind_gets_a_suggestion_and_duplicates_conflict(service, people, name):
    assert "'mosaic'" in refused(422, "dataset.bad_kind", service.create_dataset, people["cam"],
                                 "other-name-x", "mosiac").fix
    refused(409, "dataset.exists", service.create_dataset, people["oxf"], name)


def test_protocol_must_name_a_published_version(service, people, name):
    refused(422, "dataset.bad_protocol", service.create_dataset, people["cam"], "p1-x", None, name)
    refused(422, "dataset.bad_protocol", service.create_dataset, people["cam"], "p2-x", None, "nope")


def test_other_sites_cannot_see_an_unpublished_dataset(service, people, name):
    refused(404, "dataset.not_found", service.get_dataset, people["oxf"], name)
    refused(404, "dataset.not_found", service.get_dataset, None, name)
    assert name not in [d["name"] for d in service.list_datasets(people["oxf"])]
    assert name in [d["name"] for d in service.list_datasets(people["cam"])]
    assert "draft" in service.get_dataset(people["hq"], name)  # curators see every draft


# --- uploads --------------------------------------------------------------------------------


def test_a_file_is_visible_only_once_its_upload_completes(service, people, name):
    data = os.urandom(3 * KiB + 5)
    upload = start(service, people["cam"], name, "sub-01/a.bin", data)
    assert upload["n_chunks"] == 4
    send(service, people["cam"], upload, data)
    assert draft_files(service, people["cam"], name) == {}  # every chunk, but not completed
    result = service.complete_upload(people["cam"], upload["upload_id"])
    assert result["files"] == [{"path": "sub-01/a.bin", "size": len(data), "sha256": sha(data)}]
    assert result["job"]["state"] == "queued"
    assert draft_files(service, people["cam"], name) == {"sub-01/a.bin": sha(data)}
    with service.store.open(sha(data)) as handle:
        assert handle.read() == data
    assert audits(service, name) == ["dataset.create", "upload.create", "upload.complete"]


def test_an_upload_resumes_with_the_chunks_the_server_holds(service, people, name):
    data = os.urandom(4 * KiB)
    first = start(service, people["cam"], name, "b.bin", data)
    send(service, people["cam"], first, data, [0, 2])
    again, created = service.create_upload(people["cam"], name, path="b.bin", size=len(data),
                                           sha256=sha(data))
    assert not created and again["upload_id"] == first["upload_id"]
    assert again["received"] == [0, 2]
    send(service, people["cam"], again, data, [1, 3])
    assert service.complete_upload(people["cam"], again["upload_id"])["files"][0]["sha256"] == sha(data)


def test_a_chunk_with_a_wrong_digest_or_size_is_not_kept(service, people, name):
    data = os.urandom(2 * KiB)
    upload = start(service, people["cam"], name, "c.bin", data)
    uid = upload["upload_id"]
    refused(422, "chunk.checksum_mismatch", service.put_chunk, people["cam"], uid, 0, data[:KiB],
            sha(b"other"))
    refused(422, "chunk.size_mismatch", service.put_chunk, people["cam"], uid, 0, data[:10],
            sha(data[:10]))
    refused(413, "chunk.too_large", service.put_chunk, people["cam"], uid, 0, data, sha(data))
    refused(422, "chunk.bad_index", service.put_chunk, people["cam"], uid, 2, b"x", sha(b"x"))
    refused(400, "chunk.no_sha256", service.put_chunk, people["cam"], uid, 0, data[:KiB], None)
    assert service.get_upload(people["cam"], uid)["received"] == []
    assert service.store.list_chunks(uid) == []


def test_resending_a_chunk_is_harmless(service, people, name):
    data = os.urandom(KiB + 1)
    upload = start(service, people["cam"], name, "d.bin", data)
    send(service, people["cam"], upload, data)
    send(service, people["cam"], upload, data, [0])
    assert service.complete_upload(people["cam"], upload["upload_id"])["files"][0]["size"] == KiB + 1


@pytest.mark.parametrize("kwargs, status, code", [
    ({"size": 64 * KiB + 1}, 413, "upload.too_large"),
    ({"chunk_bytes": 4 * KiB + 1}, 413, "upload.chunk_too_large"),
    ({"path": "../x"}, 422, "path.traversal"),
    ({"path": "/etc/passwd"}, 422, "path.absolute"),
    ({"path": "a\\b"}, 422, "path.windows"),
    ({"path": "bad\udcffname"}, 422, "path.not_utf8"),
    ({"path": "a\nb"}, 422, "path.bad_chars"),
    ({"sha256": "xyz"}, 422, "request.bad_sha256"),
    ({"size": -1}, 422, "request.invalid"),
])
def test_bad_uploads_are_refused_before_any_byte_is_stored(service, people, name, kwargs, status,
                                                           code):
    args = {"path": "ok.bin", "size": 10, "sha256": sha(b"0123456789"), **kwargs}
    refused(status, code, service.create_upload, people["cam"], name, **args)
    with service._tx() as session:
        dataset_id = service._dataset(session, name, people["cam"]).id
        assert session.scalars(select(Upload.id).where(Upload.dataset_id == dataset_id)).all() == []


def test_paths_are_normalised():
    assert check_path("./a//b/./c.txt") == "a/b/c.txt"


def test_a_whole_file_mismatch_aborts_the_upload_and_shows_nothing(service, people, name):
    data = os.urandom(2 * KiB)
    upload, _ = service.create_upload(people["cam"], name, path="e.bin", size=len(data),
                                      sha256=sha(b"something else"))
    send(service, people["cam"], upload, data)
    error = refused(422, "upload.checksum_mismatch", service.complete_upload, people["cam"],
                    upload["upload_id"])
    assert "e.bin" in error.message
    assert draft_files(service, people["cam"], name) == {}
    assert not service.store.exists(sha(data))
    assert service.get_upload(people["cam"], upload["upload_id"])["state"] == "aborted"
    refused(409, "upload.aborted", service.complete_upload, people["cam"], upload["upload_id"])


def test_completing_with_missing_chunks_names_them(service, people, name):
    data = os.urandom(3 * KiB)
    upload = start(service, people["cam"], name, "f.bin", data)
    send(service, people["cam"], upload, data, [1])
    error = refused(409, "upload.incomplete", service.complete_upload, people["cam"],
                    upload["upload_id"])
    assert "indices 0, 2" in error.message
    assert draft_files(service, people["cam"], name) == {}


def test_completing_twice_answers_the_same_files(service, people, name):
    data = os.urandom(100)
    upload = start(service, people["cam"], name, "g.bin", data)
    send(service, people["cam"], upload, data)
    first = service.complete_upload(people["cam"], upload["upload_id"])
    second = service.complete_upload(people["cam"], upload["upload_id"])
    assert second["files"] == first["files"] and second["upload"]["state"] == "complete"


def test_a_crash_after_joining_the_chunks_still_completes(service, people, name):
    """Chunks joined into the blob, then the server died: the re-run completes without chunks."""
    data = os.urandom(2 * KiB + 7)
    upload = start(service, people["cam"], name, "h.bin", data)
    send(service, people["cam"], upload, data)
    service.store.assemble(upload["upload_id"], upload["n_chunks"], sha(data), len(data))
    assert service.get_upload(people["cam"], upload["upload_id"])["received"] == [0, 1, 2]
    result = service.complete_upload(people["cam"], upload["upload_id"])
    assert result["files"][0]["sha256"] == sha(data)


def test_identical_content_is_stored_once(service, people, name):
    data = os.urandom(500)
    put(service, people["cam"], name, "x/one.bin", data)
    put(service, people["cam"], name, "x/two.bin", data)
    with service._tx() as session:
        assert session.scalars(select(Blob.sha256).where(Blob.sha256 == sha(data))).all() == [sha(data)]
    assert set(draft_files(service, people["cam"], name)) == {"x/one.bin", "x/two.bin"}


def test_uploading_a_path_again_replaces_the_file(service, people, name):
    put(service, people["cam"], name, "r.txt", b"old")
    put(service, people["cam"], name, "r.txt", b"new")
    assert draft_files(service, people["cam"], name) == {"r.txt": sha(b"new")}
    same = put(service, people["cam"], name, "r.txt", b"new")
    assert same["job"] is None  # nothing changed, nothing to validate


def test_a_file_cannot_sit_inside_a_file(service, people, name):
    put(service, people["cam"], name, "a/b", b"1")
    upload = start(service, people["cam"], name, "a/b/c", b"2")
    send(service, people["cam"], upload, b"2")
    refused(409, "path.conflict", service.complete_upload, people["cam"], upload["upload_id"])
    upload = start(service, people["cam"], name, "a", b"3")
    send(service, people["cam"], upload, b"3")
    refused(409, "path.conflict", service.complete_upload, people["cam"], upload["upload_id"])
    assert draft_files(service, people["cam"], name) == {"a/b": sha(b"1")}


def test_an_aborted_upload_takes_no_chunks(service, people, name):
    data = os.urandom(2 * KiB)
    upload = start(service, people["cam"], name, "i.bin", data)
    send(service, people["cam"], upload, data, [0])
    service.abort_upload(people["cam"], upload["upload_id"])
    service.abort_upload(people["cam"], upload["upload_id"])  # twice is fine
    assert service.store.list_chunks(upload["upload_id"]) == []
    refused(409, "upload.aborted", service.put_chunk, people["cam"], upload["upload_id"], 1,
            data[KiB:], sha(data[KiB:]))
    assert "upload.abort" in audits(service, name)


def test_an_empty_file_can_be_uploaded(service, people, name):
    upload = start(service, people["cam"], name, "empty.txt", b"")
    assert upload["n_chunks"] == 0
    assert service.complete_upload(people["cam"], upload["upload_id"])["files"][0]["size"] == 0


# --- access ---------------------------------------------------------------------------------


def test_another_site_cannot_read_or_write_the_draft(service, people, name):
    data = b"secret"
    upload = start(service, people["cam"], name, "s.txt", data)
    oxf = people["oxf"]
    refused(404, "dataset.not_found", service.get_version, oxf, name, "draft")
    refused(404, "dataset.not_found", service.create_upload, oxf, name, path="x", size=1,
            sha256=sha(b"x"))
    refused(404, "dataset.not_found", service.put_chunk, oxf, upload["upload_id"], 0, data, sha(data))
    refused(404, "dataset.not_found", service.complete_upload, oxf, upload["upload_id"])
    refused(404, "dataset.not_found", service.delete_file, oxf, name, "s.txt")
    refused(401, "auth.required", service.get_version, None, name, "draft")
    # once published, the dataset is visible, but its draft still is not
    send(service, people["cam"], upload, data)
    service.complete_upload(people["cam"], upload["upload_id"])
    run_jobs(service)
    service.publish(people["hq"], name)
    assert "draft" not in service.get_dataset(oxf, name)
    refused(403, "auth.forbidden", service.get_version, oxf, name, "draft")
    refused(403, "auth.forbidden", service.create_upload, oxf, name, path="x", size=1,
            sha256=sha(b"x"))
    refused(403, "auth.forbidden", service.delete_file, oxf, name, "s.txt")
    assert service.get_version(None, name, "latest")["files"][0]["path"] == "s.txt"


def test_a_curator_may_upload_into_any_site_dataset(service, people, name):
    put(service, people["hq"], name, "fix.txt", b"curated")
    assert "fix.txt" in draft_files(service, people["cam"], name)


# --- publishing -----------------------------------------------------------------------------


def test_publish_is_gated_on_a_passed_validation_of_the_current_content(service, people, name):
    cam, hq = people["cam"], people["hq"]
    refused(403, "auth.forbidden", service.publish, cam, name)
    refused(409, "publish.empty", service.publish, hq, name)
    put(service, cam, name, "sub-01_task-x_run-01_events.tsv", EVENTS)
    refused(409, "publish.validation_pending", service.publish, hq, name)
    run_jobs(service)
    version = service.publish(hq, name)
    assert (version["version"], version["state"]) == (1, "published")
    assert version["manifest_sha256"] == manifest_sha256(version["files"])
    assert version["validation"]["state"] == "passed"
    refused(409, "publish.unchanged", service.publish, hq, name)
    bad = EVENTS.replace(b"2\t1\thouse", b"2\t-1\thouse")
    put(service, cam, name, "sub-01_task-x_run-02_events.tsv", bad)
    run_jobs(service)
    error = refused(409, "publish.validation_failed", service.publish, hq, name)
    assert "1 errors" in error.message
    service.delete_file(cam, name, "sub-01_task-x_run-02_events.tsv")
    refused(409, "publish.validation_pending", service.publish, hq, name)
    put(service, cam, name, "z.tsv", b"x")
    run_jobs(service)
    assert service.publish(hq, name)["version"] == 2
    assert [f["path"] for f in service.get_version(None, name, 1)["files"]] == [
        "sub-01_task-x_run-01_events.tsv"]  # version 1 is frozen
    assert "publish" in audits(service, name)


def test_a_validation_of_older_content_does_not_count(service, people, name):
    """A job that passed on content the draft no longer has cannot let it be published."""
    put(service, people["cam"], name, "a.tsv", b"x")
    run_jobs(service)
    with service._tx() as session:
        draft = service._draft(session, service._dataset(session, name, people["hq"]).id)
        session.execute(update(Job).where(Job.version_id == draft.id).values(content_sha256="0" * 64))
    refused(409, "publish.not_validated", service.publish, people["hq"], name)


def test_published_manifests_are_sorted_by_path(service, people, name):
    for path in ("b.txt", "a/z.txt", "a.txt"):
        put(service, people["cam"], name, path, path.encode())
    run_jobs(service)
    files = service.publish(people["hq"], name)["files"]
    assert [f["path"] for f in files] == ["a.txt", "a/z.txt", "b.txt"]


def test_versions_resolve_by_number_latest_and_draft(service, people, name):
    refused(404, "version.not_found", service.get_version, people["cam"], name, "latest")
    refused(422, "version.invalid", service.get_version, people["cam"], name, "v1")
    put(service, people["cam"], name, "a.txt", b"a")
    run_jobs(service)
    service.publish(people["hq"], name)
    assert service.get_version(None, name, "1") == service.get_version(None, name, "latest")
    ref = service.file_ref(None, name, "latest", "a.txt")
    assert (ref.size, ref.sha256) == (1, sha(b"a"))
    refused(404, "file.not_found", service.file_ref, None, name, "1", "b.txt")


# --- fsck -----------------------------------------------------------------------------------


def test_fsck_finds_damaged_and_missing_blobs(service, people, name):
    good, bad, gone = b"fsck-good" + os.urandom(8), b"fsck-bad" + os.urandom(8), b"fsck-gone" + os.urandom(8)
    for path, data in (("g", good), ("b", bad), ("m", gone)):
        put(service, people["cam"], name, path, data)
    before = {p["sha256"] for p in service.fsck()}
    assert not {sha(good), sha(bad), sha(gone)} & before
    Path(service.store.blob_path(sha(bad))).write_bytes(b"flipped")
    service.store.delete(sha(gone))
    found = {p["sha256"]: p for p in service.fsck()}
    assert found[sha(bad)]["problem"] == "mismatch"
    assert found[sha(gone)]["problem"] == "missing"
    assert found[sha(gone)]["used_by"] == [f"{name}@draft:m"]
    assert sha(good) not in found


# --- another blob store ---------------------------------------------------------------------


def test_a_memory_blob_store_serves_uploads_archives_jobs_and_fsck(tmp_path):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member, data in (("run-1_events.tsv", EVENTS), ("notes/readme.txt", b"hello")):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    config = RegistryConfig(data_dir=tmp_path, store_url=f"memory://{uuid.uuid4().hex}/blobs",
                            chunk_bytes=KiB, max_upload_chunk_bytes=4 * KiB)
    with RegistryService(config) as svc:
        svc.startup()
        cam = svc.authenticate(svc.create_token("cam", "contributor"))
        svc.create_dataset(cam, "mem")
        result = put(svc, cam, "mem", "sub-01/pack.tar", buffer.getvalue(), unpack=True)
        assert {f["path"] for f in result["files"]} == {"sub-01/run-1_events.tsv",
                                                         "sub-01/notes/readme.txt"}
        run_jobs(svc)
        assert svc.get_job(cam, result["job"]["id"])["state"] == "passed"
        assert svc.fsck() == []


def test_an_unreachable_database_or_store_is_a_clear_error(tmp_path):
    with pytest.raises(RegistryError) as info:
        RegistryService(RegistryConfig(data_dir=tmp_path, db_url="postgresql://u@127.0.0.1:1/db")).startup()
    assert info.value.code == "db.unavailable" and "127.0.0.1" in info.value.message
    with pytest.raises(RegistryError) as info:
        RegistryService(RegistryConfig(data_dir=tmp_path, store_url="nosuchfs://bucket/blobs"))
    assert info.value.code == "store.unavailable" and "--store" in info.value.fix


def test_concurrent_completions_of_one_upload_add_it_once(service, people, name):
    import threading

    data = os.urandom(3 * KiB)
    upload = start(service, people["cam"], name, "once.bin", data)
    send(service, people["cam"], upload, data)
    results: list[dict] = []
    threads = [threading.Thread(target=lambda: results.append(
        service.complete_upload(people["cam"], upload["upload_id"]))) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 3 and all(r["files"] == results[0]["files"] for r in results)
    assert audits(service, name).count("upload.complete") == 1
