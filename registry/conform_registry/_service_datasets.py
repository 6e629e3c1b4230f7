"""Datasets, versions, files and publishing.

A dataset belongs to one site and has one mutable draft and numbered published versions.
Everybody may read published versions; only the owner site (or a curator) sees the draft.
Publishing (curators only) is refused with 409 and the reason unless the draft has files,
no validation job is queued or running, and the draft's latest job passed on exactly the
draft's current content (its ``content_sha256``). It writes the frozen manifest (sorted by
path) and its sha256 (:func:`~conform_registry._service_base.manifest_sha256`) and leaves
the draft as it is, for further edits.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ._auth import Principal
from ._db import DATASET_KINDS, DATASET_NAME, Asset, Dataset, Job, Version, utcnow
from ._db.models import MAX_NAME
from ._service_base import RegistryError, check_path, iso, manifest_sha256
from ._service_jobs import JobsMixin

__all__ = ["DatasetsMixin", "FileRef"]


@dataclass(frozen=True)
class FileRef:
    """A file of a version, as the download route needs it.

    Parameters
    ----------
    path : str
        Its path in the dataset.
    size : int
        Its size in bytes.
    sha256 : str
        Its sha256, also the name of its blob.
    """

    path: str
    size: int
    sha256: str


class DatasetsMixin(JobsMixin):
    """Dataset, version and publishing operations of :class:`~conform_registry.RegistryService`."""

    # ------------------------------------------------------------------ datasets
    def _check_new_dataset(self, name: object, kind: object) -> tuple[str, str | None]:
        if not isinstance(name, str) or len(name) > MAX_NAME or not DATASET_NAME.match(name):
            raise RegistryError(422, "dataset.bad_name", f"Dataset name {name!r} is not allowed: use "
                                "lower-case letters, digits, '_', '.' or '-', starting with a "
                                f"letter or digit, at most {MAX_NAME} characters.",
                                "For example 'cam-mosaic-2025'.")
        if kind is not None and kind not in DATASET_KINDS:
            close = difflib.get_close_matches(str(kind), DATASET_KINDS, n=1)
            raise RegistryError(422, "dataset.bad_kind", f"Dataset kind {kind!r} is not one of "
                                f"{', '.join(DATASET_KINDS)}.",
                                f"Did you mean {close[0]!r}?" if close else
                                "Leave kind out (null) to let the validator detect it.")
        return name, kind if isinstance(kind, str) else None

    def _resolve_protocol(self, session: Session, protocol: object) -> str | None:
        if protocol is None:
            return None
        fix = "Give NAME@VERSION of a published protocol dataset, e.g. 'site-protocol@1'."
        name, _, number = str(protocol).rpartition("@") if isinstance(protocol, str) else ("", "", "")
        if not name or not (number.isdigit() or number == "latest"):
            raise RegistryError(422, "dataset.bad_protocol", f"protocol {protocol!r} is not of the "
                                "form NAME@VERSION.", fix)
        dataset = session.scalar(select(Dataset).where(Dataset.name == name))
        query = select(Version.number).where(Version.dataset_id == (dataset.id if dataset else -1),
                                             Version.state == "published")
        if number != "latest":
            query = query.where(Version.number == int(number))
        found = session.scalar(query.order_by(Version.number.desc()).limit(1))
        if dataset is None or found is None:
            raise RegistryError(422, "dataset.bad_protocol", f"protocol {protocol!r} names no "
                                "published version.", fix)
        if dataset.kind not in (None, "protocol"):
            raise RegistryError(422, "dataset.bad_protocol", f"protocol {protocol!r} is a "
                                f"{dataset.kind} dataset, not a protocol package.", fix)
        return f"{name}@{found}"

    def create_dataset(self, principal: Principal | None, name: str, kind: str | None = None,
                       protocol: str | None = None, study: str | None = None) -> dict[str, Any]:
        """Create a dataset of the caller's site, with an empty draft; return its JSON.

        ``protocol`` (``NAME@VERSION`` of a published protocol package) has the draft's
        events checked against it; ``study`` makes the dataset a contribution to that
        study: its published versions are ingested into the study's catalog.
        """
        name, kind = self._check_new_dataset(name, kind)
        if principal is None:
            raise RegistryError(401, "auth.required", "A token is needed to create a dataset.",
                                "Send 'Authorization: Bearer <token>'.")
        try:
            with self._tx() as session:
                if session.scalar(select(Dataset.id).where(Dataset.name == name)) is not None:
                    raise self._exists(name)
                resolved = self._resolve_protocol(session, protocol)
                now = utcnow()
                dataset = Dataset(name=name, site_id=self._site_id(session, principal), kind=kind,
                                  protocol=resolved, created_at=now)
                session.add(dataset)
                session.flush()
                session.add(Version(dataset_id=dataset.id, number=None, state="draft", created_at=now))
                if study is not None:
                    self._link_contribution(session, dataset, study, resolved)
                self._audit(session, principal, "dataset.create", name,
                            {"kind": kind, "protocol": resolved, "study": study}, at=now)
                session.flush()
                return self._dataset_json(session, dataset, principal)
        except IntegrityError:  # created by a concurrent request
            raise self._exists(name) from None

    def _link_contribution(self, session: Session, dataset: Dataset, study: str,
                           protocol: str | None) -> None:
        """Make ``dataset`` a contribution to ``study`` (the study loop overrides this)."""
        raise RegistryError(422, "study.not_found", f"There is no study {study!r}.",
                            "Leave study out, or check the name with `conform registry study list`.")

    def _study_of(self, session: Session, dataset: Dataset) -> str | None:
        """Return the study the dataset belongs to, if any (the study loop overrides this)."""
        return None

    @staticmethod
    def _exists(name: str) -> RegistryError:
        return RegistryError(409, "dataset.exists", f"Dataset {name!r} exists already.",
                             "Choose another name, or upload into it.")

    def _dataset_json(self, session: Session, dataset: Dataset,
                      principal: Principal | None) -> dict[str, Any]:
        numbers = session.scalars(select(Version.number).where(
            Version.dataset_id == dataset.id, Version.state == "published")
            .order_by(Version.number)).all()
        out: dict[str, Any] = {"name": dataset.name, "site": dataset.site.name, "kind": dataset.kind,
                               "protocol": dataset.protocol, "created_at": iso(dataset.created_at),
                               "versions": list(numbers), "latest": numbers[-1] if numbers else None,
                               "study": self._study_of(session, dataset)}
        if self._owns(principal, dataset):
            draft = self._draft(session, dataset.id)
            count, total = session.execute(select(func.count(Asset.id), func.sum(Asset.size))
                                           .where(Asset.version_id == draft.id)).one()
            job = self._latest_job(session, draft.id)
            out["draft"] = {"files": int(count), "bytes": int(total or 0),
                            "changed_at": iso(draft.changed_at or draft.created_at),
                            "validation": None if job is None else
                            self._job_json(job, dataset.name, full=False)}
        return out

    def list_datasets(self, principal: Principal | None) -> list[dict[str, Any]]:
        """Return the datasets the caller may see, by name."""
        with self._tx() as session:
            published = select(Version.dataset_id).where(Version.state == "published")
            query = select(Dataset).order_by(Dataset.name)
            if principal is None:
                query = query.where(Dataset.id.in_(published))
            elif not principal.is_curator:
                own = self._site_id(session, principal)
                query = query.where(Dataset.id.in_(published) | (Dataset.site_id == own))
            return [self._dataset_json(session, d, principal) for d in session.scalars(query)]

    def get_dataset(self, principal: Principal | None, name: str) -> dict[str, Any]:
        """Return a dataset's JSON (with ``draft`` for its site and curators)."""
        with self._tx() as session:
            return self._dataset_json(session, self._dataset(session, name, principal), principal)

    # ------------------------------------------------------------------ versions and files
    def _version(self, session: Session, name: str, ver: str | int,
                 principal: Principal | None) -> tuple[Dataset, Version]:
        text = str(ver)
        if text == "draft":
            dataset = self._owned_dataset(session, name, principal, f"read the draft of {name!r}")
            return dataset, self._draft(session, dataset.id)
        dataset = self._dataset(session, name, principal)
        if not (text == "latest" or (text.isdigit() and int(text) >= 1)):
            raise RegistryError(422, "version.invalid", f"Version {text!r} is not 'draft', 'latest' "
                                "or a number from 1.", "For example .../versions/1.")
        query = select(Version).where(Version.dataset_id == dataset.id, Version.state == "published")
        if text != "latest":
            query = query.where(Version.number == int(text))
        version = session.scalar(query.order_by(Version.number.desc()).limit(1))
        if version is None:
            raise RegistryError(404, "version.not_found", f"Dataset {name!r} has no published version "
                                f"{text!r}.", "See its versions with GET /api/v1/datasets/NAME.")
        return dataset, version

    def get_version(self, principal: Principal | None, name: str, ver: str | int, *,
                    report: bool = False) -> dict[str, Any]:
        """Return a version's JSON: files, manifest sha256 and its validation job summary.

        ``report=True`` adds the job's log and report to ``validation``: for a published
        version that is the passed validation of exactly its content, readable by anyone
        who can read the version (the web page shows it).
        """
        with self._tx() as session:
            dataset, version = self._version(session, name, ver, principal)
            if version.state == "draft":
                files = self._files(session, version.id)
                job = self._latest_job(session, version.id)
                digest = manifest_sha256(files)
            else:
                files = list(version.manifest or [])
                digest = version.manifest_sha256 or manifest_sha256(files)
                draft = self._draft(session, dataset.id)
                job = session.scalar(select(Job).where(
                    Job.version_id == draft.id, Job.state == "passed", Job.content_sha256 == digest)
                    .order_by(Job.id.desc()).limit(1))
            return {"dataset": dataset.name,
                    "version": "draft" if version.number is None else version.number,
                    "state": version.state, "files": files, "manifest_sha256": digest,
                    "published_at": iso(version.published_at),
                    "changed_at": iso(version.changed_at or version.created_at),
                    "validation": None if job is None else self._job_json(job, dataset.name,
                                                                          full=report)}

    def file_ref(self, principal: Principal | None, name: str, ver: str | int, path: str) -> FileRef:
        """Return the file at ``path`` of a version (to stream its blob)."""
        path = check_path(path)
        with self._tx() as session:
            _, version = self._version(session, name, ver, principal)
            row = session.execute(select(Asset.size, Asset.blob_sha256).where(
                Asset.version_id == version.id, Asset.path == path)).first()
        if row is None:
            raise RegistryError(404, "file.not_found", f"Version {ver} of {name!r} has no file {path!r}.",
                                "List its files with GET /api/v1/datasets/NAME/versions/VER.")
        return FileRef(path, int(row.size), row.blob_sha256)

    def delete_file(self, principal: Principal | None, name: str, path: str) -> None:
        """Remove a file from the draft (its blob stays: published versions may use it)."""
        path = check_path(path)
        with self._tx() as session:
            dataset = self._owned_dataset(session, name, principal, f"change the draft of {name!r}")
            draft = self._draft(session, dataset.id, lock=True)
            asset = session.scalar(select(Asset).where(Asset.version_id == draft.id, Asset.path == path))
            if asset is None:
                raise RegistryError(404, "file.not_found", f"The draft of {name!r} has no file {path!r}.",
                                    "List the draft's files with GET .../versions/draft.")
            now = utcnow()
            session.delete(asset)
            draft.changed_at = now
            job = self._queue_job(session, draft, now, f"deletion of {path!r}")
            self._audit(session, principal, "file.delete", dataset.name,
                        {"path": path, "sha256": asset.blob_sha256, "job": job.id}, at=now)
        self._notify_jobs()

    # ------------------------------------------------------------------ publishing
    def publish(self, principal: Principal | None, name: str) -> dict[str, Any]:
        """Freeze the draft's current content as the next version (curators only)."""
        if principal is None:
            raise RegistryError(401, "auth.required", "A curator's token is needed to publish.",
                                "Send 'Authorization: Bearer <token>'.")
        if not principal.is_curator:
            raise RegistryError(403, "auth.forbidden", f"Only a curator may publish; this token of "
                                f"site {principal.site!r} is a {principal.role}.",
                                "Ask a curator to review and publish the dataset.")
        with self._tx() as session:
            dataset = self._dataset(session, name, principal)
            draft = self._draft(session, dataset.id, lock=True)
            files = self._files(session, draft.id)
            digest = manifest_sha256(files)
            self._check_publishable(session, dataset, draft, files, digest)
            version = self._freeze(session, dataset, draft, files, principal, utcnow())
        assert version.number is not None
        followed = self._after_publish(dataset.id, version.id)
        out = self.get_version(principal, name, version.number)
        if followed is not None:
            out["ingest"] = followed
        return out

    def _after_publish(self, dataset_id: int, version_id: int) -> dict[str, Any] | None:
        """Run what follows a publication; its outcome joins the answer (study ingest)."""
        return None

    def _freeze(self, session: Session, dataset: Dataset, draft: Version,
                files: list[dict[str, Any]], principal: Principal | None,
                now: datetime) -> Version:
        """Add the next published version with ``files`` (the draft's) and its audit row."""
        digest = manifest_sha256(files)
        last = session.scalar(select(func.max(Version.number)).where(
            Version.dataset_id == dataset.id))
        version = Version(dataset_id=dataset.id, number=(last or 0) + 1, state="published",
                          manifest=files, manifest_sha256=digest, created_at=now,
                          published_at=now,
                          published_by=None if principal is None else principal.token_id,
                          changed_at=draft.changed_at)
        session.add(version)
        session.flush()
        session.add_all(Asset(version_id=version.id, path=f["path"], blob_sha256=f["sha256"],
                              size=f["size"]) for f in files)
        self._audit(session, principal, "publish", dataset.name,
                    {"version": version.number, "manifest_sha256": digest, "files": len(files)},
                    at=now)
        return version

    def _publish_made(self, session: Session, dataset: Dataset, files: list[dict[str, Any]],
                      report: dict[str, Any], principal: Principal | None, log: str) -> Version:
        """Publish files the server made itself (a protocol package, a study's catalog).

        They become the draft's content, with the validation job that ran on them here
        (``report``, from the same validator), then the next version: the version pages
        show that validation as for uploaded data. Refused (409) if the report has errors.
        """
        now = utcnow()
        draft = self._draft(session, dataset.id, lock=True)
        session.execute(delete(Asset).where(Asset.version_id == draft.id))
        session.add_all(Asset(version_id=draft.id, path=f["path"], blob_sha256=f["sha256"],
                              size=f["size"]) for f in files)
        draft.changed_at = now
        state = "failed" if report.get("errors") else "passed"
        session.add(Job(kind="validate", version_id=draft.id, state=state, attempts=1, log=log,
                        report=report, created_at=now, started_at=now, finished_at=now,
                        content_sha256=manifest_sha256(files), draft_changed_at=now))
        session.flush()
        if state == "failed":
            first = report["errors"][0]
            raise RegistryError(409, "publish.validation_failed",
                                f"The files the registry made for {dataset.name!r} failed its own "
                                f"validation: {first.get('path')}: {first.get('message')}",
                                "This is a bug of the registry: please report it.")
        return self._freeze(session, dataset, draft, files, principal, now)

    def _check_publishable(self, session: Session, dataset: Dataset, draft: Version,
                           files: list[dict[str, Any]], digest: str) -> None:
        name = dataset.name
        if not files:
            raise RegistryError(409, "publish.empty", f"The draft of {name!r} has no files.",
                                "Upload the files first.")
        pending = session.scalar(select(Job.id).where(Job.version_id == draft.id,
                                                      Job.state.in_(("queued", "running")))
                                 .order_by(Job.id.desc()).limit(1))
        if pending is not None:
            raise RegistryError(409, "publish.validation_pending", f"Validation job {pending} of "
                                f"{name!r} has not finished.", "Wait for it, then publish.")
        job = self._latest_job(session, draft.id)
        if job is None or job.content_sha256 != digest:
            raise RegistryError(409, "publish.not_validated", f"No validation ran on the current "
                                f"content of {name!r}.",
                                f"POST /api/v1/datasets/{name}/validate, wait for it to pass, then "
                                "publish.")
        if job.state != "passed":
            errors = len((job.report or {}).get("errors", [])) if isinstance(job.report, dict) else 0
            why = f"found {errors} errors" if errors else "crashed (see its log)"
            raise RegistryError(409, "publish.validation_failed", f"Validation job {job.id} of "
                                f"{name!r} failed: it {why}.",
                                f"Fix the files as GET /api/v1/jobs/{job.id} says (or retry it), "
                                "then publish.")
        latest = session.scalar(select(Version).where(Version.dataset_id == dataset.id,
                                                      Version.state == "published")
                                .order_by(Version.number.desc()).limit(1))
        if latest is not None and latest.manifest_sha256 == digest:
            raise RegistryError(409, "publish.unchanged", f"The draft of {name!r} is the same as "
                                f"version {latest.number}.", "Change the draft before publishing again.")
