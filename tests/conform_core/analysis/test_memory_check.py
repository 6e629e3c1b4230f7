"""The memory check of `conform fit`: every known estimate against the budget, before any work.

Fake components declare chosen figures (a psn-like 14 dense units x units float64 matrices),
and a fake dataset a chosen size that it reports without loading (loading a subject fails).
"""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import typer
from conform_align.procrustes import ProcrustesAligner
from conform_baselines.ridge import RidgeEncoder
from conform_baselines.trial_average import TrialAverageDenoiser
from conform_glmsingle import GLMsingleDenoiser
from conform_synthetic.dataset import SyntheticDataset

from conform_core.analysis import check_memory, make_plan, prepare_analysis
from conform_core.cli import build_app, run_app
from conform_core.data import Subject
from conform_core.exceptions import SpecError
from conform_core.memory import DataSize, format_bytes
from conform_core.registry import ComponentRegistry
from conform_core.spec import parse_spec

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SIZE = DataSize(n_units=5000, n_conditions=800, n_trials=3, n_timepoints=1200, n_runs=6,
                n_events=2400)
"""What every subject of the fake dataset holds (whatever the simulator settings say)."""


def dense_bytes(size: DataSize) -> int:
    """The fake 'dense' denoiser's peak: 14 units x units float64 matrices (psn-like)."""
    return 14 * 8 * size.n_units**2


DENSE = dense_bytes(SIZE)  # 2.61 GiB
ALIGNER_SEEN: list[DataSize] = []


class SizedDataset(SyntheticDataset):
    """The in-memory simulator, with a known size per subject and loading forbidden."""

    unknown: frozenset[str] = frozenset()

    def data_size(self, name: str) -> DataSize | None:
        return None if name in self.unknown else SIZE

    def roi_labels(self) -> list[str] | None:
        return None  # unknown: [dataset] rois is taken as it is

    def _load_subject(self, name: str) -> Subject:
        raise AssertionError(f"the memory check loaded subject {name!r}")


class PartlyKnownDataset(SizedDataset):
    """A dataset that knows the size of every subject but sub-02."""

    unknown = frozenset({"sub-02"})


class UnknownDataset(SizedDataset):
    """A dataset that knows no size."""

    def data_size(self, name: str) -> DataSize | None:
        return None


class DenseDenoiser(TrialAverageDenoiser):
    """Declares the psn-like figure of :func:`dense_bytes`."""

    def peak_memory(self, size: DataSize) -> int | None:
        return dense_bytes(size)


class SilentDenoiser(TrialAverageDenoiser):
    """Knows no figure (whatever the plugin it derives from declares)."""

    def peak_memory(self, size: DataSize) -> int | None:
        return None


class SmallEncoder(RidgeEncoder):
    """Declares 1 MiB."""

    def peak_memory(self, size: DataSize) -> int | None:
        return 1024**2


class SeeingAligner(ProcrustesAligner):
    """Records the size it is asked about; declares 1 KiB per unit and subject."""

    def peak_memory(self, size: DataSize) -> int | None:
        ALIGNER_SEEN.append(size)
        return 1024 * size.n_units * size.n_subjects


class SeriesGLM(GLMsingleDenoiser):
    """Declares 8 bytes per unit and time point (None without time series)."""

    def peak_memory(self, size: DataSize) -> int | None:
        return 8 * size.n_units * size.n_timepoints or None


SPEC = """
{glm}
denoiser = {denoiser}
encoder = "small-ridge"
features = "precomputed"
{aligner}

[analysis]
name = "memory"
seed = 0

[dataset]
plugin = "{dataset}"

[dataset.params]
n_subjects = 3
n_units = 12
n_stimuli = 40
n_shared = 20
"""

FAKES: dict[tuple[str, str], type[Any]] = {
    ("dataset", "sized"): SizedDataset,
    ("dataset", "partly-known"): PartlyKnownDataset,
    ("dataset", "unknown-size"): UnknownDataset,
    ("denoiser", "dense"): DenseDenoiser,
    ("encoder", "small-ridge"): SmallEncoder,
    ("aligner", "seeing"): SeeingAligner,
    ("denoiser", "series-glm"): SeriesGLM,
    ("denoiser", "silent"): SilentDenoiser,
}


@pytest.fixture
def registry() -> ComponentRegistry:
    """The installed components plus the fakes (the process-wide registry is not touched)."""
    from conform_core.plugins import default_registry

    made = ComponentRegistry()
    for entry in default_registry().entries():
        made.add(entry.kind, entry.name, entry.cls)
    for (kind, name), cls in FAKES.items():
        made.add(kind, name, cls)
    return made


