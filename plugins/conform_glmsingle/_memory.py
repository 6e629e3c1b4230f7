"""Peak memory of a native GLMsingle fit, predicted before the fit, and chunking for a budget.

The formula is the one documented in docs/glmsingle.md ("Memory")::

    bytes ≈ 4·V·(ΣT + k·N + R·H) + 32·H·Σ_r T_r·n_r
            + max(8·c·(ΣT + 8·N + n_max·(L + H)), 24·V·T_max)

with V units, run r of T_r time points and n_r trials (ΣT, N = Σ n_r, T_max and n_max over
the R runs), H library HRFs of L samples, k returned types and c = min(chunklen, 4096, V)
units per block. The first term is the input (float32) and the outputs (float32 betas of each
returned type, type B's R² per run and HRF); the second the design side (convolved trial
regressors per HRF and run, their projections and Gram inverses, float64), built once; the
third the larger of the working set of one block (float64) and the noise-pool PCA of types
C/D (one run of every unit in float64, with two temporaries). The interpreter and the
libraries add :data:`BASELINE_BYTES` on top (resident memory, not numpy's).
"""

from __future__ import annotations

from collections.abc import Sequence

from conform_core.exceptions import ParameterError
from conform_core.memory import format_bytes, parse_bytes

from ._pipeline import MAX_BLOCK

__all__ = ["BASELINE_BYTES", "MAX_BLOCK", "chunk_for_budget", "format_bytes", "parse_bytes",
           "predict_peak_bytes"]

#: Units per block the fit never exceeds, whatever ``chunklen`` (keeps blocks in cache).
#: Resident memory of the interpreter with numpy, scipy and nibabel loaded, before any data
#: (measured 0.2-0.25 GB on Linux; rounded up).
BASELINE_BYTES = 256 * 1024**2

def _terms(n_units: int, n_times: Sequence[int], n_trials: Sequence[int], n_types: int,
           n_hrfs: int, hrf_length: int, denoise: bool) -> tuple[int, int, int]:
    """Return (fixed bytes, bytes per unit of block size, noise-pool PCA bytes)."""
    if n_units < 1 or not n_times or len(n_times) != len(n_trials):
        raise ParameterError(
            f"predict_peak_bytes needs n_units >= 1 and one trial count per run; got "
            f"n_units={n_units}, {len(n_times)} run length(s), {len(n_trials)} trial count(s).")
    total_t, n, runs = int(sum(n_times)), int(sum(n_trials)), len(n_times)
    largest = int(max(n_trials))
    design = 32 * n_hrfs * sum(int(t) * int(k) for t, k in zip(n_times, n_trials))
    fixed = 4 * n_units * (total_t + max(n_types, 1) * n + runs * n_hrfs) + design
    per_unit = 8 * (total_t + 8 * n + largest * (hrf_length + n_hrfs))
    pool = 24 * n_units * int(max(n_times)) if denoise else 0
    return fixed, per_unit, pool


def predict_peak_bytes(n_units: int, n_times: Sequence[int], n_trials: Sequence[int], *,
                       n_types: int = 1, chunklen: int = 50000, n_hrfs: int = 20,
                       hrf_length: int = 50, denoise: bool = True) -> int:
    """Predict the peak memory (bytes) numpy allocates during a native fit.

    Parameters
    ----------
    n_units : int
        Units (voxels, vertices, grayordinates) V.
    n_times : sequence of int
        Time points of each run.
    n_trials : sequence of int
        Trials of each run.
    n_types : int, default=1
        GLMsingle types returned (k).
    chunklen : int, default=50000
        The ``chunklen`` option; the fit uses blocks of ``min(chunklen, 4096)`` units.
    n_hrfs : int, default=20
        HRFs in the library (H; 1 with ``wantlibrary=0``).
    hrf_length : int, default=50
        Samples per HRF at the TR (L; about 32 s / TR).
    denoise : bool, default=True
        Whether type C or D is fitted (the noise-pool PCA); an upper bound when unsure.

    Returns
    -------
    int
        The formula of docs/glmsingle.md "Memory" (numpy's allocations; add
        :data:`BASELINE_BYTES` for the process's resident size).
    """
    fixed, per_unit, pool = _terms(n_units, n_times, n_trials, n_types, n_hrfs, hrf_length,
                                   denoise)
    block = max(1, min(int(chunklen), MAX_BLOCK, n_units))
    return fixed + max(per_unit * block, pool)


def chunk_for_budget(budget_bytes: int, n_units: int, n_times: Sequence[int],
                     n_trials: Sequence[int], *, n_types: int = 1, n_hrfs: int = 20,
                     hrf_length: int = 50, denoise: bool = True,
                     baseline: int = BASELINE_BYTES) -> int:
    """Return the largest ``chunklen`` whose predicted peak (plus ``baseline``) fits the budget.

    Blocks larger than :data:`MAX_BLOCK` (or than ``n_units``) are never used, so the answer
    is at most ``min(4096, n_units)``. Parameters as :func:`predict_peak_bytes`; ``baseline``
    is the interpreter's share.

    Raises
    ------
    ParameterError
        If even blocks of one unit do not fit: the input and outputs alone exceed the budget.
        The message gives the smallest budget that works and how to lower it.
    """
    fixed, per_unit, pool = _terms(n_units, n_times, n_trials, n_types, n_hrfs, hrf_length,
                                   denoise)
    room = int(budget_bytes) - baseline - fixed
    block = room // per_unit if room >= pool else 0
    if block < 1:
        need = fixed + max(per_unit, pool) + baseline
        raise ParameterError(
            f"--mem {format_bytes(budget_bytes)} is too small: the data, the design and the "
            f"outputs alone need {format_bytes(fixed)} ({n_units} units x {int(sum(n_times))} "
            f"time points, {int(sum(n_trials))} trials, {max(n_types, 1)} type(s) kept), plus "
            f"{format_bytes(baseline)} for Python and its libraries: at least "
            f"{format_bytes(need)} in all (blocks of one unit). Raise --mem to "
            f"{format_bytes(need)} or more, keep fewer --types, or split the units (e.g. one "
            "hemisphere or a mask) into separate runs of the command.")
    return int(min(block, MAX_BLOCK, n_units))
