"""Studies: a design pool, protocol requests allocated from it, and its coverage.

A study keeps the :class:`stimulus_design.StudyState` as JSON in its row, with the state's
``revision`` beside it. Every change is one compare-and-swap
(``UPDATE study ... WHERE id = :id AND revision = :seen``): a request computes its
allocation from the state it read, and commits only if nobody committed in between; else
it reads the new state and computes again (:func:`stimulus_design.allocate_more` is
deterministic for a state and seed). Two sites asking at once therefore never get the same
slot, on SQLite or PostgreSQL, with no lock held while the allocation is computed.

A protocol request then writes the package (:func:`stimulus_design.write_protocol`), checks
it with the registry's validator and publishes it as version 1 of the dataset
``<study>-protocol-<number>`` of the requesting site; a site uploads its data into a
dataset created with ``protocol="<study>-protocol-<number>@1"`` so its events are checked
against what it was given. If the package cannot be written, the allocation is released.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from conform_core.exceptions import ConformError

from ._auth import Principal
from ._db import Blob, Dataset, ProtocolRequest, Site, Study, StudyDataset, Version, utcnow
from ._db.models import check_name
from ._service_base import RegistryError, iso, rowcount
from ._service_datasets import DatasetsMixin

__all__ = ["StudiesMixin"]

_RETRIES = 50
"""Compare-and-swap attempts before a request gives up (each lost race means another
request committed, so 50 in a row would need 50 concurrent requests)."""
MAX_PARTICIPANTS = 100
"""Participants one protocol request may ask for."""


def _site_label(site: str) -> str:
    """Return the site's name as a BIDS label (``site-<label>`` folders): letters and digits."""
    return re.sub(r"[^A-Za-z0-9]", "", site) or "site"


def _npy_bytes(array: NDArray[np.floating]) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


