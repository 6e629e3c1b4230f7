"""Benchmark: registry upload and download throughput on loopback, next to a plain file copy.

For each case the script writes the data into a temporary folder, copies it with a plain
file copy (``shutil.copyfile`` + ``fsync`` per file: the limit on this disk, measured in the
same run), starts a registry server in its own process on 127.0.0.1 (SQLite and blobs in the
temporary folder; no validation workers, so jobs do not compete with the transfers), uploads
the data with :meth:`RegistryClient.upload_tree` (hashing, packing, chunked upload, the
server's whole-file check) and pulls it back with :meth:`RegistryClient.pull` (download,
sha256 check, rename), then prints MB/s and the ratio to the copy.

Cases
-----
- 1 file of SIZE;
- 1,000 files of SIZE/1000 (under the chunk size, so the client packs them into one archive
  and the server unpacks it into 1,000 files).

Usage::

    python benchmarks/registry.py                 # 1 GB per case (needs about 8 GB of disk)
    python benchmarks/registry.py --size 64MB     # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine  # noqa: E402

_SERVER = """
import sys
from conform_registry._api import serve
from conform_registry._config import RegistryConfig
serve(RegistryConfig(data_dir=sys.argv[1], chunk_bytes=int(sys.argv[3])), "127.0.0.1",
      int(sys.argv[2]), workers=0, log_level="warning")
"""


def write_data(folder: Path, size: int, n_files: int, seed: int = 0) -> None:
    """Write ``n_files`` files of random bytes, ``size`` bytes in all."""
    rng = np.random.default_rng(seed)
    each = size // n_files
    for i in range(n_files):
        path = folder / (f"sub-{i // 100:02d}/run-{i:04d}.bin" if n_files > 1 else "data.bin")
        path.parent.mkdir(parents=True, exist_ok=True)
        left = each + (size - each * n_files if i == n_files - 1 else 0)
        with open(path, "wb") as out:
            while left:
                block = min(left, 64 << 20)
                out.write(rng.bytes(block))
                left -= block


def plain_copy(src: Path, dest: Path) -> float:
    """Copy every file (fsynced, as the server does); return the seconds."""
    start = time.perf_counter()
    for path in sorted(p for p in src.rglob("*") if p.is_file()):
        target = dest / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
        with open(target, "rb") as handle:
            os.fsync(handle.fileno())
    return time.perf_counter() - start


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(data_dir: Path, chunk_bytes: int) -> tuple[subprocess.Popen[bytes], str, str]:
    """Start a registry in its own process; return it, its URL and a contributor's token."""
    from conform_registry._config import RegistryConfig
    from conform_registry._service import RegistryService

    with RegistryService(RegistryConfig(data_dir=data_dir, chunk_bytes=chunk_bytes)) as service:
        token = service.create_token("bench", "contributor")
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(data_dir), str(port),
                               str(chunk_bytes)])
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return server, url, token
        except httpx.HTTPError:
            time.sleep(0.1)
        if server.poll() is not None:
            break
    server.kill()
    sys.exit("the registry server did not start")


def run_case(root: Path, size: int, n_files: int, workers: int, chunk_bytes: int) -> dict[str, float]:
    """Copy, upload and pull one case; return the seconds and the data's size."""
    from conform_registry._client import RegistryClient

    src, copy, data_dir, pulled = root / "src", root / "copy", root / "server", root / "pulled"
    write_data(src, size, n_files)
    copy_s = plain_copy(src, copy)
    shutil.rmtree(copy)
    server, url, token = start_server(data_dir, chunk_bytes)
    try:
        with RegistryClient(url, token, workers=workers, timeout=600) as client:
            client.create_dataset("bench", kind="other")
            start = time.perf_counter()
            summary = client.upload_tree("bench", src)
            upload_s = time.perf_counter() - start
            start = time.perf_counter()
            result = client.pull("bench", "draft", pulled)
            pull_s = time.perf_counter() - start
        assert len(result.files) == n_files and len(summary.files) == n_files
    finally:
        server.terminate()
        server.wait(30)
        for folder in (src, data_dir, pulled):
            shutil.rmtree(folder, ignore_errors=True)
    return {"mb": size / 1e6, "copy_s": copy_s, "upload_s": upload_s, "pull_s": pull_s,
            "packs": len(summary.packs)}


def main() -> None:
    from conform_registry._config import parse_size

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GB",
                        help="Bytes per case, e.g. 1GB (default) or 64MB for a quick check.")
    parser.add_argument("--files", type=int, default=1000, help="Files of the many-files case (1000).")
    parser.add_argument("--workers", type=int, default=4,
                        help="Client threads: parallel chunks of a file, parallel files of a pull (4).")
    parser.add_argument("--chunk", default="8MiB", help="Chunk size (8MiB, the server's default).")
    parser.add_argument("--dir", default=None, help="Where to work (default: a temporary folder).")
    args = parser.parse_args()
    size, chunk = parse_size(args.size, key="--size"), parse_size(args.chunk, key="--chunk")
    root = Path(args.dir or tempfile.mkdtemp(prefix="conform-registry-bench-"))
    root.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(root).free
    if free < 8 * size + 1e9:
        sys.exit(f"Not enough disk in {root}: need about {8 * size / 1e9:.1f} GB + 1 GB, have "
                 f"{free / 1e9:.1f} GB. Use --size or --dir.")
    print(f"machine: {machine()}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"threads: client {args.workers} transfer threads + main; server 1 uvicorn process "
          "(asyncio loop + anyio thread pool of 40), 0 validation workers; "
          f"chunk {chunk / 2**20:g} MiB; loopback 127.0.0.1; SQLite; blobs on the same disk")
    print(f"{'case':<12}{'files':>7}{'MB':>8}{'copy MB/s':>11}{'upload MB/s':>13}{'x copy':>8}"
          f"{'pull MB/s':>11}{'x copy':>8}")
    results = {}
    try:
        for n_files in (1, args.files):
            r = run_case(root, size, n_files, args.workers, chunk)
            copy, up, down = (r["mb"] / r[k] for k in ("copy_s", "upload_s", "pull_s"))
            name = f"{n_files} file" + ("s" if n_files > 1 else "")
            print(f"{name:<12}{n_files:>7}{r['mb']:>8.0f}{copy:>11.0f}{up:>13.0f}{up / copy:>8.2f}"
                  f"{down:>11.0f}{down / copy:>8.2f}", flush=True)
            results[name] = {**r, "copy_mb_s": copy, "upload_mb_s": up, "pull_mb_s": down}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(json.dumps({"size_bytes": size, "chunk_bytes": chunk, "workers": args.workers,
                      "results": results}))


if __name__ == "__main__":
    main()
