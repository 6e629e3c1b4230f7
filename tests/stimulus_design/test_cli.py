"""`conform design` and `conform design check` through the real command line."""

from __future__ import annotations

import importlib.util
import json

import pytest
from typer.testing import CliRunner

from conform_core.cli import build_app, main
from conform_core.exceptions import ConformWarning

SMALL = ["--sites", "1", "--participants-per-site", "2", "--core", "6", "--per-participant", "20",
         "--overlap", "1", "--repeats", "2", "--sessions", "2", "--runs", "2",
         "--core-sessions", "1", "--min-session-repeats", "1"]


def _main(args: list[str], capsys) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    captured = capsys.readouterr()
    return int(exit_info.value.code), captured.out + captured.err


def test_help_explains_each_flag():
    result = CliRunner().invoke(build_app(), ["design", "--help"],
                                terminal_width=200)
    assert result.exit_code == 0
    for flag in ("--images", "--embeddings", "--ids", "--sites", "--participants-per-site",
                 "--core", "--per-participant", "--overlap", "--core-repeats", "--repeats",
                 "--sessions", "--runs", "--seed", "--out", "--config"):
        assert flag in result.output


def test_embeddings_run_and_check(pool_files, tmp_path, capsys):
    out = tmp_path / "pkg"
    code, text = _main(["design", "--embeddings", str(pool_files["emb"]), "--ids",
                        str(pool_files["ids"]), *SMALL, "--out", str(out)], capsys)
    assert code == 0, text
    assert "Covering radius" in text and (out / "design.json").is_file()
    code, text = _main(["design", "check", str(out)], capsys)
    assert code == 0 and "OK, no violations" in text


def test_impossible_design_exits_2_with_the_arithmetic(pool_files, tmp_path, capsys):
    code, text = _main(["design", "--embeddings", str(pool_files["emb"]), "--ids",
                        str(pool_files["ids"]), *SMALL, "--overlap", "3",
                        "--out", str(tmp_path / "pkg")], capsys)
    assert code == 2
    assert "--overlap=3 is larger than the number of participants: --sites=1 x " \
           "--participants-per-site=2 = 2. Use --overlap <= 2" in text
    assert "Traceback" not in text and not (tmp_path / "pkg").exists()


def test_bad_value_is_reported_with_its_flag(pool_files, tmp_path, capsys):
    """The library names the parameter; the command shows it as its flag (one table)."""
    code, text = _main(["design", "--embeddings", str(pool_files["emb"]), "--ids",
                        str(pool_files["ids"]), *SMALL, "--allocation", "prototype",
                        "--out", str(tmp_path / "pkg")], capsys)
    assert code == 2
    assert ("The --allocation option must be one of 'overlap', 'prototypes'; got 'prototype'. "
            "Did you mean 'prototypes'?") in " ".join(text.split())
    code, text = _main(["design", "--embeddings", str(pool_files["emb"]), "--ids",
                        str(pool_files["ids"]), *SMALL, "--runs", "0",
                        "--out", str(tmp_path / "pkg")], capsys)
    assert code == 2 and "The --runs option must be an int in [1, inf); got 0." in text
    assert not (tmp_path / "pkg").exists()


def test_flag_table_names_real_options():
    """Every flag of the table is an option of `conform design`."""
    from stimulus_design._cli import FLAGS

    result = CliRunner().invoke(build_app(), ["design", "--help"], terminal_width=300)
    for flag in FLAGS.values():
        assert flag in result.output, flag


def test_missing_input_exits_2(tmp_path, capsys):
    code, text = _main(["design", "--out", str(tmp_path / "pkg")], capsys)
    assert code == 2 and "Give exactly one pool: --images=DIR, --list=FILE or --embeddings=FILE" in text


def test_config_file_with_flags_winning(pool_files, tmp_path, capsys):
    config = tmp_path / "study.toml"
    config.write_text(
        f'embeddings = "{pool_files["emb"].name}"\nids = "{pool_files["ids"].name}"\n'
        'participants-per-site = 2\ncore = 6\nper_participant = 20\noverlap = 1\nrepeats = 2\n'
        'sessions = 2\nruns = 2\ncore-sessions = 1\nmin-session-repeats = 1\nseed = 3\n')
    code, text = _main(["design", "--config", str(config), "--seed", "11",
                        "--out", str(tmp_path / "pkg")], capsys)
    assert code == 0, text
    params = json.loads((tmp_path / "pkg" / "design.json").read_text())["parameters"]
    assert params["seed"] == 11 and params["core"] == 6


def test_unknown_config_key_is_named(tmp_path, capsys):
    config = tmp_path / "study.toml"
    config.write_text("coer = 5\n")
    code, text = _main(["design", "--config", str(config), "--out", str(tmp_path / "x")], capsys)
    assert code == 2 and "unknown key 'coer'" in text and "Did you mean 'core'" in text


def test_check_lists_violations_and_exits_2(pool_files, tmp_path, capsys):
    out = tmp_path / "pkg"
    _main(["design", "--embeddings", str(pool_files["emb"]), "--ids", str(pool_files["ids"]),
           *SMALL, "--out", str(out)], capsys)
    (out / "stimuli.tsv").write_text("stimulus_id\tsource\n")
    code, text = _main(["design", "check", str(out)], capsys)
    assert code == 2
    assert "stimuli.tsv: SHA-256 differs from SHA256SUMS" in text and "violation(s)" in text