class StudiesMixin(DatasetsMixin):
    """Study, protocol request and coverage operations of :class:`~conform_registry.RegistryService`."""

    _embeddings_cache: dict[str, NDArray[np.floating]]
    _cache_lock: threading.Lock

    # ------------------------------------------------------------------ helpers
    def _study(self, session: Session, name: str) -> Study:
        study = session.scalar(select(Study).where(Study.name == str(name)))
        if study is None:
            raise RegistryError(404, "study.not_found", f"There is no study {name!r}.",
                                "List the studies with `conform registry study list`.")
        return study

    def _put_blob(self, session: Session, data: bytes) -> str:
        sha, size = self.store.put_stream(data)
        session.execute(self._insert(session, Blob.__table__).values(
            sha256=sha, size=size, created_at=utcnow()).on_conflict_do_nothing())
        return sha

    def study_embeddings(self, name: str) -> NDArray[np.floating]:
        """Return a study's pool embeddings, as given at creation (cached per content)."""
        with self._tx() as session:
            sha = self._study(session, name).embeddings_sha256
        if not hasattr(self, "_embeddings_cache"):
            self._embeddings_cache, self._cache_lock = {}, threading.Lock()
        with self._cache_lock:
            if sha not in self._embeddings_cache:
                with self.store.open(sha) as handle:
                    self._embeddings_cache[sha] = np.load(io.BytesIO(handle.read()),
                                                          allow_pickle=False)
            return self._embeddings_cache[sha]

    def study_state(self, name: str) -> Any:
        """Return a study's :class:`stimulus_design.StudyState` as it is now."""
        from stimulus_design import StudyState

        with self._tx() as session:
            return StudyState.from_json(self._study(session, name).state)

    def study_images(self, name: str) -> list[dict[str, str]] | None:
        """Return the study's images by reference (``source``, ``sha256`` per pool row), if given."""
        with self._tx() as session:
            sha = self._study(session, name).images_sha256
        if sha is None:
            return None
        with self.store.open(sha) as handle:
            return json.loads(handle.read())

    def change_study(self, name: str, change: Callable[[Any], Any],
                     then: Callable[[Session, Study, Any], None] | None = None) -> Any:
        """Apply ``change(state) -> new state`` as one compare-and-swap, retried on a race.

        ``then(session, study, new_state)`` runs in the same transaction after the swap
        (rows that must commit with the state, such as a protocol request). Returns the new
        state. :class:`stimulus_design.AllocationConflictError` from ``change`` also retries.
        """
        from stimulus_design import AllocationConflictError, StudyState

        for attempt in range(_RETRIES):
            with self._tx() as session:
                study = self._study(session, name)
                seen, text = study.revision, study.state
            try:
                new = change(StudyState.from_json(text))
            except AllocationConflictError:
                time.sleep(0.001 * attempt)
                continue
            try:
                with self._tx() as session:
                    study = self._study(session, name)
                    swapped = rowcount(session.execute(
                        update(Study).where(Study.id == study.id, Study.revision == seen)
                        .values(state=new.to_json(), revision=new.revision, updated_at=utcnow())
                        .execution_options(synchronize_session=False)))
                    if swapped and then is not None:  # else nothing changed: commit no-op
                        then(session, study, new)
            except IntegrityError:  # a concurrent request took the same request number
                swapped = 0
            if swapped:
                return new
            time.sleep(0.001 * attempt)
        raise RegistryError(503, "study.busy", f"Study {name!r} changed {_RETRIES} times while "
                            "this request was computed.", "Retry in a moment.")

    def _link_contribution(self, session: Session, dataset: Dataset, study: str,
                           protocol: str | None) -> None:
        row = self._study(session, study)
        if protocol is not None:
            name = protocol.rpartition("@")[0]
            linked = session.scalar(select(StudyDataset.study_id).join(
                Dataset, Dataset.id == StudyDataset.dataset_id).where(
                Dataset.name == name, StudyDataset.role == "protocol"))
            if linked != row.id:
                raise RegistryError(422, "dataset.bad_protocol", f"protocol {protocol!r} is not a "
                                    f"protocol package of study {study!r}.",
                                    f"Give the package `conform registry protocol request {study}` "
                                    "gave your site (STUDY-protocol-N@1), or leave protocol out "
                                    "for data your site directed itself.")
        session.add(StudyDataset(dataset_id=dataset.id, study_id=row.id, role="contribution"))

    def _study_of(self, session: Session, dataset: Dataset) -> str | None:
        return session.scalar(select(Study.name).join(
            StudyDataset, StudyDataset.study_id == Study.id).where(
            StudyDataset.dataset_id == dataset.id))

    # ------------------------------------------------------------------ create, read
    def create_study(self, principal: Principal | None, name: str, *,
                     embeddings: NDArray[np.floating], ids: Sequence[str],
                     params: Mapping[str, Any], images: Sequence[Mapping[str, str]] | None = None,
                     description: str = "") -> dict[str, Any]:
        """Create a study over a pool (curators only), with its empty catalog dataset.

        Parameters
        ----------
        principal : Principal or None
            The caller: a curator.
        name : str
            The study's name (as a dataset name); its catalog is ``<name>-catalog``.
        embeddings : ndarray of shape (n_pool, n_features)
            The pool's image embeddings (e.g. CLIP), one row per id.
        ids : sequence of str
            Unique stimulus id per row.
        params : mapping
            :class:`stimulus_design.DesignParams` fields (core, overlap, repeats, sessions,
            runs, timing, seed, ...).
        images : sequence of mapping or None, default=None
            Per pool row, ``{"source": path or URL, "sha256": ...}``: the images by reference.
        description : str, default=""
            Shown on the study's page.

        Returns
        -------
        dict
            The study (:meth:`get_study`).
        """
        from stimulus_design import DesignParams, create_study

        if principal is None or not principal.is_curator:
            raise RegistryError(401 if principal is None else 403, "auth.forbidden",
                                "Only a curator may create a study.",
                                "Use a curator's token (conform registry token create --role curator).")
        try:
            check_name(name, "study", "conform-vision-1")
            design = DesignParams(**dict(params))
            state = create_study(list(ids), np.asarray(embeddings), design)
        except TypeError as exc:
            raise RegistryError(422, "study.bad_params", f"Bad design parameters: {exc}.",
                                "Use the option names of `conform design`.") from None
        except ConformError as exc:
            raise RegistryError(422, "study.invalid", str(exc),
                                "Fix the input as the message says.") from None
        x = np.asarray(embeddings)  # kept as given: the state holds the sha256 of its normalised form
        if images is not None and len(images) != len(ids):
            raise RegistryError(422, "study.bad_images", f"{len(images)} image references for "
                                f"{len(ids)} ids.", "Give one {source, sha256} per pool row.")
        catalog = f"{name}-catalog"
        try:
            with self._tx() as session:
                if session.scalar(select(Study.id).where(Study.name == name)) is not None:
                    raise RegistryError(409, "study.exists", f"Study {name!r} exists already.",
                                        "Choose another name.")
                if session.scalar(select(Dataset.id).where(Dataset.name == catalog)) is not None:
                    raise RegistryError(409, "dataset.exists", f"Dataset {catalog!r} (the study's "
                                        "catalog) exists already.", "Choose another study name.")
                now = utcnow()
                site_id = self._site_id(session, principal)
                study = Study(name=name, site_id=site_id, state=state.to_json(),
                              revision=state.revision, description=str(description),
                              embeddings_sha256=self._put_blob(session, _npy_bytes(x)),
                              images_sha256=None if images is None else self._put_blob(
                                  session, json.dumps([dict(i) for i in images]).encode()),
                              created_at=now, updated_at=now)
                session.add(study)
                dataset = Dataset(name=catalog, site_id=site_id, kind="mosaic", created_at=now)
                session.add(dataset)
                session.flush()
                session.add(Version(dataset_id=dataset.id, number=None, state="draft", created_at=now))
                session.add(StudyDataset(dataset_id=dataset.id, study_id=study.id, role="catalog"))
                self._audit(session, principal, "study.create", name,
                            {"n_pool": state.n_pool, "catalog": catalog}, at=now)
        except IntegrityError:
            raise RegistryError(409, "study.exists", f"Study {name!r} exists already.",
                                "Choose another name.") from None
        return self.get_study(principal, name)

    def _study_json(self, session: Session, study: Study, *, full: bool) -> dict[str, Any]:
        from stimulus_design import StudyState

        state = StudyState.from_json(study.state)
        status = [p.status for p in state.participants]
        linked = session.execute(select(Dataset.name, StudyDataset.role).join(
            StudyDataset, StudyDataset.dataset_id == Dataset.id).where(
            StudyDataset.study_id == study.id).order_by(Dataset.name)).all()
        catalog = next((n for n, role in linked if role == "catalog"), None)
        latest = None if catalog is None else session.scalar(
            select(func.max(Version.number)).join(Dataset, Dataset.id == Version.dataset_id)
            .where(Dataset.name == catalog, Version.state == "published"))
        out: dict[str, Any] = {
            "name": study.name, "description": study.description, "n_pool": state.n_pool,
            "revision": study.revision, "created_at": iso(study.created_at),
            "updated_at": iso(study.updated_at),
            "participants": {k: status.count(k) for k in ("allocated", "collected", "released")},
            "contributions": len(state.contributions), "catalog": catalog,
            "catalog_version": latest,
            "requests": session.scalar(select(func.count(ProtocolRequest.id)).where(
                ProtocolRequest.study_id == study.id)) or 0,
        }
        if full:
            out["params"] = state.params.to_dict()
            out["core"] = [state.ids[i] for i in state.core]
            out["datasets"] = [{"name": n, "role": role} for n, role in linked]
            out["requests_list"] = self._requests_json(session, study)
        return out

    def _requests_json(self, session: Session, study: Study) -> list[dict[str, Any]]:
        rows = session.execute(select(ProtocolRequest, Site.name, Dataset.name)
                               .join(Site, Site.id == ProtocolRequest.site_id)
                               .outerjoin(Dataset, Dataset.id == ProtocolRequest.dataset_id)
                               .where(ProtocolRequest.study_id == study.id)
                               .order_by(ProtocolRequest.number)).all()
        return [{"request": r.number, "site": site, "n_participants": r.n_participants,
                 "session_minutes": r.session_minutes, "participants": list(r.participants),
                 "dataset": dataset, "created_at": iso(r.created_at)} for r, site, dataset in rows]

    def list_studies(self, principal: Principal | None = None) -> list[dict[str, Any]]:
        """Return every study's summary (public), by name."""
        with self._tx() as session:
            return [self._study_json(session, s, full=False)
                    for s in session.scalars(select(Study).order_by(Study.name))]

    def get_study(self, principal: Principal | None, name: str) -> dict[str, Any]:
        """Return a study: summary, design parameters, core, datasets and protocol requests."""
        with self._tx() as session:
            return self._study_json(session, self._study(session, name), full=True)

    def study_coverage(self, principal: Principal | None, name: str, *,
                       table: bool = True) -> dict[str, Any]:
        """Return the coverage of the pool by the allocated and by the collected images.

        Each part is :func:`stimulus_design.coverage_of` (covering radius, distance
        quantiles, images by participants and by presentations); ``table=False`` drops the
        per-(participants, presentations) table.
        """
        from stimulus_design import coverage_of

        state, x = self.study_state(name), self.study_embeddings(name)
        out = {"study": name, "n_pool": state.n_pool, "revision": state.revision}
        for which in ("allocated", "collected"):
            part = coverage_of(state, x, which)
            if not table:
                part.pop("table", None)
            out[which] = part
        return out

    # ------------------------------------------------------------------ protocol requests
    def request_protocol(self, principal: Principal | None, study: str, *, n_participants: int,
                         session_minutes: float) -> dict[str, Any]:
        """Allocate new participants of the caller's site and publish their protocol package.

        Parameters
        ----------
        principal : Principal or None
            The caller (any token); the participants belong to its site.
        study : str
            The study's name.
        n_participants : int
            New participants, 1 to :data:`MAX_PARTICIPANTS`.
        session_minutes : float
            Scanning time the site offers per session; it decides how many images each
            participant sees (:func:`stimulus_design.session_budget`).

        Returns
        -------
        dict
            ``study``, ``request`` (its number), ``site``, ``participants`` (labels),
            ``dataset`` and ``version`` (the published package: pull it), ``files``,
            ``seconds`` (time spent).
        """
        from stimulus_design import allocate_more

        if principal is None:
            raise RegistryError(401, "auth.required", "A token is needed to request a protocol.",
                                "Send 'Authorization: Bearer <token>' (set $CONFORM_REGISTRY_TOKEN).")
        if isinstance(n_participants, bool) or not isinstance(n_participants, int) or \
                not 1 <= n_participants <= MAX_PARTICIPANTS:
            raise RegistryError(422, "request.bad_participants", f"participants={n_participants!r} "
                                f"is not an integer from 1 to {MAX_PARTICIPANTS}.",
                                "Ask for the participants you will scan, e.g. 4.")
        if isinstance(session_minutes, bool) or not isinstance(session_minutes, (int, float)) or \
                not 0 < session_minutes <= 600:
            raise RegistryError(422, "request.bad_minutes", f"session_minutes={session_minutes!r} is "
                                "not a number of minutes in (0, 600].",
                                "Give the scanning time per session you can offer, e.g. 60.")
        started = time.perf_counter()
        x = self.study_embeddings(study)
        site = _site_label(principal.site)
        made: dict[str, Any] = {}

        def allocate(state: Any) -> Any:
            seed = state.params.seed * 1_000_003 + state.revision
            try:
                people, new = allocate_more(state, x, n_participants, float(session_minutes),
                                            site=site, seed=seed)
            except ConformError as exc:
                if type(exc).__name__ == "AllocationConflictError":
                    raise
                raise RegistryError(422, "request.invalid", str(exc),
                                    "Change the request as the message says.") from None
            made["people"] = people
            return new

        def record(session: Session, row: Study, new: Any) -> None:
            people = made["people"]
            session.add(ProtocolRequest(
                study_id=row.id, number=people[0].request, site_id=self._site_id(session, principal),
                token_id=principal.token_id, n_participants=len(people),
                session_minutes=float(session_minutes), participants=[p.label for p in people],
                created_at=utcnow()))
            self._audit(session, principal, "study.request", study,
                        {"request": people[0].request, "participants": [p.label for p in people]})

        state = self.change_study(study, allocate, record)
        people = made["people"]
        number = people[0].request
        try:
            name, version, files = self._publish_package(principal, study, state, people, x, number)
        except BaseException:
            self._release(study, [p.label for p in people])
            raise
        return {"study": study, "request": number, "site": principal.site,
                "participants": [p.label for p in people], "dataset": name, "version": version,
                "files": files, "seconds": round(time.perf_counter() - started, 3)}

    def _release(self, study: str, labels: list[str]) -> None:
        """Give back an allocation whose package could not be published."""
        from stimulus_design import release_participants

        try:
            self.change_study(study, lambda s: release_participants(s, labels))
        except Exception:  # noqa: BLE001 - reported by the caller's own error
            pass

    def _publish_package(self, principal: Principal, study: str, state: Any, people: Any,
                         x: NDArray[np.floating], number: int
                         ) -> tuple[str, int, list[dict[str, Any]]]:
        from stimulus_design import write_protocol

        from ._validators import validate_files

        images = self.study_images(study)
        name = f"{study}-protocol-{number}"
        self.scratch_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="protocol-", dir=self.scratch_dir) as tmp:
            package = Path(tmp) / "package"
            write_protocol(state, people, package, embeddings=x,
                           sources=None if images is None else [i.get("source", "") for i in images],
                           sha256=None if images is None else [i.get("sha256", "n/a") for i in images])
            report = validate_files(package, kind="protocol")
            with self._tx() as session:
                files = []
                for path in sorted(p for p in package.rglob("*") if p.is_file()):
                    sha = self._put_blob(session, path.read_bytes())
                    files.append({"path": path.relative_to(package).as_posix(),
                                  "size": path.stat().st_size, "sha256": sha})
                row = self._study(session, study)
                now = utcnow()
                dataset = Dataset(name=name, site_id=self._site_id(session, principal),
                                  kind="protocol", created_at=now)
                session.add(dataset)
                session.flush()
                session.add(Version(dataset_id=dataset.id, number=None, state="draft", created_at=now))
                session.add(StudyDataset(dataset_id=dataset.id, study_id=row.id, role="protocol"))
                session.flush()
                version = self._publish_made(session, dataset, files, report.to_dict(), principal,
                                             f"{now.isoformat()} made by the registry for request "
                                             f"{number} of study {study!r} and checked here\n")
                session.execute(update(ProtocolRequest).where(
                    ProtocolRequest.study_id == row.id, ProtocolRequest.number == number)
                    .values(dataset_id=dataset.id))
                assert version.number is not None
                return name, version.number, files
