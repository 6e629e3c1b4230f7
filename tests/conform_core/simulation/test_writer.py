"""write_study (`conform simulate`): the study folder is readable by others as the umask allows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_simulated_study_is_readable_by_group_and_others(tmp_path: Path, umask,
                                                        assert_modes) -> None:
    """Every file and folder `conform simulate --timeseries` writes, under the usual umask."""
    umask(0o022)  # inherited by the subprocess
    out = tmp_path / "study"
    done = subprocess.run(
        [sys.executable, "-m", "conform_core", "simulate", str(out), "--subjects", "1",
         "--units", "9", "--stimuli", "12", "--repeats", "2", "--timeseries", "--quiet"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    count = assert_modes(out, files=0o644, folders=0o755)
    assert count >= 12 and (out / "sub-01" / "func").is_dir()  # the nested NIfTI folder too
