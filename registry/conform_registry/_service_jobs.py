"""Validation jobs in the database: queue, claim, finish, requeue, retry.

A job validates a dataset's draft. It is queued in the same transaction as the change that
calls for it (an upload completed, a file deleted) or on request; queuing marks older queued
jobs of the same draft ``failed`` with ``superseded_by`` set (they would check stale content).

Claiming (:meth:`JobsMixin.claim_job`) is one transaction: pick the oldest queued job, lock
its draft's row, ``UPDATE job SET state='running' ... WHERE id=:id AND state='queued'`` (a
second server that picked the same job updates no row and tries the next), and read the
draft's files. The job records the digest of exactly that content
(``content_sha256``); publishing requires that digest to equal the draft's current one.
Finishing updates the row only if the job is still running the same attempt. Jobs left
``running`` by a killed server are put back in the queue by :meth:`JobsMixin.requeue_running`
when the server starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ._auth import Principal
from ._db import Dataset, Job, Version, utcnow
from ._service_base import RegistryError, ServiceBase, manifest_sha256, rowcount

__all__ = ["Claim", "JobsMixin"]

_LOG_LIMIT = 200_000  # characters kept of a job's log


def _line(at: datetime, text: str) -> str:
    return f"{at.strftime('%Y-%m-%d %H:%M:%S')} {text}\n"


@dataclass(frozen=True)
class Claim:
    """A job a worker claimed: what to validate.

    Parameters
    ----------
    job_id : int
        The job.
    attempt : int
        Its attempt number (finishing checks it, so a requeued job is not finished twice).
    dataset : str
        The dataset's name.
    kind : str or None
        The dataset's kind (None: the validator detects it).
    files : list of dict
        The draft's files (``path``, ``size``, ``sha256``) when the job was claimed.
    content_sha256 : str
        :func:`manifest_sha256` of ``files``.
    protocol : str or None
        ``"NAME@N"``: the protocol version the events are compared with.
    protocol_files : list of dict
        That version's files (empty without a protocol).
    problem : str or None
        Why the job cannot run (e.g. the protocol version is gone); it then fails.
    """

    job_id: int
    attempt: int
    dataset: str
    kind: str | None
    files: list[dict[str, Any]]
    content_sha256: str
    protocol: str | None = None
    protocol_files: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None


class JobsMixin(ServiceBase):
    """Job operations of :class:`~conform_registry.RegistryService`."""

    def _queue_job(self, session: Session, draft: Version, at: datetime, reason: str) -> Job:
        """Queue a validation of ``draft`` (locked by the caller); supersede older queued ones."""
        job = Job(kind="validate", version_id=draft.id, state="queued", attempts=0,
                  log=_line(at, f"queued: {reason}"), created_at=at)
        session.add(job)
        session.flush()
        session.execute(
            update(Job).where(Job.version_id == draft.id, Job.state == "queued", Job.id != job.id)
            .values(state="failed", superseded_by=job.id, finished_at=at,
                    log=Job.log + _line(at, f"superseded by job {job.id}: the draft changed "
                                            "before this job ran; that job checks the newer content"))
            .execution_options(synchronize_session=False))
        return job

    def _job_dataset(self, session: Session, job_id: int, principal: Principal | None,
                     action: str) -> tuple[Job, Dataset]:
        job = session.get(Job, job_id)
        version = None if job is None else session.get(Version, job.version_id)
        dataset = None if version is None else session.get(Dataset, version.dataset_id)
        if job is None or dataset is None:
            raise RegistryError(404, "job.not_found", f"There is no job {job_id}.",
                                "List a dataset's jobs with GET /api/v1/datasets/NAME/jobs.")
        try:
            self._owned_dataset(session, dataset.name, principal, action)
        except RegistryError as exc:
            if exc.status == 404:
                raise RegistryError(404, "job.not_found", f"There is no job {job_id} you can see.",
                                    "Use a token of the site that owns the dataset.") from None
            raise
        return job, dataset

    # ------------------------------------------------------------------ API operations
    def request_validation(self, principal: Principal | None, dataset: str) -> dict[str, Any]:
        """Queue a validation of the draft's current content; return the job's JSON."""
        with self._tx() as session:
            owned = self._owned_dataset(session, dataset, principal, f"validate {dataset!r}")
            draft = self._draft(session, owned.id, lock=True)
            now = utcnow()
            job = self._queue_job(session, draft, now, f"requested by site {principal.site!r}"
                                  if principal else "requested")
            self._audit(session, principal, "validate.request", owned.name, {"job": job.id}, at=now)
            out = self._job_json(job, owned.name)
        self._notify_jobs()
        return out

    def get_job(self, principal: Principal | None, job_id: int) -> dict[str, Any]:
        """Return a job's JSON with its log and report (owner site or curator)."""
        with self._tx() as session:
            job, dataset = self._job_dataset(session, job_id, principal, "see this job")
            return self._job_json(job, dataset.name)

    def list_jobs(self, principal: Principal | None, dataset: str, *,
                  limit: int = 50) -> list[dict[str, Any]]:
        """Return the draft's jobs, newest first (owner site or curator)."""
        with self._tx() as session:
            owned = self._owned_dataset(session, dataset, principal, f"see the jobs of {dataset!r}")
            draft = self._draft(session, owned.id)
            jobs = session.scalars(select(Job).where(Job.version_id == draft.id)
                                   .order_by(Job.id.desc()).limit(max(1, min(int(limit), 1000))))
            return [self._job_json(job, owned.name) for job in jobs]

    def retry_job(self, principal: Principal | None, job_id: int) -> dict[str, Any]:
        """Queue a failed job again (a new attempt on the draft's current content)."""
        with self._tx() as session:
            job, dataset = self._job_dataset(session, job_id, principal, "retry this job")
            draft = self._draft(session, dataset.id, lock=True)
            session.refresh(job)
            if job.state != "failed":
                raise RegistryError(409, "job.not_failed", f"Job {job.id} is {job.state}; only a "
                                    "failed job can be retried.", "Wait for it to finish.")
            newer = self._latest_job(session, draft.id)
            if job.superseded_by is not None or (newer is not None and newer.id != job.id):
                other = job.superseded_by or (newer.id if newer else None)
                raise RegistryError(409, "job.superseded", f"Job {job.id} is not the draft's latest "
                                    f"validation; job {other} is newer.",
                                    f"Look at job {other}, or POST /api/v1/datasets/{dataset.name}"
                                    "/validate for a new one.")
            now = utcnow()
            job.state, job.report, job.finished_at = "queued", None, None
            job.log = (job.log + _line(now, f"retry requested by site {principal.site!r}"
                                       if principal else "retry requested"))[-_LOG_LIMIT:]
            self._audit(session, principal, "job.retry", dataset.name, {"job": job.id}, at=now)
            session.flush()
            out = self._job_json(job, dataset.name)
        self._notify_jobs()
        return out

    # ------------------------------------------------------------------ worker side
    def claim_job(self, worker: str = "worker") -> Claim | None:
        """Claim the oldest queued job and snapshot the draft it validates (None: no job).

        Parameters
        ----------
        worker : str, default="worker"
            Who claims it (written to the log).
        """
        for _attempt in range(100):  # another server may take a candidate first
            with self._tx() as session:
                candidate = session.execute(select(Job.id, Job.version_id).where(
                    Job.state == "queued").order_by(Job.id).limit(1)).first()
                if candidate is None:
                    return None
                draft = session.scalar(select(Version).where(Version.id == candidate.version_id)
                                       .with_for_update())
                dataset = None if draft is None else session.get(Dataset, draft.dataset_id)
                now = utcnow()
                files = [] if draft is None else self._files(session, draft.id)
                digest = manifest_sha256(files)
                claimed = session.execute(
                    update(Job).where(Job.id == candidate.id, Job.state == "queued")
                    .values(state="running", attempts=Job.attempts + 1, started_at=now,
                            finished_at=None, content_sha256=digest,
                            draft_changed_at=None if draft is None else
                            draft.changed_at or draft.created_at,
                            log=Job.log + _line(now, f"started by {worker} on {len(files)} files "
                                                     f"(content {digest[:12]})"))
                    .execution_options(synchronize_session=False))
                if rowcount(claimed) != 1:
                    continue
                attempt = session.scalar(select(Job.attempts).where(Job.id == candidate.id))
                assert dataset is not None and attempt is not None
                claim = Claim(candidate.id, attempt, dataset.name, dataset.kind, files, digest)
                if dataset.protocol:
                    claim = self._with_protocol(session, claim, dataset.protocol)
                return claim
        return None

    def _with_protocol(self, session: Session, claim: Claim, protocol: str) -> Claim:
        name, _, number = protocol.rpartition("@")
        version = session.scalar(select(Version).join(Dataset).where(
            Dataset.name == name, Version.number == (int(number) if number.isdigit() else -1)))
        if version is None or version.state != "published":
            return Claim(**{**claim.__dict__, "protocol": protocol,
                            "problem": f"the protocol version {protocol!r} is not published"})
        return Claim(**{**claim.__dict__, "protocol": protocol,
                        "protocol_files": list(version.manifest or [])})

    def finish_job(self, claim: Claim, state: str, report: dict[str, Any] | None,
                   log: str) -> bool:
        """Store a job's outcome; False if it no longer runs that attempt (requeued meanwhile).

        Parameters
        ----------
        claim : Claim
            From :meth:`claim_job`.
        state : {"passed", "failed"}
            The outcome.
        report : dict or None
            ``Report.to_dict()`` (None if the job crashed before a report).
        log : str
            Lines to append to the job's log.
        """
        assert state in ("passed", "failed"), state
        now = utcnow()
        with self._tx() as session:
            job = session.get(Job, claim.job_id, with_for_update=True)
            if job is None or job.state != "running" or job.attempts != claim.attempt:
                return False
            job.state, job.report, job.finished_at = state, report, now
            job.log = (job.log + log + _line(now, state))[-_LOG_LIMIT:]
        return True

    def requeue_running(self) -> int:
        """Put jobs left ``running`` (by a server that was killed) back in the queue.

        Returns
        -------
        int
            How many jobs were requeued.
        """
        now = utcnow()
        with self._tx() as session:
            result = session.execute(
                update(Job).where(Job.state == "running").values(
                    state="queued", log=Job.log + _line(now, "requeued: the server stopped while "
                                                             "this job ran"))
                .execution_options(synchronize_session=False))
            count = rowcount(result)
        if count:
            self._notify_jobs()
        return count

    def pending_jobs(self) -> int:
        """Return how many jobs are queued or running."""
        with self._tx() as session:
            return len(session.scalars(select(Job.id).where(
                Job.state.in_(("queued", "running")))).all())

