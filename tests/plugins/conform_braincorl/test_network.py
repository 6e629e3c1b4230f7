"""The network: official sizes, order-free context, ln(L) attention scaling, linear readout."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conform_core.exceptions import ParameterError

torch = pytest.importorskip("torch")

from conform_braincorl.network import (  # noqa: E402
    BraInCoRLConfig,
    BraInCoRLNetwork,
    preset_config,
)


def _net(embed_dim: int = 6, seed: int = 0, **sizes: int) -> BraInCoRLNetwork:
    torch.manual_seed(seed)
    return BraInCoRLNetwork(preset_config("tiny", embed_dim=embed_dim, **sizes)).eval()


def test_clip_preset_has_the_published_size() -> None:
    # 20 layers of width 560, SwiGLU 2048, 4 registers: ~97.1 M parameters by the layer shapes
    # (the paper reports ~97.2 M for the CLIP model).
    n = preset_config("clip").n_parameters()
    assert 96.5e6 < n < 97.5e6


def test_readout_does_not_depend_on_the_order_of_the_context() -> None:
    net = _net()
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((3, 40, 6)).astype(np.float32))
    x = x / x.norm(dim=-1, keepdim=True)
    y = torch.from_numpy(rng.standard_normal((3, 40)).astype(np.float32))
    perm = torch.from_numpy(rng.permutation(40))
    with torch.no_grad():
        a, b = net(x, y), net(x[:, perm], y[:, perm])
    # float32 sums in another order differ by a few ulps (~1e-7 relative); 1e-5 is the bound
    assert (a - b).abs().max().item() < 1e-5


def test_attention_scales_queries_by_log_length_including_registers() -> None:
    net = _net(num_tsfm_layers=1)
    block = net.transformer[0]
    seen: list[int] = []
    block.register_forward_pre_hook(lambda mod, args: seen.append(args[0].shape[1]))
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.standard_normal((2, 11, 6)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((2, 11)).astype(np.float32))
    with torch.no_grad():
        net(x, y)
        assert seen == [11 + net.config.num_reg_tok]
        seq = torch.from_numpy(rng.standard_normal((2, 15, 64)).astype(np.float32))
        got = block(seq)
        # by hand: pre-LayerNorm, queries x ln(L) with L = 15, softmax(q k^T / sqrt(d_head)) v
        h = block.layer_norm_1(seq)
        w, bias = block.attn.in_proj_weight, block.attn.in_proj_bias
        q, k, v = (h @ w[i * 64:(i + 1) * 64].T + bias[i * 64:(i + 1) * 64] for i in range(3))
        q = (math.log(15) * h) @ w[:64].T + bias[:64]
        heads, d = block.attn.num_heads, 64 // block.attn.num_heads

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.reshape(2, 15, heads, d).transpose(1, 2)

        att = torch.softmax(split(q) @ split(k).transpose(-1, -2) / math.sqrt(d), dim=-1)
        mixed = (att @ split(v)).transpose(1, 2).reshape(2, 15, 64)
        out = seq + block.attn.out_proj(mixed)
        out = out + block.ffn(block.layer_norm_2(out))
    # float32 with different summation orders: agreement to ~1e-6, not bit-exact
    torch.testing.assert_close(got, out, rtol=1e-5, atol=1e-5)


def test_predict_is_the_linear_readout() -> None:
    readout = torch.randn(3, 7)
    query = torch.randn(3, 5, 6)
    expected = (query * readout[:, None, :6]).sum(-1) + readout[:, 6:]
    torch.testing.assert_close(BraInCoRLNetwork.predict(readout, query), expected)


def test_parameter_names_follow_the_official_layout() -> None:
    names = set(_net(num_tsfm_layers=2).state_dict())
    for name in ("cls_token", "early_layers.0.block.3.weight", "early_layers.0.bypass.weight",
                 "transformer.1.layer_norm_1.weight", "transformer.1.attn.in_proj_weight",
                 "transformer.1.attn.out_proj.bias", "transformer.1.ffn.linear1.weight",
                 "transformer.1.ffn.linear2.bias", "weight_pred.0.block.7.weight"):
        assert name in names


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"name": "huge"}, "preset"),
    ({"name": "tiny"}, "embed_dim"),
    ({"name": "clip", "embed_dim": 768}, "embed_dim"),
    ({"name": "tiny", "embed_dim": 6, "num_heads": 5}, "num_heads"),
    ({"name": "tiny", "embed_dim": 6, "dropout": 1.5}, "dropout"),
])
def test_bad_sizes_name_the_parameter(kwargs: dict, param: str) -> None:
    with pytest.raises(ParameterError) as info:
        preset_config(**kwargs)
    assert info.value.param == param


def test_unknown_setting_is_named() -> None:
    with pytest.raises(ParameterError, match="widthh"):
        BraInCoRLConfig.from_dict({**preset_config("tiny", embed_dim=4).as_dict(), "widthh": 3})
