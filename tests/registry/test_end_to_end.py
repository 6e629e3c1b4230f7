"""The registry as its users run it, every step a `conform` process of its own.

`conform registry serve` starts on SQLite in an empty data folder; the administrator
creates a contributor's and a curator's token; the site logs in, submits a MOSAIC file set
and a protocol package and waits for their validation jobs to pass; the contributor may not
publish, the curator does; a third user, with no token at all, pulls both published
versions and gets every file byte-identical. Then Ctrl-C stops the server with exit 130.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

TIMEOUT = 120  # seconds per command: the slowest, submit --wait, takes a few on 2 cores


def conform(*args: str, home: Path, check: int | None = 0, **extra: str
            ) -> subprocess.CompletedProcess[str]:
    """Run ``conform ARGS`` as a user whose settings live under ``home`` (``extra``: env)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFORM_")}
    env.update(XDG_CONFIG_HOME=str(home / "config"), **extra)
    home.mkdir(parents=True, exist_ok=True)
    done = subprocess.run([sys.executable, "-m", "conform_core", *args], capture_output=True,
                          text=True, timeout=TIMEOUT, env=env, cwd=home, check=False)
    assert "Traceback" not in done.stderr, done.stderr
    if check is not None:
        assert done.returncode == check, (args, done.returncode, done.stdout, done.stderr)
    return done


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """`conform registry serve --data-dir D --port 0` in its own process, on SQLite."""
    root = tmp_path_factory.mktemp("e2e")
    data, log = root / "registry-data", root / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFORM_")}
    with open(log, "wb") as sink:
        process = subprocess.Popen([sys.executable, "-m", "conform_core", "registry", "serve",
                                    "--data-dir", str(data), "--port", "0"],
                                   stdout=sink, stderr=sink, env=env, cwd=root)
    try:
        deadline = time.monotonic() + 60
        found: list[str] = []
        while not found and time.monotonic() < deadline and process.poll() is None:
            found = re.findall(r"Uvicorn running on (http://127\.0\.0\.1:\d+)", log.read_text())
            time.sleep(0.05)
        assert found, f"the server did not start:\n{log.read_text()[-3000:]}"
        yield SimpleNamespace(url=found[0], data=data, root=root, process=process, log=log)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def mosaic_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the toy MOSAIC subject file conform_mosaic writes for its tests."""
    from conform_mosaic.testing import toy_folder

    return toy_folder(tmp_path_factory.mktemp("mosaic"))


@pytest.fixture(scope="module")
def protocol_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small `conform design` package (1 site, 2 participants) from made-up embeddings."""
    from stimulus_design import DesignInputs, DesignParams, run_design

    root = tmp_path_factory.mktemp("design")
    x = np.random.default_rng(0).standard_normal((120, 8)).astype(np.float32)
    np.save(root / "emb.npy", x / np.linalg.norm(x, axis=1, keepdims=True))
    (root / "ids.txt").write_text("".join(f"img{i:03d}\n" for i in range(120)))
    params = DesignParams(sites=1, participants_per_site=2, core=6, per_participant=20, overlap=1,
                          repeats=2, sessions=2, runs=2, core_sessions=1, min_session_repeats=1,
                          seed=3)
    run_design(params, DesignInputs(embeddings=root / "emb.npy", ids=root / "ids.txt"),
               root / "package")
    return root / "package"


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_site_submits_a_curator_publishes_and_anyone_pulls_byte_identical(
        registry, mosaic_files, protocol_package):
    data = str(registry.data)
    site, curator, reader = (registry.root / name for name in ("site", "curator", "reader"))
    contributor_token = conform("registry", "token", "create", "--data-dir", data, "--site", "cam",
                                "--role", "contributor", home=registry.root).stdout.strip()
    curator_token = conform("registry", "token", "create", "--data-dir", data, "--site", "hq",
                            "--role", "curator", "--json", home=registry.root)
    curator_token = json.loads(curator_token.stdout)["token"]
    assert contributor_token.startswith("cfr_") and curator_token.startswith("cfr_")

    login = conform("registry", "login", "--url", registry.url, "--token", contributor_token,
                    home=site)
    assert "cam" in login.stdout + login.stderr
    uploads = {"cam-mosaic": (mosaic_files, "mosaic"), "cam-protocol": (protocol_package, "protocol")}
    for dataset, (folder, kind) in uploads.items():
        done = conform("registry", "submit", dataset, str(folder), "--create", "--kind", kind,
                       "--wait", "--json", home=site)
        result = json.loads(done.stdout)
        assert result["job"]["state"] == "passed", result["job"]
        assert result["job"]["report"]["errors"] == []
        assert len(result["files"]) == len(files_of(folder))
    status = json.loads(conform("registry", "status", "cam-protocol", "--json", home=site).stdout)
    assert status["job"]["state"] == "passed"

    refused = conform("registry", "publish", "cam-mosaic", home=site, check=2)
    assert "curator" in refused.stderr
    conform("registry", "login", "--url", registry.url, "--token", curator_token, home=curator)
    for dataset in uploads:
        published = json.loads(conform("registry", "publish", dataset, "--json",
                                       home=curator).stdout)
        assert published["version"] == 1

    # the third user has no token: published versions are public
    hidden = conform("registry", "pull", "cam-mosaic@draft", home=reader, check=2,
                     CONFORM_REGISTRY_URL=registry.url)
    assert "HTTP 401" in hidden.stderr, hidden.stderr
    for dataset, (folder, _kind) in uploads.items():
        conform("registry", "pull", f"{dataset}@1", "--out", dataset, home=reader,
                CONFORM_REGISTRY_URL=registry.url)
        assert files_of(reader / dataset) == files_of(folder)

    fsck = conform("registry", "fsck", "--data-dir", data, "--json", home=registry.root)
    assert json.loads(fsck.stdout)["problems"] == []

    registry.process.send_signal(signal.SIGINT)
    assert registry.process.wait(timeout=60) == 130
    assert "Interrupted (SIGINT) during `conform registry serve`" in registry.log.read_text()