def test_check_of_a_folder_that_is_not_a_package(tmp_path, capsys):
    code, text = _main(["design", "check", str(tmp_path)], capsys)
    assert code == 2 and "design.json is missing" in text


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("torch", "open_clip")),
    reason="embedding images uses the clip plugin: needs torch and open_clip, from the [clip] "
           "extra (pip install 'conform-fmri[clip]')")
def test_image_folder_with_corrupt_and_duplicate_files(image_folder, tmp_path, capsys):
    """The real path: images -> clip plugin (tiny untrained ViT) -> package that passes check."""
    out = tmp_path / "pkg"
    args = ["design", "--images", str(image_folder["folder"]), "--model",
            str(image_folder["config"]), "--allow-untrained", "--cache-dir",
            str(image_folder["cache"]), "--device", "cpu", *SMALL, "--out", str(out)]
    with pytest.warns(ConformWarning, match="meaningless"):
        code, text = _main(args, capsys)
    assert code == 0, text
    assert "Skipped unreadable image broken.jpg" in text
    assert "1 duplicate file(s)" in text
    design = json.loads((out / "design.json").read_text())
    assert design["inputs"]["n_usable"] == 60
    record = design["inputs"]["features"]
    assert record["n_computed"] in (0, 60)
    assert record["plugin"] == "clip" and record["version"] and len(record["fingerprint"]) == 64
    assert record["params"]["allow_untrained"] is True and record["params"]["device"] == "cpu"
    code, text = _main(["design", "check", str(out), "--images", str(image_folder["folder"])],
                       capsys)
    assert code == 0, text
    # a second run finds every embedding in the cache
    with pytest.warns(ConformWarning):
        code, text = _main([*args[:-1], str(tmp_path / "again")], capsys)
    again = json.loads((tmp_path / "again" / "design.json").read_text())
    assert code == 0 and again["inputs"]["features"]["n_computed"] == 0
    assert (out / "stimuli.tsv").read_bytes() == (tmp_path / "again" / "stimuli.tsv").read_bytes()


def _stimuli_columns(pkg, names=("stimulus_id", "group", "participants")):
    lines = (pkg / "stimuli.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    keep = [header.index(n) for n in names]
    return [tuple(row.split("\t")[i] for i in keep) for row in lines[1:]]


def test_parquet_embeddings_with_metadata_columns(pool_files, tmp_path, capsys):
    """Parquet input (`id`, `embedding` list column, optional category/exclude columns)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    x = np.load(pool_files["emb"])
    ids = pool_files["ids"].read_text().split()
    table = pa.table({"id": ids, "embedding": [row.tolist() for row in x],
                      "category": ["animal" if i % 3 else "scene" for i in range(len(ids))],
                      "exclude": [int(i < 10) for i in range(len(ids))]})
    parquet = tmp_path / "emb.parquet"
    pq.write_table(table, parquet)

    out_pq = tmp_path / "pkg-parquet"
    code, text = _main(["design", "--embeddings", str(parquet), *SMALL, "--stratify",
                        "--out", str(out_pq)], capsys)
    assert code == 0, text
    code, text = _main(["design", "check", str(out_pq)], capsys)
    assert code == 0 and "OK, no violations" in text
    chosen = {row[0] for row in _stimuli_columns(out_pq, ("source",))}
    assert chosen and chosen <= set(ids[10:])              # `exclude` column honoured
    design = json.loads((out_pq / "design.json").read_text())
    assert design["inputs"]["n_usable"] == len(ids) - 10

    # the same pool as .npy + ids + a metadata CSV gives the same selection and allocation
    out_npy = tmp_path / "pkg-npy"
    code, text = _main(["design", "--embeddings", str(pool_files["emb"]), "--ids",
                        str(pool_files["ids"]), "--metadata", str(pool_files["meta"]), *SMALL,
                        "--stratify", "--out", str(out_npy)], capsys)
    assert code == 0, text
    assert _stimuli_columns(out_pq) == _stimuli_columns(out_npy)


def test_features_plugin_is_chosen_by_name(image_folder, tmp_path, capsys):
    code, text = _main(["design", "--images", str(image_folder["folder"]), "--features", "clop",
                        *SMALL, "--out", str(tmp_path / "pkg")], capsys)
    assert code == 2 and "clop" in text and "clip" in text
    assert not (tmp_path / "pkg").exists()


@pytest.mark.parametrize("param,expected", [
    ("batch_sise=3", ["--feature-param", "batch_sise", "batch_size"]),
    ("batch_size=0", ["--batch-size", "got 0"]),  # an alias flag names it
    ("batch_size", ["--feature-param", "KEY=VALUE"]),
])
def test_feature_params_are_checked_against_the_plugin(image_folder, tmp_path, capsys, param,
                                                       expected):
    code, text = _main(["design", "--images", str(image_folder["folder"]), "--feature-param",
                        param, *SMALL, "--out", str(tmp_path / "pkg")], capsys)
    assert code == 2, text
    for word in expected:
        assert word in text
    assert not (tmp_path / "pkg").exists()


def test_feature_params_merge_config_aliases_and_flags(tmp_path):
    from stimulus_design._cli import merge_settings, parse_feature_params

    config = tmp_path / "design.toml"
    config.write_text('features = "clip"\nbatch_size = 8\n[feature_params]\ndevice = "cpu"\n'
                      'model = "RN50"\n')
    flags = {"model": None, "batch_size": 16, "feature_params": parse_feature_params(
        ["model='ViT-B-16'", "allow-untrained=true"])}
    s = merge_settings(flags, config)
    assert s["features"] == "clip"
    assert s["feature_params"] == {"device": "cpu", "model": "ViT-B-16", "batch_size": 16,
                                   "allow_untrained": True}
