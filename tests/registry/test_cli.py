"""`conform registry ...` through the real command line, against a real server on loopback.

Exit codes (0 success, 2 refused or user error, 3 fsck found damage, 130 Ctrl-C), no
tracebacks for refused requests (bad token, unknown dataset, server down), --json outputs
that parse, and `login` writing a private settings file atomically.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from conform_core.cli import main
from conform_registry._api import create_app
from conform_registry._config import RegistryConfig
from conform_registry._service import RegistryService

KiB = 1024
EVENTS = b"onset\tduration\ttrial_type\n0\t1\tface\n2\t1\thouse\n"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory,
             serve_app) -> Iterator[SimpleNamespace]:
    """A registry on a free 127.0.0.1 port, with tokens of site cam and of a curator."""
    folder = tmp_path_factory.mktemp("registry")
    config = RegistryConfig(data_dir=folder, chunk_bytes=64 * KiB, pack_threshold_files=3)
    service = RegistryService(config)
    service.startup()
    tokens = {"cam": service.create_token("cam", "contributor"),
              "hq": service.create_token("hq", "curator")}
    try:
        with serve_app(create_app(service, poll_s=0.1)) as url:
            yield SimpleNamespace(url=url, tokens=tokens, service=service, folder=folder)
    finally:
        service.close()


@pytest.fixture
def env(registry, monkeypatch, tmp_path) -> SimpleNamespace:
    """Point the client at the test server as site cam, with a private config folder."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("CONFORM_REGISTRY_URL", registry.url)
    monkeypatch.setenv("CONFORM_REGISTRY_TOKEN", registry.tokens["cam"])
    monkeypatch.delenv("CONFORM_DEBUG", raising=False)
    monkeypatch.chdir(tmp_path)
    return SimpleNamespace(monkeypatch=monkeypatch, tmp=tmp_path)


