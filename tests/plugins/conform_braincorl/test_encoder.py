"""The braincorl encoder: readout from one forward pass, exact linear predict, clear refusals."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from conform_core.exceptions import ConformWarning, ParameterError, ShapeError
from conform_core.plugins import default_registry

torch = pytest.importorskip("torch")

from conform_braincorl import BraInCoRLEncoder  # noqa: E402
from conform_braincorl.checkpoint import load_checkpoint  # noqa: E402
from conform_braincorl.tasks import unit_normalize  # noqa: E402
from conform_braincorl.testing import tiny_untrained_checkpoint  # noqa: E402

E = 6


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_untrained_checkpoint(tmp_path_factory.mktemp("ckpt"), embed_dim=E,
                                     feature_space="precomputed")


def _data(n: int = 30, units: int = 9, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = unit_normalize(rng.standard_normal((n, E)))
    Y = X @ rng.standard_normal((E, units)) + 0.3 * rng.standard_normal((n, units))
    return X.astype(np.float32), Y.astype(np.float32)


def test_registered_as_encoder() -> None:
    assert default_registry().get("encoder", "braincorl") is BraInCoRLEncoder


def test_readout_is_the_network_output_and_predict_is_linear(ckpt: Path) -> None:
    X, Y = _data()
    enc = BraInCoRLEncoder(checkpoint=ckpt).fit(X, Y)
    assert enc.coef_.shape == (9, E) and enc.intercept_.shape == (9,)
    net = load_checkpoint(ckpt).network
    with torch.no_grad():
        x = torch.from_numpy(X).expand(9, -1, -1)
        readout = net(x, torch.from_numpy(np.ascontiguousarray(Y.T)))
        direct = _network_predict(readout, torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(enc.coef_, readout[:, :-1].numpy(), rtol=1e-5, atol=1e-6)
    Xq = _data(12, seed=5)[0]
    np.testing.assert_array_equal(enc.predict(Xq), unit_normalize(Xq) @ enc.coef_.T
                                  + enc.intercept_)
    # against the network's own predict: float32, different summation order
    np.testing.assert_allclose(enc.predict(X), direct, rtol=1e-4, atol=1e-5)


def _network_predict(readout: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    from conform_braincorl.network import BraInCoRLNetwork

    return BraInCoRLNetwork.predict(readout, X.expand(readout.shape[0], -1, -1)).T


def test_chunking_and_context_order_do_not_change_the_readout(ckpt: Path) -> None:
    X, Y = _data(40, 11)
    a = BraInCoRLEncoder(checkpoint=ckpt).fit(X, Y)
    b = BraInCoRLEncoder(checkpoint=ckpt, chunk_voxels=2).fit(X, Y)
    perm = np.random.default_rng(3).permutation(40)
    c = BraInCoRLEncoder(checkpoint=ckpt).fit(X[perm], Y[perm])
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6)
    assert np.abs(a.coef_ - c.coef_).max() < 1e-5  # the bound for a shuffled context


def test_features_are_unit_normalized_by_the_encoder(ckpt: Path) -> None:
    X, Y = _data()
    a = BraInCoRLEncoder(checkpoint=ckpt).fit(X, Y)
    b = BraInCoRLEncoder(checkpoint=ckpt).fit(3.0 * X, Y)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-6)
    np.testing.assert_allclose(a.predict(X), b.predict(7.0 * X), atol=1e-5)


def test_fewer_than_two_context_images(ckpt: Path) -> None:
    X, Y = _data()
    with pytest.raises(ShapeError, match="at least 2 context images.*; got 1"):
        BraInCoRLEncoder(checkpoint=ckpt).fit(X[:1], Y[:1])


def test_nan_features_are_refused(ckpt: Path) -> None:
    X, Y = _data()
    X[3, 2] = np.nan
    with pytest.raises(ShapeError, match="NaN"):
        BraInCoRLEncoder(checkpoint=ckpt).fit(X, Y)


def test_features_of_another_dimension_or_space(ckpt: Path) -> None:
    X, Y = _data()
    with pytest.raises(ShapeError, match="5 dimensions but .* reads 6-d"):
        BraInCoRLEncoder(checkpoint=ckpt).fit(X[:, :5], Y)
    with pytest.raises(ShapeError, match="'clip:ViT-B-32:abc' but .* 'precomputed'"):
        BraInCoRLEncoder(checkpoint=ckpt, feature_space="clip:ViT-B-32:abc").fit(X, Y)
    BraInCoRLEncoder(checkpoint=ckpt, feature_space="precomputed").fit(X, Y)


def test_nan_responses_refused_or_masked(ckpt: Path) -> None:
    X, Y = _data(30, 4)
    Y[[2, 7], 1] = np.nan
    Y[:, 3] = np.nan
    Y[5, 3] = 1.0
    with pytest.raises(ShapeError, match=r"unit\(s\) \[1, 3\].*nan_policy='mask'"):
        BraInCoRLEncoder(checkpoint=ckpt).fit(X, Y)
    with pytest.warns(ConformWarning, match="1 unit"):
        enc = BraInCoRLEncoder(checkpoint=ckpt, nan_policy="mask").fit(X, Y)
    keep = np.ones(30, dtype=bool)
    keep[[2, 7]] = False
    alone = BraInCoRLEncoder(checkpoint=ckpt).fit(X[keep], Y[keep][:, [1]])
    np.testing.assert_allclose(enc.coef_[1], alone.coef_[0], atol=1e-6)
    full = BraInCoRLEncoder(checkpoint=ckpt).fit(X, Y[:, [0, 2]])
    np.testing.assert_allclose(enc.coef_[[0, 2]], full.coef_, atol=1e-6)
    assert enc.masked_units_.tolist() == [3] and np.isnan(enc.coef_[3]).all()


def test_missing_checkpoint_parameter_and_path(tmp_path: Path) -> None:
    X, Y = _data()
    with pytest.raises(ParameterError, match="checkpoint"):
        BraInCoRLEncoder().fit(X, Y)
    with pytest.raises(Exception, match="nowhere"):
        BraInCoRLEncoder(checkpoint=tmp_path / "nowhere").fit(X, Y)


@pytest.mark.parametrize("suffix", [".npy", ".parquet", ".csv"])
def test_export_readout(ckpt: Path, tmp_path: Path, suffix: str) -> None:
    import pandas as pd

    X, Y = _data(20, 3)
    enc = BraInCoRLEncoder(checkpoint=ckpt).fit(X, Y)
    path = enc.export_readout(tmp_path / f"readout{suffix}", unit_ids=["v1", "v2", "v3"])
    if suffix == ".npy":
        table = np.load(path)
    else:
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        assert frame["unit"].tolist() == ["v1", "v2", "v3"]
        table = frame.drop(columns="unit").to_numpy()
    np.testing.assert_allclose(table[:, :-1], enc.coef_, rtol=1e-6)
    np.testing.assert_allclose(table[:, -1], enc.intercept_, rtol=1e-6)
    with pytest.raises(ParameterError, match=r"\.npy, \.parquet or \.csv"):
        enc.export_readout(tmp_path / "readout.txt")


def test_quiet_about_float64(ckpt: Path) -> None:
    X, Y = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = BraInCoRLEncoder(checkpoint=ckpt).fit(X.astype(np.float64), Y).predict(
            X.astype(np.float64))
    assert out.dtype == np.float64


def test_zero_feature_row_is_refused(ckpt: Path) -> None:
    X, Y = _data()
    X[4] = 0.0
    with pytest.raises(ShapeError, match=r"rows \[4\] are all zeros"):
        BraInCoRLEncoder(checkpoint=ckpt).fit(X, Y)
