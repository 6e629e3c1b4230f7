"""Validation jobs: state, log, report, crash, retry, supersede, requeue, exclusive claims."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest

import conform_registry._validators as validators
from conform_registry._config import RegistryConfig
from conform_registry._jobs import JobRunner
from conform_registry._service import RegistryService
from conform_registry._service_base import RegistryError, manifest_sha256

RUN = "sub-01_ses-01_task-conform_run-01_events.tsv"
GOOD = b"onset\tduration\ttrial_type\n0\t1\tface\n2\t1\thouse\n"
BAD = b"onset\tduration\ttrial_type\n0\t-1\tface\n"
PROTOCOL = (b"onset\tduration\ttrial_type\tstimulus_id\tstim_file\n"
            b"0\t1\tstim\timg001\tstimuli/img001.png\n2\t1\tstim\timg002\tstimuli/img002.png\n")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def service(db_url: str, tmp_path: Path):
    svc = RegistryService(RegistryConfig(data_dir=tmp_path, db_url=db_url, chunk_bytes=1024,
                                         max_upload_chunk_bytes=4096))
    svc.startup()
    yield svc
    svc.close()


@pytest.fixture
def cam(service):
    return service.authenticate(service.create_token("cam", "contributor"))


@pytest.fixture
def hq(service):
    return service.authenticate(service.create_token("hq", "curator"))


def put(service, who, dataset, path, data):
    upload, _ = service.create_upload(who, dataset, path=path, size=len(data), sha256=sha(data))
    for i in range(upload["n_chunks"]):
        piece = data[i * 1024:(i + 1) * 1024]
        service.put_chunk(who, upload["upload_id"], i, piece, sha(piece))
    return service.complete_upload(who, upload["upload_id"])


def job_of(service, who, result):
    return service.get_job(who, result["job"]["id"])


def test_a_valid_draft_passes_with_its_report_and_log(service, cam):
    service.create_dataset(cam, "ds")
    result = put(service, cam, "ds", f"sub-01/func/{RUN}", GOOD)
    assert JobRunner(service).run_once() == result["job"]["id"]
    job = job_of(service, cam, result)
    assert (job["state"], job["attempts"], job["errors"]) == ("passed", 1, 0)
    assert job["report"]["ok"] and job["report"]["kind"] == "bids"
    assert job["report"]["validator_version"] == validators.validator_version()
    draft = service.get_version(cam, "ds", "draft")
    assert job["content_sha256"] == manifest_sha256(draft["files"]) == draft["manifest_sha256"]
    assert job["draft_changed_at"] == draft["changed_at"]
    for words in ("queued: upload of", "started by", "copied 1 files", "0 errors", "passed"):
        assert words in job["log"], job["log"]
    assert JobRunner(service).run_once() is None  # the queue is empty


def test_validator_errors_fail_the_job_and_fill_the_report(service, cam):
    service.create_dataset(cam, "ds", kind="bids")
    job = job_of(service, cam, put(service, cam, "ds", RUN, BAD))
    JobRunner(service).run_pending()
    job = service.get_job(cam, job["id"])
    assert job["state"] == "failed"
    assert [e["code"] for e in job["report"]["errors"]] == ["events.negative_duration"]
    assert "error events.negative_duration" in job["log"]
    assert service.get_dataset(cam, "ds")["draft"]["validation"]["errors"] == 1


def test_a_crash_fails_the_job_with_the_traceback_and_retry_runs_it_again(service, cam, monkeypatch):
    service.create_dataset(cam, "ds")
    job_id = put(service, cam, "ds", RUN, GOOD)["job"]["id"]

    def crash(*args, **kwargs):
        raise RuntimeError("validator exploded")

    monkeypatch.setattr(validators, "validate_files", crash)
    JobRunner(service).run_pending()
    job = service.get_job(cam, job_id)
    assert (job["state"], job["report"]) == ("failed", None)
    assert "crashed: RuntimeError: validator exploded" in job["log"]
    assert "Traceback" in job["log"]
    monkeypatch.undo()
    assert service.retry_job(cam, job_id)["state"] == "queued"
    JobRunner(service).run_pending()
    job = service.get_job(cam, job_id)
    assert (job["state"], job["attempts"]) == ("passed", 2)
    assert "retry requested by site 'cam'" in job["log"]
    with pytest.raises(RegistryError) as info:
        service.retry_job(cam, job_id)
    assert (info.value.status, info.value.code) == (409, "job.not_failed")


def test_a_newer_job_supersedes_the_queued_ones(service, cam):
    service.create_dataset(cam, "ds")
    first = put(service, cam, "ds", "a.tsv", GOOD)["job"]["id"]
    second = put(service, cam, "ds", "b.tsv", GOOD)["job"]["id"]
    old = service.get_job(cam, first)
    assert (old["state"], old["superseded_by"]) == ("failed", second)
    assert f"superseded by job {second}" in old["log"]
    with pytest.raises(RegistryError) as info:
        service.retry_job(cam, first)
    assert info.value.code == "job.superseded" and str(second) in info.value.message
    assert JobRunner(service).run_pending() == [second]
    assert [j["id"] for j in service.list_jobs(cam, "ds")] == [second, first]


def test_jobs_left_running_by_a_killed_server_are_requeued_at_start(service, cam, db_url, tmp_path):
    service.create_dataset(cam, "ds")
    job_id = put(service, cam, "ds", RUN, GOOD)["job"]["id"]
    claim = service.claim_job("server-that-dies")
    assert claim is not None and service.get_job(cam, job_id)["state"] == "running"
    restarted = RegistryService(service.config)
    try:
        assert restarted.startup() == 1
        assert restarted.startup() == 0  # only once per start
        job = restarted.get_job(cam, job_id)
        assert job["state"] == "queued" and "requeued" in job["log"]
        assert not service.finish_job(claim, "passed", None, "late\n")  # the dead worker's result
        JobRunner(restarted).run_pending()
        assert restarted.get_job(cam, job_id)["state"] == "passed"
        assert restarted.get_job(cam, job_id)["attempts"] == 2
    finally:
        restarted.close()


def test_concurrent_workers_never_claim_a_job_twice(service, cam):
    for i in range(8):
        service.create_dataset(cam, f"ds{i}")
        put(service, cam, f"ds{i}", "a.tsv", GOOD)
    second = RegistryService(service.config)  # a second server on the same database
    claimed: list[int] = []
    lock = threading.Lock()

    def work(svc: RegistryService) -> None:
        while (claim := svc.claim_job()) is not None:
            with lock:
                claimed.append(claim.job_id)

    threads = [threading.Thread(target=work, args=(svc,)) for svc in (service, service, second, second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    second.close()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 8


def test_events_are_compared_with_the_sites_protocol(service, cam, hq):
    service.create_dataset(hq, "proto")
    put(service, hq, "proto", f"site-01/sub-01/ses-01/{RUN}", PROTOCOL)
    JobRunner(service).run_pending()
    service.publish(hq, "proto")
    created = service.create_dataset(cam, "ds", protocol="proto@latest")
    assert created["protocol"] == "proto@1"
    put(service, cam, "ds", f"sub-01/ses-01/func/{RUN}", PROTOCOL)
    JobRunner(service).run_pending()
    assert service.get_dataset(cam, "ds")["draft"]["validation"]["state"] == "passed"
    swapped = PROTOCOL.replace(b"img001", b"tmp").replace(b"img002", b"img001").replace(b"tmp", b"img002")
    job_id = put(service, cam, "ds", f"sub-01/ses-01/func/{RUN}", swapped)["job"]["id"]
    JobRunner(service).run_pending()
    job = service.get_job(cam, job_id)
    assert job["state"] == "failed"
    assert [e["code"] for e in job["report"]["errors"]] == ["events.protocol_mismatch"]
    assert "copied protocol proto@1" in job["log"]


def test_a_damaged_blob_fails_the_job_with_the_reason(service, cam):
    service.create_dataset(cam, "ds")
    job_id = put(service, cam, "ds", RUN, GOOD)["job"]["id"]
    Path(service.store.blob_path(sha(GOOD))).write_bytes(b"bit rot")
    JobRunner(service).run_pending()
    job = service.get_job(cam, job_id)
    assert job["state"] == "failed" and "fsck" in job["log"]


def test_the_runner_threads_run_jobs_as_they_are_queued(service, cam):
    runner = JobRunner(service, poll_s=30)  # a long poll: only the wake-up can start the job
    runner.start()
    try:
        service.create_dataset(cam, "ds")
        job_id = put(service, cam, "ds", RUN, GOOD)["job"]["id"]
        deadline = time.monotonic() + 20
        while service.get_job(cam, job_id)["state"] != "passed" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.get_job(cam, job_id)["state"] == "passed"
    finally:
        runner.stop(timeout=10)
    assert not runner.running


def test_another_site_cannot_see_or_retry_jobs(service, cam):
    service.create_dataset(cam, "ds")
    job_id = put(service, cam, "ds", RUN, GOOD)["job"]["id"]
    oxf = service.authenticate(service.create_token("oxf", "contributor"))
    for call, args in ((service.get_job, (oxf, job_id)), (service.retry_job, (oxf, job_id)),
                       (service.list_jobs, (oxf, "ds")), (service.request_validation, (oxf, "ds"))):
        with pytest.raises(RegistryError) as info:
            call(*args)
        assert info.value.status == 404
    with pytest.raises(RegistryError) as info:
        service.get_job(cam, 10_000)
    assert info.value.code == "job.not_found"


def test_validation_can_be_requested_and_is_audited(service, cam):
    service.create_dataset(cam, "ds")
    job = service.request_validation(cam, "ds")
    assert job["state"] == "queued"
    JobRunner(service).run_pending()
    job = service.get_job(cam, job["id"])
    assert job["state"] == "failed" and job["report"]["errors"][0]["code"] == "files.none"
