"""The design package for other sites is readable by lab colleagues (it honours the umask)."""

from __future__ import annotations

from pathlib import Path

from stimulus_design import DesignInputs, DesignParams, run_design

from .conftest import write_pool

SMALL = {"sites": 1, "participants_per_site": 2, "core": 6, "per_participant": 20, "overlap": 1,
         "repeats": 2, "sessions": 2, "runs": 2, "core_sessions": 1, "min_session_repeats": 1,
         "seed": 3}


def test_package_files_and_folders_honour_the_umask(tmp_path: Path, umask, assert_modes) -> None:
    pool = write_pool(tmp_path)
    umask(0o022)
    out = tmp_path / "pkg"
    run_design(DesignParams(**SMALL), DesignInputs(embeddings=pool["emb"], ids=pool["ids"],
                                                   metadata=pool["meta"]), out)
    assert assert_modes(out, files=0o644, folders=0o755) > 10
    assert any(p.suffix == ".png" for p in out.rglob("*"))  # the coverage figure too
