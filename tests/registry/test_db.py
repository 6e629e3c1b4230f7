import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Integer, MetaData, func, inspect, select
from sqlalchemy.exc import IntegrityError

import conform_registry
from conform_core.exceptions import ParameterError
from conform_registry._db import (
    Asset,
    Audit,
    Base,
    Blob,
    Dataset,
    Job,
    Site,
    Token,
    Upload,
    UploadChunk,
    Version,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    make_session_factory,
    normalize_url,
    upgrade,
)
from conform_registry._db.session import MIGRATIONS

SHA = "ab" * 32


def _schema_diffs(engine, metadata=Base.metadata):
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def _tables(engine):
    return set(inspect(engine).get_table_names())


def test_upgrade_downgrade_upgrade_gives_the_models_schema(db_url):
    assert current_revision(db_url) is None
    upgrade(db_url)
    upgrade(db_url)  # a second start changes nothing
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision() == "0002"
        assert _tables(engine) == set(Base.metadata.tables) | {"alembic_version"}
        assert _schema_diffs(engine) == []
        changed = MetaData(naming_convention=Base.metadata.naming_convention)
        for table in Base.metadata.tables.values():
            table.to_metadata(changed)
        changed.tables["blob"].append_column(Column("extra", Integer))
        assert _schema_diffs(engine, changed) != []  # the comparison does see a difference
        downgrade(engine, "base")
        assert current_revision(engine) is None
        assert _tables(engine) <= {"alembic_version"}
        upgrade(engine, "0001")  # then one step at a time, down one step and up again
        before_studies = _tables(engine)
        assert "study" not in before_studies and "dataset" in before_studies
        upgrade(engine)
        assert _schema_diffs(engine) == []
        downgrade(engine, "0001")
        assert _tables(engine) == before_studies and current_revision(engine) == "0001"
        upgrade(engine)
        assert _schema_diffs(engine) == [] and current_revision(engine) == "0002"
    finally:
        engine.dispose()


def test_the_migrations_ship_inside_the_package():
    package = Path(conform_registry.__file__).resolve().parent
    assert MIGRATIONS == package / "_db" / "migrations"
    for name in ("__init__.py", "env.py", "script.py.mako", "versions/__init__.py",
                 "versions/0001_initial.py", "versions/0002_studies.py"):
        assert (MIGRATIONS / name).is_file(), name
    script = ScriptDirectory(str(MIGRATIONS))
    assert [rev.revision for rev in script.walk_revisions()] == ["0002", "0001"]


@pytest.fixture
def session(db_url):
    upgrade(db_url)
    engine = make_engine(db_url)
    factory = make_session_factory(engine)
    with factory() as session:
        yield session
    engine.dispose()


def _site_token_dataset(session):
    site = Site(name="cam")
    token = Token(site=site, role="contributor", token_hash=SHA, prefix="cfr_abcd", label="ci")
    dataset = Dataset(name="cam-mosaic.v1", site=site, kind="mosaic")
    session.add_all([site, token, dataset])
    session.flush()
    return site, token, dataset


def test_every_table_round_trips(session):
    site, token, dataset = _site_token_dataset(session)
    draft = Version(dataset=dataset)
    blob = Blob(sha256=SHA, size=5 * 2**40)  # sizes are 64-bit
    draft.assets.append(Asset(path="sub-01/run-1.h5", blob=blob, size=blob.size))
    upload = Upload(id="a" * 32, dataset_id=dataset.id, site_id=site.id, path="x.h5", size=3,
                    sha256=SHA, chunk_bytes=8 << 20, n_chunks=2)
    upload.chunks = [UploadChunk(index=1, sha256=SHA, size=1), UploadChunk(index=0, sha256=SHA, size=2)]
    job = Job(kind="validate", version=draft, report={"errors": [{"path": "x", "code": "E1"}],
                                                       "warnings": []})
    audit = Audit(token_id=token.id, site_id=site.id, action="upload.create", target="x.h5",
                  detail={"size": 3})
    session.add_all([draft, upload, job, audit])
    session.commit()
    session.expunge_all()

    version = session.scalars(select(Version)).one()
    assert (version.state, version.number, version.dataset.name) == ("draft", None, "cam-mosaic.v1")
    assert [(a.path, a.blob.size) for a in version.assets] == [("sub-01/run-1.h5", 5 * 2**40)]
    assert [c.index for c in session.get(Upload, "a" * 32).chunks] == [0, 1]
    job = session.scalars(select(Job)).one()
    assert (job.state, job.attempts, job.log) == ("queued", 0, "")
    assert job.report["errors"][0]["code"] == "E1"
    assert session.scalars(select(Audit)).one().detail == {"size": 3}
    token = session.scalars(select(Token)).one()
    assert token.site.name == "cam" and token.revoked_at is None
    for stamp in (job.created_at, token.created_at, version.created_at):
        assert stamp.tzinfo is not None and stamp.utcoffset() == timedelta(0)
        assert abs(datetime.now(timezone.utc) - stamp) < timedelta(minutes=5)


