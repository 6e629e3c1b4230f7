"""Fixtures of the registry tests: a database URL on SQLite and on PostgreSQL.

PostgreSQL comes from ``$CONFORM_TEST_POSTGRES_URL`` (a server URL; each test gets a fresh
database with a random name, dropped afterwards) or, without it, from a throwaway cluster
started once per session from the local PostgreSQL binaries (``initdb``/``pg_ctl``, run as
the ``postgres`` user when the tests run as root). Where neither is possible the PostgreSQL
cases are skipped, except under CI (``$CI`` set), where they fail: CI must test PostgreSQL.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import types
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_NEEDED = ("sqlalchemy", "alembic", "fsspec")
_MISSING = [name for name in _NEEDED if importlib.util.find_spec(name) is None]
if _MISSING and os.environ.get("CI"):
    raise ImportError(f"The registry tests need {', '.join(_MISSING)}: pip install -e '.[registry]'")
if _MISSING:  # a development install without the extra: say so in the header, run nothing
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header(config: pytest.Config) -> str | None:
    if _MISSING:
        return (f"registry tests not collected: {', '.join(_MISSING)} missing "
                "(pip install -e '.[registry]')")
    return None


_POSTGRES_ERRORS: list[str] = []


def _unavailable(reason: str) -> None:
    """Skip a PostgreSQL case, or fail it under CI."""
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL is required under CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


class _Cluster:
    """A throwaway PostgreSQL cluster on 127.0.0.1 with trust authentication."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.tmp = Path(tempfile.mkdtemp(prefix="conform-pg-"))
        self.data = self.tmp / "data"
        self.as_root = os.geteuid() == 0
        self.port = 0

    def _run(self, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:  # initdb and postgres refuse to run as root
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                              check=False, cwd=self.tmp)

    def start(self) -> str:
        if self.as_root:
            if shutil.which("runuser") is None:
                raise RuntimeError("running as root, and runuser is missing to run initdb as 'postgres'")
            shutil.chown(self.tmp, user="postgres")
        init = self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres",
                         "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions", timeout=60)
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed: {init.stderr.strip()[-800:]}")
        for _attempt in range(3):  # the free port may be taken between probe and start
            self.port = _free_port()
            options = (f"-h 127.0.0.1 -p {self.port} -k {self.tmp} -c fsync=off "
                       "-c synchronous_commit=off -c full_page_writes=off")
            started = self._run("pg_ctl", "-D", str(self.data), "-l", str(self.tmp / "log"),
                                "-o", options, "-w", "-t", "60", "start", timeout=70)
            if started.returncode == 0:
                return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        log = (self.tmp / "log").read_text(errors="replace")[-800:] if (self.tmp / "log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()[-400:]} {log}")

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "-t", "30",
                          "stop", timeout=40)
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str | None]:
    """URL of a PostgreSQL server's maintenance database, or None with the reason stored."""
    if importlib.util.find_spec("psycopg") is None:
        yield None
        return
    url = os.environ.get("CONFORM_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    bin_dir = _pg_bin()
    if bin_dir is None:
        yield None
        return
    cluster = _Cluster(bin_dir)
    try:
        url: str | None = cluster.start()
    except (RuntimeError, OSError, subprocess.SubprocessError, LookupError) as exc:
        _POSTGRES_ERRORS.append(str(exc))
        url = None
    try:
        yield url
    finally:
        cluster.stop()


@contextlib.contextmanager
def _fresh_database(server_url: str) -> Iterator[str]:
    from sqlalchemy import create_engine, make_url

    from conform_registry._db import normalize_url

    server = normalize_url(server_url)
    name = f"conform_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
        yield make_url(server).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


@pytest.fixture
def postgres_url(postgres_server: str | None) -> Iterator[str]:
    """URL of a fresh, empty PostgreSQL database (dropped after the test)."""
    if postgres_server is None:
        why = (_POSTGRES_ERRORS[-1] if _POSTGRES_ERRORS else
               "psycopg is not installed" if importlib.util.find_spec("psycopg") is None else
               "no PostgreSQL binaries (initdb) found and $CONFORM_TEST_POSTGRES_URL is not set")
        _unavailable(f"no PostgreSQL for the tests: {why}")
    with _fresh_database(postgres_server) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of an empty database: a SQLite file in tmp_path, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite3'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def module_db_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                  ) -> Iterator[str]:
    """Like ``db_url``, for a whole module (migrating once per test would be too slow)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'registry.sqlite3'}"
        return
    server = request.getfixturevalue("postgres_server")
    if server is None:
        _unavailable("no PostgreSQL for the tests: " + (_POSTGRES_ERRORS[-1] if _POSTGRES_ERRORS
                                                        else "no server could be started"))
    with _fresh_database(server) as url:
        yield url


@contextlib.contextmanager
def live_server(app) -> Iterator[str]:
    """Serve ``app`` with uvicorn in a thread on a free 127.0.0.1 port; yield its base URL."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{server.servers[0].sockets[0].getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)


@pytest.fixture(scope="session")
def serve_app():
    """:func:`live_server`, for tests and fixtures of any scope: ``with serve_app(app) as url``."""
    return live_server


@pytest.fixture(scope="session")
def web_registry(tmp_path_factory, serve_app):
    """A running registry with a study in progress, for the web page tests.

    Study ``vision`` (a 160-image simulated pool); site ``cam`` requested a protocol, ran it
    (:func:`conform_registry.testing.simulate_contribution`), uploaded, and a curator
    published it (so the catalog has version 1); site ``oxf`` uploaded data that deviate
    from its protocol (job failed). Yields ``url``, ``service``, ``tokens`` (per site),
    ``jobs`` (per dataset) and ``requests`` (per site).
    """
    import numpy as np

    from conform_registry._api import create_app
    from conform_registry._client import RegistryClient
    from conform_registry._config import RegistryConfig
    from conform_registry._service import RegistryService
    from conform_registry.testing import simulate_contribution

    folder = tmp_path_factory.mktemp("web")
    ids = [f"img{i:03d}" for i in range(160)]
    pool = np.random.default_rng(5).standard_normal((160, 8)).astype(np.float32)
    params = {"core": 6, "overlap": 2, "repeats": 2, "sessions": 2, "runs": 2, "core_sessions": 1,
              "min_session_repeats": 1, "seed": 3}
    service = RegistryService(RegistryConfig(data_dir=folder / "registry"))
    service.startup()
    tokens = {site: service.create_token(site, role) for site, role in
              (("cam", "contributor"), ("oxf", "contributor"), ("ucl", "contributor"),
               ("hq", "curator"))}
    try:
        with serve_app(create_app(service, poll_s=0.1)) as url:
            clients = {site: RegistryClient(url, token) for site, token in tokens.items()}
            clients["hq"].create_study("vision", pool, ids, params=params,
                                       description="A simulated pool for the web tests")
            jobs, requests = {}, {}
            for site, deviate in (("cam", False), ("oxf", True)):
                done = clients[site].request_protocol("vision", 2, 3.0)
                package = folder / f"{site}-package"
                clients[site].pull(done["dataset"], 1, package)
                data = folder / f"{site}-data"
                simulate_contribution(package, data, embeddings=pool, ids=ids, seed=7,
                                      deviate=deviate)
                name = f"{site}-vision"
                clients[site].create_dataset(name, None, f"{done['dataset']}@1", study="vision")
                summary = clients[site].upload_tree(name, [data])
                jobs[name] = clients[site].wait_job(summary.job["id"], timeout=120)
                requests[site] = done
            clients["hq"].publish("cam-vision")
            yield types.SimpleNamespace(url=url, service=service, tokens=tokens, jobs=jobs,
                                        requests=requests, folder=folder)
            for client in clients.values():
                client.close()
    finally:
        service.close()
