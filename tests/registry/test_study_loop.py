"""The whole study loop on loopback, as sites and a curator run it (issue 18's "done when").

A curator creates a study from a simulated pool; two sites request protocols at the same
time (two `conform` processes) and get disjoint participants and packages that
`conform design check` accepts; each uploads simulated data that follow its protocol, and
one site also uploads data that do not (refused, with the first differing row); the curator
publishes, the contributions join the study's catalog; `conform fit` runs on the published
catalog through the `registry` dataset plugin; a third site's protocol goes to images far
from what was collected.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from types import SimpleNamespace

import numpy as np
import pytest

from conform_core.cli import main
from conform_registry._api import create_app
from conform_registry._config import RegistryConfig
from conform_registry._service import RegistryService
from conform_registry.testing import simulate_contribution

N_POOL, N_FEATURES = 240, 12
DESIGN = ["--design", "core=6", "--design", "overlap=2", "--design", "repeats=2",
          "--design", "sessions=2", "--design", "runs=2", "--design", "core_sessions=1",
          "--design", "min_session_repeats=1", "--design", "seed=5"]
MINUTES = "3"


@pytest.fixture(scope="module")
def loop(tmp_path_factory, serve_app) -> Iterator[SimpleNamespace]:
    folder = tmp_path_factory.mktemp("loop")
    service = RegistryService(RegistryConfig(data_dir=folder / "server"))
    service.startup()
    tokens = {site: service.create_token(site, role) for site, role in
              (("cam", "contributor"), ("oxf", "contributor"), ("ucl", "contributor"),
               ("hq", "curator"))}
    rng = np.random.default_rng(11)  # a simulated pool: clustered, like images in CLIP space
    centres = rng.standard_normal((8, N_FEATURES))
    pool = (centres[rng.integers(0, 8, N_POOL)] + 0.6 * rng.standard_normal((N_POOL, N_FEATURES)))
    np.save(folder / "pool.npy", pool.astype(np.float32))
    ids = [f"img{i:03d}" for i in range(N_POOL)]
    (folder / "ids.txt").write_text("\n".join(ids) + "\n")
    try:
        with serve_app(create_app(service, poll_s=0.1)) as url:
            yield SimpleNamespace(url=url, tokens=tokens, folder=folder, service=service,
                                  pool=pool.astype(np.float32), ids=ids)
    finally:
        service.close()


def run(loop, monkeypatch, capsys, site: str, *args: str) -> tuple[int, str, str]:
    """``conform ARGS`` in this process, as ``site``."""
    monkeypatch.setenv("CONFORM_REGISTRY_URL", loop.url)
    monkeypatch.setenv("CONFORM_REGISTRY_TOKEN", loop.tokens[site])
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err, captured.err
    return int(exit_info.value.code), captured.out, captured.err


def spawn(loop, site: str, *args: str) -> subprocess.Popen[str]:
    """``conform ARGS`` in a process of its own, as ``site``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONFORM_")}
    env.update(CONFORM_REGISTRY_URL=loop.url, CONFORM_REGISTRY_TOKEN=loop.tokens[site],
               XDG_CONFIG_HOME=str(loop.folder / "config"))
    return subprocess.Popen([sys.executable, "-m", "conform_core", *args], cwd=loop.folder,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_the_study_loop(loop, monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)
    code, out, err = run(loop, monkeypatch, capsys, "hq", "registry", "study", "create", "loop",
                         "--embeddings", str(loop.folder / "pool.npy"),
                         "--ids", str(loop.folder / "ids.txt"), *DESIGN, "--json")
    assert code == 0, err
    core = set(json.loads(out)["core"])

    # two sites ask at the same time, each in its own process
    asks = {site: spawn(loop, site, "registry", "protocol", "request", "loop", "--participants",
                        "2", "--session-minutes", MINUTES, "--out", str(tmp_path / f"pkg-{site}"),
                        "--json") for site in ("cam", "oxf")}
    got = {}
    for site, process in asks.items():
        out, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
        got[site] = json.loads(out)
    assert not set(got["cam"]["participants"]) & set(got["oxf"]["participants"])
    for site in got:
        code, out, err = run(loop, monkeypatch, capsys, site, "design", "check",
                             str(tmp_path / f"pkg-{site}"))
        assert code == 0, out + err

    # each site uploads what it collected; oxf also uploads a run that deviates
    for site in ("cam", "oxf"):
        data = tmp_path / f"data-{site}"
        simulate_contribution(tmp_path / f"pkg-{site}", data, embeddings=loop.pool, ids=loop.ids,
                              seed=3)
        code, out, err = run(loop, monkeypatch, capsys, site, "registry", "submit",
                             f"{site}-loop", str(data), "--create", "--study", "loop",
                             "--protocol", f"{got[site]['dataset']}@1", "--wait")
        assert code == 0, err
    bad = tmp_path / "data-oxf-bad"
    simulate_contribution(tmp_path / "pkg-oxf", bad, embeddings=loop.pool, ids=loop.ids, seed=3,
                          deviate=True)
    code, out, err = run(loop, monkeypatch, capsys, "oxf", "registry", "submit", "oxf-bad",
                         str(bad), "--create", "--study", "loop", "--protocol",
                         f"{got['oxf']['dataset']}@1", "--wait", "--no-check")
    assert code == 2 and "events.protocol_mismatch" in out + err and "run-01" in out + err

    for site in ("cam", "oxf"):
        code, out, err = run(loop, monkeypatch, capsys, "hq", "registry", "publish",
                             f"{site}-loop", "--json")
        assert code == 0, err
        assert json.loads(out)["ingest"]["ingested"] is True
    code, out, err = run(loop, monkeypatch, capsys, "cam", "registry", "coverage", "loop", "--json")
    collected = json.loads(out)["collected"]
    assert code == 0 and collected["n_participants"] == 4

    # conform fit reads the published catalog through the registry dataset plugin
    spec = tmp_path / "catalog.toml"
    spec.write_text(f"""denoiser = "trial-average"
encoder = "ridge"
features = "precomputed"

[analysis]
name = "loop-catalog"
seed = 0

[dataset]
plugin = "registry"
location = "{loop.url}"

[dataset.params]
name = "loop-catalog"
version = "latest"
cache_dir = "{tmp_path / 'cache'}"
rois = {list(range(1000, 1032))}
""")
    code, out, err = run(loop, monkeypatch, capsys, "cam", "fit", str(spec), "--out",
                         str(tmp_path / "results"))
    assert code == 0, out + err
    with open(tmp_path / "results" / "results.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["status"] for r in rows} == {"ok"}, rows
    labels = got["cam"]["participants"] + got["oxf"]["participants"]
    assert {r["subject"] for r in rows} == {f"{label}_CONFORM" for label in labels}
    # the simulated brains share one linear model of the pool embeddings, which the plugin
    # hands to the encoder: held-out (core) images are predicted well; a wrong join of
    # embeddings to stimuli would give r near 0
    r = [float(row["value"]) for row in rows if row["metric"] == "pearson_r" and row["roi"] == "all"]
    assert len(r) == 4 and min(r) > 0.5, r
    lock = (tmp_path / "results" / "spec.lock.toml").read_text()
    assert 'version = 2' in lock  # "latest" recorded as the number that was read

    # conform braincorl train reads the same catalog (a tiny model, a few steps: the point is
    # the data path, not the model)
    subjects = sorted(f"{label}_CONFORM" for label in labels)
    train = tmp_path / "braincorl.toml"
    train.write_text(f"""features = "precomputed"

[model]
preset = "tiny"

[dataset]
plugin = "registry"
location = "{loop.url}"
train_subjects = {subjects[:3]}
validation_subjects = {subjects[3:]}

[dataset.params]
name = "loop-catalog"
version = 2
cache_dir = "{tmp_path / 'cache'}"
rois = {list(range(1000, 1032))}

[training]
seed = 0
batch_voxels = 16
n_query = 8
validate_every = 4
checkpoint_every = 8
validation_voxels = 32
validation_context = 8
threads = 1

[[stages]]
name = "subjects"
source = "subjects"
steps = 8
context = [4, 16]
""")
    code, out, err = run(loop, monkeypatch, capsys, "cam", "braincorl", "train", str(train),
                         "--out", str(tmp_path / "model"), "--quiet")
    assert code == 0, out + err
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert "loop-catalog" in json.dumps(config)  # the training data are recorded

    # a third site's protocol goes where data are missing
    state = loop.service.study_state("loop")
    x = loop.pool / np.linalg.norm(loop.pool, axis=1, keepdims=True)
    have = state.rows_of("collected")
    gap = 1 - (x @ x[have].T).max(axis=1)  # each image's distance to the nearest collected one
    code, out, err = run(loop, monkeypatch, capsys, "ucl", "registry", "protocol", "request", "loop",
                         "--participants", "1", "--session-minutes", MINUTES, "--out",
                         str(tmp_path / "pkg-ucl"), "--json")
    assert code == 0, err
    third = loop.service.study_state("loop").participants[-1]
    new = [row for row in third.images if state.ids[row] not in core]
    uncollected = np.setdiff1d(np.arange(N_POOL), have)
    assert np.mean(gap[new]) > np.mean(gap[uncollected])