def test_a_dataset_has_at_most_one_draft(session):
    _, _, dataset = _site_token_dataset(session)
    session.add(Version(dataset=dataset))
    session.commit()
    session.add(Version(dataset=dataset, state="published", number=1, manifest=[]))
    session.add(Version(dataset=dataset, state="published", number=2, manifest=[]))
    session.commit()
    session.add(Version(dataset=dataset))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    session.add(Version(dataset=dataset, state="published", number=2))
    with pytest.raises(IntegrityError):  # numbers are unique per dataset
        session.commit()


@pytest.mark.parametrize(("state", "number"), [("draft", 1), ("published", None), ("published", 0),
                                                ("frozen", None)])
def test_state_and_number_must_agree(session, state, number):
    _, _, dataset = _site_token_dataset(session)
    session.add(Version(dataset=dataset, state=state, number=number))
    with pytest.raises(IntegrityError):
        session.commit()


@pytest.mark.parametrize(("model", "field", "value"), [
    (Token, "role", "admin"), (Job, "state", "done"), (Upload, "state", "paused"),
    (Dataset, "kind", "movies")])
def test_enumerations_are_checked_by_the_database(session, model, field, value):
    site, _, dataset = _site_token_dataset(session)
    session.commit()
    rows = {
        Token: lambda: Token(site=site, role=value, token_hash="cd" * 32, prefix="cfr_x"),
        Job: lambda: Job(kind="validate", version=Version(dataset=dataset), state=value),
        Upload: lambda: Upload(id="b" * 32, dataset_id=dataset.id, site_id=site.id, path="p",
                               size=1, sha256=SHA, chunk_bytes=1, n_chunks=1, state=value),
        Dataset: lambda: Dataset(name="other", site=site, kind=value),
    }
    session.add(rows[model]())
    with pytest.raises(IntegrityError):
        session.commit()


def test_foreign_keys_are_enforced_and_assets_go_with_their_version(session):
    _, _, dataset = _site_token_dataset(session)
    session.add(Token(site_id=999, role="curator", token_hash="ef" * 32, prefix="cfr_y"))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    blob = Blob(sha256=SHA, size=1)
    version = Version(dataset=dataset, assets=[Asset(path="a", blob=blob, size=1)])
    session.add(version)
    session.commit()
    session.delete(version)
    session.commit()
    assert session.scalar(select(func.count()).select_from(Asset)) == 0
    assert session.get(Blob, SHA) is not None  # blobs outlive assets (garbage-collected later)


@pytest.mark.parametrize("name", ["Cam", "-cam", "cam mosaic", "", "a" * 129, "cam/x"])
def test_dataset_names_are_validated(name):
    with pytest.raises(ParameterError, match="Dataset"):
        Dataset(name=name, site_id=1)


def test_naive_timestamps_are_refused(session):
    site = Site(name="naive", created_at=datetime(2025, 1, 1))
    session.add(site)
    with pytest.raises(Exception, match="no time zone"):
        session.commit()


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'new' / 'folder' / 'r.sqlite3'}")
    try:
        with engine.connect() as connection:
            pragma = lambda name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()  # noqa: E731
            assert pragma("foreign_keys") == 1
            assert pragma("journal_mode") == "wal"
            assert pragma("busy_timeout") == 30_000
            assert pragma("synchronous") == 2  # FULL
    finally:
        engine.dispose()


def test_concurrent_sqlite_writers_wait_instead_of_failing(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.sqlite3'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_session_factory(engine)
    errors = []

    def work(worker):
        try:
            for i in range(15):  # read, then write in the same transaction
                with factory.begin() as session:
                    n = session.scalar(select(func.count()).select_from(Site))
                    session.add(Site(name=f"w{worker}-{i}-{n}"))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with factory() as session:
        assert session.scalar(select(func.count()).select_from(Site)) == 45
    engine.dispose()
    assert errors == []


def test_urls_are_normalized_and_checked():
    assert normalize_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"
    assert normalize_url("sqlite:///x.db").drivername == "sqlite"
    with pytest.raises(ParameterError, match="SQLite .*PostgreSQL"):
        normalize_url("mysql://u:secret@h/db")
    with pytest.raises(ParameterError, match="db_url"):
        normalize_url("not a url")
    with pytest.raises(ParameterError) as info:
        normalize_url("oracle://u:secret@h/db")
    assert "secret" not in str(info.value)
