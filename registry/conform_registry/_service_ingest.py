"""Ingest: a published contribution joins its study's catalog and coverage.

When a curator publishes a version of a dataset that contributes to a study, the service
(after the publication committed):

1. reads the trial index of the version's MOSAIC subject files;
2. checks them against the catalog as it is (no subject twice, no stimulus on both sides
   of the split) and refuses the ingest, with the reason, before changing anything;
3. records each subject's presentations of pool images in the study's state
   (:func:`stimulus_design.record_collected`, one compare-and-swap): a subject named as one
   of the participants of the protocol request the dataset was created with counts as that
   participant, any other as ``SITE/sub-XX_CODE`` (data the site directed itself);
4. publishes the next catalog version in one transaction that holds the catalog's draft:
   the subject files (the same blobs, no copy), regenerated side files
   (:mod:`._catalog`) and a :class:`~conform_registry._db.Contribution` row, unique per
   version, so publishing twice never ingests twice.

An ingest that is refused leaves the version published (its data are valid) but outside
the catalog; the answer of the publish request and the audit log say why.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from conform_core.exceptions import ConformError, DataFileError

from ._catalog import (
    CATALOG_FILE,
    SIDE_FILES,
    SPLIT_FILES,
    SubjectTrials,
    merge_catalog,
    read_subjects,
)
from ._db import Contribution, Dataset, ProtocolRequest, Site, Study, StudyDataset, Version, utcnow
from ._service_base import RegistryError
from ._service_study import StudiesMixin

__all__ = ["IngestMixin"]

logger = logging.getLogger("conform_registry.ingest")
_MOSAIC = (".hdf5", ".h5")


class IngestMixin(StudiesMixin):
    """Ingest of published contributions into a study's catalog (see the module)."""

    def _after_publish(self, dataset_id: int, version_id: int) -> dict[str, Any] | None:
        with self._tx() as session:
            study = session.scalar(select(Study.name).join(
                StudyDataset, StudyDataset.study_id == Study.id).where(
                StudyDataset.dataset_id == dataset_id, StudyDataset.role == "contribution"))
        if study is None:
            return None
        try:
            return self.ingest(version_id)
        except (ConformError, OSError) as exc:
            message = exc.message if isinstance(exc, RegistryError) else str(exc)
            logger.warning("ingest of version %s refused: %s", version_id, message)
            with self._tx() as session:
                self._audit(session, None, "study.ingest_refused", study,
                            {"version_id": version_id, "reason": message})
            return {"ingested": False, "study": study, "reason": message}

    def _catalog_dataset(self, session: Session, study_id: int) -> Dataset:
        return session.scalars(select(Dataset).join(
            StudyDataset, StudyDataset.dataset_id == Dataset.id).where(
            StudyDataset.study_id == study_id, StudyDataset.role == "catalog")).one()

    def _catalog_now(self, session: Session, catalog: Dataset
                     ) -> tuple[list[dict[str, Any]], dict[str, Any] | None, dict[str, list[Any]]]:
        """Return the latest catalog version's files, catalog.json and splits (empty at first)."""
        latest = session.scalar(select(Version).where(
            Version.dataset_id == catalog.id, Version.state == "published")
            .order_by(Version.number.desc()).limit(1))
        files = list(latest.manifest or []) if latest is not None else []
        by_path = {f["path"]: f["sha256"] for f in files}

        def load(path: str) -> Any:
            if path not in by_path:
                return None
            with self.store.open(by_path[path]) as handle:
                return json.loads(handle.read())

        splits = {k: load(name) or [] for k, name in SPLIT_FILES.items()}
        return files, load(CATALOG_FILE), splits

    def _labels(self, session: Session, dataset: Dataset,
                subjects: list[SubjectTrials]) -> dict[str, str]:
        """Subject name -> participant label, for subjects of the dataset's protocol request."""
        if dataset.protocol is None:
            return {}
        request = session.scalar(select(ProtocolRequest).join(
            Dataset, Dataset.id == ProtocolRequest.dataset_id).where(
            Dataset.name == dataset.protocol.rpartition("@")[0]))
        if request is None or request.site_id != dataset.site_id:
            return {}
        mine = set(request.participants)
        return {s.name: s.name.split("_")[0] for s in subjects if s.name.split("_")[0] in mine}

    def ingest(self, version_id: int) -> dict[str, Any]:
        """Add a published contribution version to its study's catalog and coverage.

        Returns
        -------
        dict
            ``ingested`` (True), ``study``, ``catalog`` and ``catalog_version``,
            ``subjects`` and the contributors recorded in the study's coverage; with
            ``already`` when the version was ingested before.

        Raises
        ------
        DataFileError
            If the subjects do not fit the catalog (see the module).
        """
        from stimulus_design import record_collected

        from ._validators import validate_files

        with self._tx() as session:
            version = session.get(Version, version_id)
            if version is None or version.state != "published":
                raise RegistryError(404, "version.not_found", f"No published version {version_id}.",
                                    "Ingest a published version.")
            dataset = session.get(Dataset, version.dataset_id)
            study = session.scalars(select(Study).join(
                StudyDataset, StudyDataset.study_id == Study.id).where(
                StudyDataset.dataset_id == dataset.id, StudyDataset.role == "contribution")).one()
            study_name, study_id = study.name, study.id
            site = session.scalar(select(Site.name).where(Site.id == dataset.site_id))
            done = session.scalar(select(Contribution.catalog_version).where(
                Contribution.version_id == version_id))
            if done is not None:
                catalog = self._catalog_dataset(session, study_id).name
                return {"ingested": True, "already": True, "study": study_name, "catalog": catalog,
                        "catalog_version": done}
            mosaic = [f for f in version.manifest or [] if f["path"].lower().endswith(_MOSAIC)]
            ref = {"dataset": dataset.name, "version": version.number, "site": site}
        if not mosaic:
            raise DataFileError(f"{ref['dataset']}@{ref['version']} has no MOSAIC subject files "
                                "(*.hdf5): there is nothing to add to the catalog.")
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ingest-", dir=self.scratch_dir) as tmp:
            folder = Path(tmp)
            paths: dict[str, str] = {}
            for entry in mosaic:
                name = entry["path"].rsplit("/", 1)[-1]
                if name in paths:
                    raise DataFileError(f"{entry['path']} and {paths[name]} have the same file name; "
                                        "the catalog keeps subject files side by side.")
                paths[name] = entry["path"]
                with self.store.open(entry["sha256"]) as source, open(folder / name, "wb") as out:
                    for block in iter(lambda s=source: s.read(1 << 20), b""):
                        out.write(block)
            subjects = read_subjects(folder, paths)
            report = validate_files(folder, kind="mosaic").to_dict()
        state = self.study_state(study_name)
        pool = {name: row for row, name in enumerate(state.ids)}
        core = [state.ids[i] for i in state.core]
        images = self.study_images(study_name)
        with self._tx() as session:
            dataset = session.get(Dataset, session.get(Version, version_id).dataset_id)
            ref["labels"] = self._labels(session, dataset, subjects)
            _, previous, splits = self._catalog_now(session, self._catalog_dataset(session, study_id))
        merge_catalog(previous, splits, subjects, ref, core=core, pool=pool, images=images)  # check
        recorded = self._record(study_name, subjects, ref, pool, record_collected)
        number = self._publish_catalog(version_id, study_id, subjects, mosaic, ref, report,
                                       core=core, pool=pool, images=images)
        return {"ingested": True, "study": study_name, "catalog": f"{study_name}-catalog",
                "catalog_version": number, "subjects": [s.name for s in subjects],
                "recorded": recorded}

    def _record(self, study: str, subjects: list[SubjectTrials], ref: dict[str, Any],
                pool: dict[str, int], record_collected: Any) -> list[str]:
        """Record each subject's presentations of pool images in the study's state."""
        from ._catalog import pool_id

        recorded: list[str] = []

        def apply(state: Any) -> Any:
            recorded.clear()
            for subject in subjects:
                who = ref["labels"].get(subject.name) or f"{ref['site']}/{subject.name}"
                counts: dict[str, int] = {}
                for stimulus in subject.stimuli:
                    name = pool_id(stimulus, pool)
                    if name is not None:
                        counts[name] = counts.get(name, 0) + 1
                if counts and who not in state.contributions:
                    state = record_collected(state, who, counts)
                    recorded.append(who)
            return state

        self.change_study(study, apply)
        return list(recorded)

    def _publish_catalog(self, version_id: int, study_id: int, subjects: list[SubjectTrials],
                         mosaic: list[dict[str, Any]], ref: dict[str, Any],
                         report: dict[str, Any], **context: Any) -> int:
        by_path = {f["path"]: f for f in mosaic}
        try:
            with self._tx() as session:
                catalog = self._catalog_dataset(session, study_id)
                self._draft(session, catalog.id, lock=True)  # one catalog change at a time
                files, previous, splits = self._catalog_now(session, catalog)
                _, side = merge_catalog(previous, splits, subjects, ref, **context)
                kept = [f for f in files if f["path"] not in SIDE_FILES]
                for subject in subjects:
                    entry = by_path[subject.path]
                    kept.append({"path": subject.path.rsplit("/", 1)[-1], "size": entry["size"],
                                 "sha256": entry["sha256"]})
                for name, data in side.items():
                    kept.append({"path": name, "size": len(data),
                                 "sha256": self._put_blob(session, data)})
                kept.sort(key=lambda f: f["path"])
                now = utcnow()
                log = (f"{now.isoformat()} catalog of {ref['dataset']}@{ref['version']}: the "
                       f"{len(subjects)} new subject file(s) checked here (the earlier ones when "
                       "they joined); side files made by the registry\n")
                version = self._publish_made(session, catalog, kept, report, None, log)
                session.add(Contribution(study_id=study_id, version_id=version_id,
                                         subjects=[s.name for s in subjects],
                                         catalog_version=version.number, created_at=now))
                self._audit(session, None, "study.ingest", catalog.name,
                            {"version_id": version_id, "catalog_version": version.number,
                             "subjects": [s.name for s in subjects]}, at=now)
                session.flush()
                assert version.number is not None
                return version.number
        except IntegrityError:  # ingested by a concurrent publish of the same version
            with self._tx() as session:
                return int(session.scalar(select(func.max(Contribution.catalog_version)).where(
                    Contribution.version_id == version_id)) or 0)