def spec_text(dataset: str = "sized", denoiser: str = '["dense", "silent"]',
              aligner: str = "", glm: str = "") -> str:
    """:data:`SPEC` over ``dataset``, with these stages (TOML values; "" leaves one out)."""
    return textwrap.dedent(SPEC).format(dataset=dataset, denoiser=denoiser,
                                        aligner=f"aligner = {aligner}" if aligner else "",
                                        glm=f"glm = {glm}" if glm else "")


@pytest.fixture
def plan_of(registry: ComponentRegistry) -> Callable[..., Any]:
    """``plan_of(**spec_text's arguments)``: the plan of that spec, with the fakes."""

    def make(**kwargs: str) -> Any:
        return make_plan(parse_spec(tomllib.loads(spec_text(**kwargs))), registry)

    return make


def test_every_cell_within_the_budget_passes_and_reports_the_largest(plan_of):
    plan = plan_of()
    found = check_memory(plan, budget=DENSE)  # exactly the figure: fits
    # 3 subjects x (dense + the encoder); 'silent' knows no figure and is skipped
    assert found.n_checked == 6 and found.largest == DENSE
    assert found.where == "denoiser 'dense' on 'sub-01'"
    assert format_bytes(DENSE) in found.summary() and "6 cell(s)" in found.summary()


def test_a_cell_over_the_budget_is_refused_with_the_figures_and_the_fixes(plan_of):
    plan = plan_of()
    budget = DENSE // 2
    with pytest.raises(SpecError) as caught:
        check_memory(plan, budget=budget)
    message = str(caught.value)
    for part in ("Stage 'denoiser' (dense)", "subject 'sub-01'",
                 "5000 units x 800 conditions x 3 trials", format_bytes(DENSE),
                 format_bytes(budget), "Nothing was run", "rois", "--mem 3GB",
                 "this spec's 'silent' fits", "2 other cell(s)"):
        assert part in message, part
    # the hint on units: 14 * 8 * n^2 <= DENSE / 2  <=>  n <= 5000 / sqrt(2) = 3535.5
    assert "about 3535 units fit" in message
    assert "--workers" not in message  # one task at a time: fewer workers cannot help


def test_the_refusal_names_the_lighter_modes_that_fit(plan_of):
    """Exact psn on all 5,000 units does not fit; 1,000-unit pieces and low rank do (or not)."""
    plan = plan_of(denoiser='[{plugin = "psn", params = {max_parcel = 5000}}]')
    need = {mode: plan.build("denoiser", plan.stages["denoiser"][0]).set_params(**mode_params)
            .peak_memory(SIZE) for mode, mode_params in
            (("full", {}), ("pieces", {"max_parcel": 1000}),
             ("lowrank", {"covariance": "lowrank"}))}
    budget = max(need["pieces"], need["lowrank"])
    assert need["full"] > budget
    with pytest.raises(SpecError) as caught:
        check_memory(plan, budget=budget)
    message = str(caught.value)
    assert "a lighter mode of 'psn': --set denoiser.max_parcel=1000" in message
    assert f"({format_bytes(need['pieces'])})" not in message  # figures are 'about ...'
    assert f"about {format_bytes(need['lowrank'])}" in message
    assert "--set denoiser.covariance=lowrank" in message
    assert "another denoiser (--set denoiser=PLUGIN)" in message
    def build() -> Any:
        return plan.build("denoiser", plan.stages["denoiser"][0])

    lightest = min(build().set_params(**settings).peak_memory(SIZE)
                   for settings in build().lighter_settings(SIZE))
    with pytest.raises(SpecError) as caught:  # none fits: no lighter mode is named
        check_memory(plan, budget=lightest - 1)
    assert "lighter mode of 'psn' (--set denoiser.PARAM=VALUE)" in str(caught.value)


def test_the_budget_is_shared_by_the_tasks_that_run_at_once(plan_of):
    plan = plan_of()
    budget = DENSE * 3 // 2
    assert check_memory(plan, budget=budget, tasks_at_once=1).largest == DENSE
    with pytest.raises(SpecError, match=r"/ 2 tasks at once.*--workers 1"):
        check_memory(plan, budget=budget, tasks_at_once=2)
    # on a cluster (--scheduler) --mem is each worker's memory, whatever the workers
    assert check_memory(plan, budget=budget, tasks_at_once=8, workers_known=False).n_checked


def test_unknown_sizes_and_estimates_are_skipped(plan_of):
    tiny = 1024
    found = check_memory(plan_of(dataset="unknown-size"), budget=tiny)
    assert found.n_checked == 0 and "not checked" in found.summary()
    with pytest.raises(SpecError, match="subject 'sub-01'") as caught:
        check_memory(plan_of(dataset="partly-known"), budget=tiny)
    assert "sub-02" not in str(caught.value)
    # 'silent' declares no figure: only the encoder's 1 MiB is known
    found = check_memory(plan_of(denoiser='"silent"'), budget=2 * 1024**2)
    assert found.n_checked == 3 and found.largest == 1024**2


def test_scheduler_without_mem_checks_nothing(plan_of):
    found = check_memory(plan_of(), budget=None, workers_known=False)
    assert found.n_checked == 0 and "--mem" in found.summary()


def test_aligners_are_asked_about_every_subject_at_once(plan_of):
    ALIGNER_SEEN.clear()
    check_memory(plan_of(aligner='"seeing"'), budget=10 * DENSE)
    assert len(ALIGNER_SEEN) == 3  # once per subject
    assert all(s.n_subjects == 3 and s.n_units == SIZE.n_units for s in ALIGNER_SEEN)


def test_the_glm_stage_is_checked_on_the_time_series(plan_of):
    need = 8 * SIZE.n_units * SIZE.n_timepoints
    assert check_memory(plan_of(glm='"series-glm"'), budget=DENSE).n_checked == 9  # 3 x 3
    with pytest.raises(SpecError) as caught:  # 'silent' knows no figure: the GLM is refused
        check_memory(plan_of(glm='"series-glm"', denoiser='"silent"'), budget=need - 1)
    message = str(caught.value)
    assert "Stage 'glm' (series-glm)" in message and format_bytes(need) in message
    assert "5000 units x 1200 time points in 6 run(s), 2400 trials" in message


def test_with_rois_the_dataset_does_not_read_only_the_glm_is_checked(plan_of):
    # the units left after [dataset] rois are known only once a subject is loaded; the GLM
    # stage runs before the ROIs are taken, on every unit
    plan = plan_of(glm='"series-glm"')
    restricted = replace(plan, rois=("V1",))
    object.__setattr__(restricted, "_dataset", plan.dataset())
    found = check_memory(restricted, budget=DENSE)
    assert found.n_checked == 3 and found.where.startswith("glm")


# --- conform fit --------------------------------------------------------------------------


@pytest.fixture
def installed() -> Iterator[None]:
    """The fakes in the process-wide registry (as installed plugins would be), then forgotten."""
    from conform_core.plugins import default_registry, reset_default_registry

    reset_default_registry()
    for (kind, name), cls in FAKES.items():
        default_registry().add(kind, name, cls)
    try:
        yield
    finally:
        reset_default_registry()


def _spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "memory.toml"
    path.write_text(spec_text())
    return path


def test_fit_refuses_before_any_work_and_exits_2(installed, tmp_path, capsys):
    spec = _spec_file(tmp_path)
    app = typer.main.get_command(build_app())
    code = run_app(app, ["fit", str(spec), "--out", str(tmp_path / "out"), "--mem", "1GB"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Stage 'denoiser' (dense)" in err and format_bytes(DENSE) in err and "1.00 GB" in err
    assert not (tmp_path / "out").exists()  # and no subject was loaded (SizedDataset)
    code = run_app(app, ["fit", str(spec), "--check", "--mem", "8GB", "--workers", "4"])
    assert code == 2 and "/ 4 tasks at once" in capsys.readouterr().err


def test_fit_check_prints_one_memory_line_when_everything_fits(installed, tmp_path, capsys):
    spec = _spec_file(tmp_path)
    app = typer.main.get_command(build_app())
    code = run_app(app, ["fit", str(spec), "--out", str(tmp_path / "out"), "--check",
                         "--mem", "8GB"])
    out = capsys.readouterr().out
    assert code == 0, out
    memory = [line for line in out.splitlines() if line.startswith("Memory:")]
    assert len(memory) == 1 and format_bytes(DENSE) in memory[0]


def test_fit_refuses_a_bad_mem(installed, tmp_path, capsys):
    code = run_app(typer.main.get_command(build_app()),
                   ["fit", str(_spec_file(tmp_path)), "--check", "--mem", "lots"])
    assert code == 2 and "--mem must be a memory size" in capsys.readouterr().err


def test_prepare_analysis_passes_the_budget_and_the_workers(installed, tmp_path):
    spec = _spec_file(tmp_path)
    job = prepare_analysis(spec, out=tmp_path / "out", mem=2 * DENSE, workers=2)
    assert job.memory is not None and job.memory.per_task == DENSE
    with pytest.raises(SpecError, match="tasks at once"):
        prepare_analysis(spec, out=tmp_path / "out", mem=2 * DENSE, workers=3)


def test_no_more_tasks_share_the_budget_than_there_are_cells(installed, tmp_path):
    """3 subjects x 2 denoisers: 6 cells can run at once, however many workers there are."""
    job = prepare_analysis(_spec_file(tmp_path), out=tmp_path / "out", mem=60 * DENSE,
                           workers=16)
    assert job.memory is not None and job.memory.tasks_at_once == 6
    assert job.memory.per_task == 10 * DENSE
