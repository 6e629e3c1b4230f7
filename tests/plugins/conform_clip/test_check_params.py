"""ClipFeatures.check_params and check_stimuli: files and names checked without torch."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import numpy as np
import pytest
from conform_clip import ClipFeatures

from conform_core.data import StimulusSet
from conform_core.exceptions import DataFileError, ParameterError

BAD = [
    ({"model": 3, "allow_untrained": True}, ParameterError, "'model' parameter"),
    ({"model": "", "allow_untrained": True}, ParameterError, "'model' parameter"),
    ({"model": "ViT-B-23", "allow_untrained": True}, ParameterError, "Did you mean 'ViT-B-32'"),
    ({"model": "hf-hub:org/model", "allow_untrained": True}, ParameterError, "never downloads"),
    ({"model": "missing.json", "allow_untrained": True}, DataFileError,
     r"'model' parameter .*no such file"),
    ({"model": "local-dir:/no/such/folder"}, DataFileError, r"'model' parameter .*no such folder"),
    ({}, ParameterError, "needs weights=PATH.*never downloads"),
    ({"weights": "openai"}, DataFileError, r"'weights' parameter .*no such file.*'openai'"),
    ({"weights": "/path/to/open_clip_vit_b_32.pt"}, ParameterError,
     r"'weights' .* got '/path/to/open_clip_vit_b_32\.pt'\. That is a placeholder"),
    ({"allow_untrained": "yes"}, ParameterError, "'allow_untrained' parameter"),
    ({"allow_untrained": True, "batch_size": 0}, ParameterError, "'batch_size' parameter"),
    ({"allow_untrained": True, "batch_size": "64"}, ParameterError, "'batch_size' parameter"),
    ({"allow_untrained": True, "device": ""}, ParameterError, "'device' parameter .*; got ''"),
    ({"allow_untrained": True, "device": 0}, ParameterError, "'device' parameter .*; got 0"),
    ({"allow_untrained": True, "cache_dir": 5}, ParameterError, "'cache_dir' parameter"),
    ({"allow_untrained": True, "cache_dir": "/path/to/cache"}, ParameterError,
     "'cache_dir' .* placeholder"),
]


# open_clip's model names are read from its files (without importing torch): no list without it
_needs_open_clip = pytest.mark.skipif(
    importlib.util.find_spec("open_clip") is None,
    reason="the list of open_clip model names needs open_clip, from the [clip] extra "
           "(pip install 'conform-fmri[clip]')")
CASES = [pytest.param(p, e, m, id=repr(p),
                      marks=[_needs_open_clip] if p.get("model") == "ViT-B-23" else [])
         for p, e, m in BAD]


@pytest.mark.parametrize(("params", "error", "pattern"), CASES)
def test_bad_value_is_caught_naming_it(params, error, pattern):
    with pytest.raises(error, match=pattern):
        ClipFeatures(**params).check_params()


def test_cache_dir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "cache").write_text("")
    with pytest.raises(ParameterError, match=r"'cache_dir' .*That is a file"):
        ClipFeatures(allow_untrained=True, cache_dir=str(tmp_path / "cache")).check_params()


def test_errors_name_parameters_not_flags():
    """The library names the Python parameter; `conform design` maps it to its flag."""
    with pytest.raises(ParameterError) as info:
        ClipFeatures().check_params()
    assert info.value.param == "weights" and "--" not in str(info.value)
    assert "needs weights=PATH" in str(info.value) and "turn on allow_untrained" in str(info.value)
    flags = {"weights": "--weights", "allow_untrained": "--allow-untrained"}
    assert "needs --weights=PATH" in info.value.render(flags)
    assert "turn on --allow-untrained" in info.value.render(flags)


def test_valid_values_pass(tmp_path):
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    config = tmp_path / "tiny.json"
    config.write_text("{}")
    assert ClipFeatures(weights=str(weights)).check_params() is None
    assert ClipFeatures(model=str(config), allow_untrained=True,
                        cache_dir=str(tmp_path / "new")).check_params() is None
    assert ClipFeatures(model=f"local-dir:{tmp_path}").check_params() is None


def test_check_params_does_not_import_torch(tmp_path):
    """conform fit --check stays fast: checking a clip cell imports neither torch nor open_clip."""
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"")
    code = ("import sys; from conform_clip import ClipFeatures; "
            f"ClipFeatures(weights={str(weights)!r}).check_params(); "
            "print(sorted(m for m in ('torch', 'open_clip') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    assert out.stdout.strip() == "[]"


def test_check_stimuli_reports_missing_sources_and_files(tmp_path):
    clip = ClipFeatures(allow_untrained=True)
    image = tmp_path / "a.png"
    image.write_bytes(b"")
    clip.check_stimuli(StimulusSet(ids=["a"], sources=[str(image)]))
    with pytest.raises(DataFileError, match=r"4 of 5 stimuli have no source path "
                                            r"\(first: 'b', 'c', 'd'\).*stimuli_dir"):
        clip.check_stimuli(StimulusSet(ids=list("abcde"), sources=[str(image), "", "", "", ""]))
    missing = [str(tmp_path / f"{i}.png") for i in "bcde"]
    with pytest.raises(DataFileError, match=r"4 of 5 stimulus images do not exist \(first: "
                                            r"'.*b\.png', '.*c\.png', '.*d\.png'\)"):
        clip.check_stimuli(StimulusSet(ids=list("abcde"), sources=[str(image), *missing]))


def test_check_stimuli_trusts_checksummed_stimuli(tmp_path):
    """A stimulus with a SHA-256 may come from the cache, so its file is not required."""
    stimuli = StimulusSet(ids=["a"], sources=[str(tmp_path / "gone.png")], sha256=["0" * 64],
                          embeddings=np.ones((1, 2)))
    ClipFeatures(allow_untrained=True).check_stimuli(stimuli)