def run(args: list[str], capsys) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(["registry", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return int(exit_info.value.code), captured.out, captured.err


def make_tree(folder: Path, n: int = 4, *, bad: bool = False) -> Path:
    for i in range(n):
        path = folder / "sub-01" / f"sub-01_task-a_run-{i + 1:02d}_events.tsv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"onset\tduration\nsoon\t1\n" if bad else EVENTS + str(4 + i).encode() + b"\t1\tx\n")
    return folder


def test_every_command_teaches_by_example(capsys):
    for command in (["serve"], ["token", "create"], ["token", "revoke"], ["fsck"], ["login"], ["submit"], ["status"],
                    ["list"], ["pull"], ["publish"]):
        code, out, _ = run([*command, "--help"], capsys)
        assert code == 0 and "For example:" in out and "conform registry" in out, command
    code, out, _ = run(["--help"], capsys)
    assert code == 0 and "Exit codes" in out and "130" in out


def test_login_checks_the_token_and_writes_a_private_file(env, registry, capsys):
    env.monkeypatch.delenv("CONFORM_REGISTRY_TOKEN")
    code, out, err = run(["login", "--url", registry.url, "--token", "cfr_" + "z" * 43], capsys)
    assert code == 2 and "not known to this registry" in err and "HTTP 401" in err
    folder = env.tmp / "config" / "conform"
    assert not (folder / "registry.toml").exists()
    code, out, _ = run(["login", "--url", registry.url, "--token", registry.tokens["cam"], "--json"],
                       capsys)
    assert code == 0 and json.loads(out)["site"] == "cam"
    assert os.listdir(folder) == ["registry.toml"]
    assert stat.S_IMODE((folder / "registry.toml").stat().st_mode) == 0o600
    env.monkeypatch.delenv("CONFORM_REGISTRY_URL")  # the saved URL and token now suffice
    code, out, _ = run(["list", "--json"], capsys)
    assert code == 0 and "datasets" in json.loads(out)


def test_submit_status_list_publish_pull_with_json(env, registry, capsys):
    tree = make_tree(env.tmp / "tree")
    code, out, err = run(["submit", "cli-flow", str(tree), "--create", "--kind", "bids", "--wait",
                          "--json"], capsys)
    assert code == 0, err
    done = json.loads(out)
    assert done["job"]["state"] == "passed" and len(done["files"]) == 4
    assert done["local_check"]["errors"] == [] and "more than the registry's 3" in err

    code, out, _ = run(["status", "cli-flow", "--json"], capsys)
    status = json.loads(out)
    assert code == 0 and status["dataset"]["draft"]["files"] == 4
    assert status["job"]["state"] == "passed" and status["job"]["report"]["errors"] == []
    code, out, _ = run(["status", "cli-flow"], capsys)
    assert code == 0 and "passed" in out and "draft: 4 file(s)" in out

    code, out, _ = run(["list", "--json"], capsys)
    assert code == 0 and "cli-flow" in [d["name"] for d in json.loads(out)["datasets"]]
    code, out, _ = run(["list"], capsys)
    assert code == 0 and "cli-flow" in out

    code, _, err = run(["publish", "cli-flow"], capsys)
    assert code == 2 and "Only a curator may publish" in err and "HTTP 403" in err
    env.monkeypatch.setenv("CONFORM_REGISTRY_TOKEN", registry.tokens["hq"])
    code, out, _ = run(["publish", "cli-flow", "--json"], capsys)
    assert code == 0 and json.loads(out)["version"] == 1

    env.monkeypatch.delenv("CONFORM_REGISTRY_TOKEN")  # published data needs no token
    code, out, err = run(["pull", "cli-flow@1", "--json"], capsys)
    assert code == 0, err
    pulled = json.loads(out)
    assert pulled["version"] == 1 and {f["action"] for f in pulled["files"]} == {"downloaded"}
    for path in tree.rglob("*.tsv"):
        assert (env.tmp / "cli-flow-v1" / path.relative_to(tree)).read_bytes() == path.read_bytes()
    code, out, _ = run(["pull", "cli-flow"], capsys)
    assert code == 0 and "4 verified" in out


def test_submit_wait_exits_2_when_validation_fails(env, capsys):
    tree = make_tree(env.tmp / "bad", n=1, bad=True)
    code, out, err = run(["submit", "cli-bad", str(tree), "--create", "--kind", "bids", "--wait"],
                         capsys)
    assert code == 2
    assert "failed" in out and "error" in out and "Fix the files" in err


def test_submit_to_an_unknown_dataset_suggests_create(env, capsys):
    tree = make_tree(env.tmp / "tree", n=1)
    code, _, err = run(["submit", "no-such-dataset", str(tree), "--no-check"], capsys)
    assert code == 2 and "no dataset 'no-such-dataset'" in err and "--create" in err


def test_refused_requests_exit_2_without_traceback(env, capsys):
    code, _, err = run(["status", "nowhere"], capsys)
    assert code == 2 and "HTTP 404 dataset.not_found" in err
    env.monkeypatch.setenv("CONFORM_REGISTRY_TOKEN", "cfr_" + "q" * 43)
    code, _, err = run(["list"], capsys)
    assert code == 2 and "HTTP 401" in err and "token create" in err
    code, _, err = run(["pull", "x@first"], capsys)
    assert code == 2 and "DATASET@VERSION" in err
    code, _, err = run(["submit", "x", "missing-folder"], capsys)
    assert code == 2 and "does not exist" in err


def test_a_server_that_is_down_exits_2_naming_the_url(env, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env.monkeypatch.setenv("CONFORM_REGISTRY_URL", f"http://127.0.0.1:{port}")
    code, _, err = run(["list"], capsys)
    assert code == 2 and f"Cannot reach the registry at http://127.0.0.1:{port}" in err
    assert "conform registry serve" in err


def test_ctrl_c_during_submit_exits_130(env, capsys):
    from conform_registry._client import RegistryClient

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    env.monkeypatch.setattr(RegistryClient, "upload_tree", interrupted)
    code, _, err = run(["submit", "x", str(make_tree(env.tmp / "t", n=1)), "--no-check"], capsys)
    assert code == 130 and "Interrupted (SIGINT)" in err


def test_token_create_prints_the_token_once(tmp_path, capsys):
    code, out, err = run(["token", "create", "--site", "lab-1", "--role", "contributor",
                          "--data-dir", str(tmp_path)], capsys)
    assert code == 0 and out.startswith("cfr_") and len(out.strip()) == 47
    assert "not shown again" in err
    code, out, _ = run(["token", "create", "--site", "lab-1", "--role", "curator", "--json",
                        "--data-dir", str(tmp_path)], capsys)
    assert code == 0 and json.loads(out)["role"] == "curator"
    code, _, err = run(["token", "create", "--site", "lab-1", "--role", "admin",
                        "--data-dir", str(tmp_path)], capsys)
    assert code == 2 and "admin" in err


def test_token_revoke_refuses_the_token_from_then_on(env, registry, capsys):
    token = registry.service.create_token("lab-revoked", "contributor")
    env.monkeypatch.setenv("CONFORM_REGISTRY_TOKEN", token)
    assert run(["list"], capsys)[0] == 0
    folder = ["--data-dir", str(registry.folder)]
    code, out, _ = run(["token", "revoke", token[:8], *folder], capsys)
    assert code == 0 and f"Revoked 1 token(s) starting with {token[:8]}" in out
    code, _, err = run(["list"], capsys)
    assert code == 2 and "revoked" in err and "HTTP 401" in err
    code, out, err = run(["token", "revoke", token, *folder, "--json"], capsys)
    assert code == 2 and json.loads(out)["revoked"] == 0 and "No active token" in err
    code, _, err = run(["token", "revoke", "abc", *folder], capsys)
    assert code == 2 and "'abc'" in err and "cfr_" in err


def test_fsck_exits_3_on_a_damaged_blob_and_0_when_repaired(env, registry, capsys):
    data = b"fsck me " * 1000
    (env.tmp / "f.bin").write_bytes(data)
    code, _, err = run(["submit", "cli-fsck", str(env.tmp / "f.bin"), "--create", "--no-check"], capsys)
    assert code == 0, err
    digest = hashlib.sha256(data).hexdigest()
    blob = Path(registry.service.store.blob_path(digest))
    folder = ["--data-dir", str(registry.folder)]
    code, out, _ = run(["fsck", *folder, "--json"], capsys)
    assert code == 0 and digest not in [p["sha256"] for p in json.loads(out)["problems"]]
    blob.write_bytes(b"X" * len(data))
    try:
        code, out, err = run(["fsck", *folder, "--json"], capsys)
        found = {p["sha256"]: p for p in json.loads(out)["problems"]}
        assert code == 3 and found[digest]["problem"] == "mismatch"
        assert found[digest]["used_by"] == ["cli-fsck@draft:f.bin"]
        code, out, _ = run(["fsck", *folder], capsys)
        assert code == 3 and "MISMATCH" in out and "cli-fsck@draft:f.bin" in out
    finally:
        blob.write_bytes(data)


def test_serve_refuses_a_port_in_use(tmp_path, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        code, _, err = run(["serve", "--data-dir", str(tmp_path), "--port", str(port)], capsys)
    assert code == 2 and f"Cannot listen on 127.0.0.1:{port}" in err and "--port" in err


def test_the_command_line_loads_no_http_or_server_library():
    """`conform` builds every plugin's commands at start: the registry's must stay cheap."""
    code = ("import sys, conform_registry._cli; "
            "print(sorted(m for m in ('httpx', 'fastapi', 'sqlalchemy', 'uvicorn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr
