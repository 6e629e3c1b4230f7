"""conform_core.memory: data sizes, memory sizes as text, the memory available; the defaults."""

from __future__ import annotations

import pytest

from conform_core.components import Component, Dataset
from conform_core.data import Subject
from conform_core.exceptions import ParameterError
from conform_core.memory import DataSize, available_bytes, format_bytes, parse_bytes


def test_sizes_parse_in_binary_units():
    assert parse_bytes("8GB") == 8 * 1024**3
    assert parse_bytes("1.5g") == int(1.5 * 1024**3)
    assert parse_bytes(" 500 MiB ") == 500 * 1024**2
    assert parse_bytes("2T") == 2 * 1024**4
    assert parse_bytes("4096") == 4096


@pytest.mark.parametrize("bad", ["", "lots", "-1GB", "0", "8XB", "1e3GB", "nan"])
def test_bad_sizes_are_refused_with_examples(bad):
    with pytest.raises(ParameterError, match=r"--mem must be a memory size such as 8GB"):
        parse_bytes(bad)


def test_sizes_print_short_and_round_trip():
    assert format_bytes(1536 * 1024**2) == "1.50 GB"
    assert format_bytes(3 * 1024**4) == "3.00 TB"
    assert format_bytes(2048) == "2.00 KB"
    assert format_bytes(12) == "12 B"
    assert parse_bytes(format_bytes(5 * 1024**3).replace(" ", "")) == 5 * 1024**3


def test_glmsingle_uses_the_same_functions():
    from conform_glmsingle import _memory

    assert _memory.parse_bytes is parse_bytes and _memory.format_bytes is format_bytes


def test_available_memory_is_known_here():
    assert available_bytes() > 0


def test_data_size_describes_itself_per_stage():
    size = DataSize(n_units=91282, n_conditions=1000, n_trials=3, n_subjects=4,
                    n_timepoints=1800, n_runs=12, n_events=3000)
    assert size.describe() == "91282 units x 1000 conditions x 3 trials"
    assert size.describe("aligner") == "91282 units x 1000 conditions x 3 trials x 4 subjects"
    assert size.describe("glm") == "91282 units x 1800 time points in 12 run(s), 3000 trials"
    # without a time series the GLM sees the trials' size
    assert DataSize(10, 5, 2).describe("glm") == "10 units x 5 conditions x 2 trials"


class _Bare(Dataset):
    def subjects(self) -> list[str]:
        return ["sub-01"]

    def _load_subject(self, name: str) -> Subject:  # pragma: no cover - never loaded
        raise AssertionError(name)


def test_unknown_by_default():
    assert Component().peak_memory(DataSize(10, 5, 2)) is None
    assert _Bare().data_size("sub-01") is None
