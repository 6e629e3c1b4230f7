"""The BraInCoRL network: a transformer that reads (image, response) pairs and emits a readout.

One voxel's context is a set of N pairs (unit-normalised image embedding ``x_i`` of length E,
measured response ``y_i``). Each pair ``[x_i, y_i]`` becomes one token through a residual
MLP; ``num_reg_tok`` learnable register tokens are put in front; a pre-LayerNorm
transformer with SwiGLU feed-forward layers mixes them; the first register's output goes
through a second residual MLP to the "hyperweights" ``(w, b)`` of length E + 1. The voxel's
predicted response to any image ``x`` is then ``x · w + b``: query images never enter the
transformer. There is no positional encoding, so the readout does not depend on the order of
the context.

Attention logits are scaled by ``ln(L)``, L the sequence length *including the registers*:
the query copy of the normalised input is multiplied by ``ln(L)`` before the usual
``1/sqrt(head size)``, which keeps attention about equally sharp from 10 to 1,000+ context
images.

Parameter names and shapes follow the official implementation (``early_layers``,
``cls_token``, ``transformer.<i>.{layer_norm_1, attn, layer_norm_2, ffn}``, ``weight_pred``),
so a state dict saved by it loads here unchanged (:func:`conform_braincorl.load_official_checkpoint`).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from conform_core.exceptions import ParameterError

from ._torch import torch

nn = torch.nn
F = torch.nn.functional

__all__ = ["BraInCoRLConfig", "BraInCoRLNetwork", "PRESETS", "preset_config"]


@dataclass(frozen=True)
class BraInCoRLConfig:
    """Sizes of a BraInCoRL network, named as in the official code.

    Parameters
    ----------
    embed_dim : int
        E, the length of an image embedding (512 for the CLIP preset).
    internal_emb_dim : int
        D, the width of the transformer (E + 48 in the paper's presets).
    num_tsfm_layers : int
        Transformer blocks.
    tsfm_hidden_dim : int
        Hidden size of each SwiGLU feed-forward layer.
    num_reg_tok : int
        Register tokens put in front of the context; the first one is read out.
    num_heads : int
        Attention heads (``internal_emb_dim`` must be a multiple of it).
    early_hidden_dim : int
        Hidden size of the residual MLP that turns a context pair into a token.
    w_pred_hidden_dim : int
        Hidden size of the residual MLP that turns the register into ``(w, b)``.
    num_early_lyr, num_w_pred_layers : int
        Residual blocks in the input and output MLPs (1 in every published model).
    dropout : float
        Dropout in the residual blocks, on the input sequence and on attention.
    """

    embed_dim: int
    internal_emb_dim: int
    num_tsfm_layers: int
    tsfm_hidden_dim: int
    num_reg_tok: int
    num_heads: int
    early_hidden_dim: int
    w_pred_hidden_dim: int
    num_early_lyr: int = 1
    num_w_pred_layers: int = 1
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "dropout":
                if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                    raise ParameterError(param="dropout", value=value, owner="BraInCoRLConfig",
                                         allowed="a float in [0, 1)", fix="Use e.g. 0.0 or 0.1.")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ParameterError(param=f.name, value=value, owner="BraInCoRLConfig",
                                     allowed="an int >= 1", fix=f"Set {f.name} to a positive int.")
        if self.internal_emb_dim % self.num_heads:
            raise ParameterError(
                param="num_heads", value=self.num_heads, owner="BraInCoRLConfig",
                allowed=f"a divisor of internal_emb_dim={self.internal_emb_dim}",
                fix="Pick a head count that divides the width.")

    def as_dict(self) -> dict[str, Any]:
        """Return the sizes as a JSON-ready dict (what ``config.json`` stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> BraInCoRLConfig:
        """Build from a dict, naming unknown keys in the error."""
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ParameterError(
                f"Unknown BraInCoRL model setting(s) {unknown}; known: {sorted(names)}.",
                param=unknown[0], value=values[unknown[0]], owner="BraInCoRLConfig",
                fix="Remove or correct it.")
        return cls(**values)

    def n_parameters(self) -> int:
        """Return the number of trainable parameters of a network of this size."""
        return sum(p.numel() for p in BraInCoRLNetwork(self).parameters())


def _official(embed_dim: int, width: int) -> dict[str, int]:
    return dict(embed_dim=embed_dim, internal_emb_dim=width, num_tsfm_layers=20,
                tsfm_hidden_dim=2048, num_reg_tok=4, num_heads=10, early_hidden_dim=2 * width,
                w_pred_hidden_dim=2 * width)


#: Named sizes. ``clip``, ``dino`` and ``siglip`` are the published models (~97 M, ~112 M and
#: ~130 M parameters); ``tiny`` (~0.1 M for E = 64) is for tests and CPU experiments; ``small``
#: (~1 M) is a CPU model that still learns a useful prior in minutes. ``None`` in a preset's
#: ``embed_dim`` means "the features' dimension".
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": dict(embed_dim=None, internal_emb_dim=64, num_tsfm_layers=3, tsfm_hidden_dim=128,
                 num_reg_tok=4, num_heads=4, early_hidden_dim=128, w_pred_hidden_dim=128),
    "small": dict(embed_dim=None, internal_emb_dim=128, num_tsfm_layers=4, tsfm_hidden_dim=256,
                  num_reg_tok=4, num_heads=4, early_hidden_dim=256, w_pred_hidden_dim=256),
    "clip": _official(512, 560),
    "dino": _official(768, 800),
    "siglip": _official(1152, 1200),
}


def preset_config(name: str, embed_dim: int | None = None, **overrides: Any) -> BraInCoRLConfig:
    """Return the sizes of preset ``name``, with ``embed_dim`` and any sizes overridden.

    Raises
    ------
    ParameterError
        For an unknown preset, a missing ``embed_dim`` for a preset that takes it from the
        features, or an ``embed_dim`` a published preset does not have.
    """
    if name not in PRESETS:
        raise ParameterError(param="preset", value=name, owner="BraInCoRL",
                             allowed=f"one of {sorted(PRESETS)}",
                             fix="Use 'tiny' or 'small' on a CPU, 'clip' for CLIP ViT-B features.")
    values = dict(PRESETS[name])
    if values["embed_dim"] is None:
        if embed_dim is None:
            raise ParameterError(param="embed_dim", value=None, owner=f"preset {name!r}",
                                 allowed="the features' dimension (an int >= 1)",
                                 fix="Pass embed_dim=N_FEATURES.")
        values["embed_dim"] = embed_dim
    elif embed_dim is not None and embed_dim != values["embed_dim"]:
        raise ParameterError(
            param="embed_dim", value=embed_dim, owner=f"preset {name!r}",
            allowed=f"{values['embed_dim']} (the preset's feature dimension)",
            fix="Use features of that dimension, or the 'tiny'/'small' preset, whose width "
                "follows the features.")
    values.update(overrides)
    return BraInCoRLConfig.from_dict(values)


class ResidualBlock(nn.Module):
    """Pre-normalised residual MLP: ``block(x) + bypass(x)`` (names as in the official code)."""

    def __init__(self, feat_in: int, feat_out: int, feat_hidden: int, drop_out: float) -> None:
        super().__init__()
        self.block = nn.Sequential(
            nn.LayerNorm(feat_in), nn.LeakyReLU(0.1), nn.Dropout(drop_out),
            nn.Linear(feat_in, feat_hidden),
            nn.LayerNorm(feat_hidden), nn.LeakyReLU(0.1), nn.Dropout(drop_out),
            nn.Linear(feat_hidden, feat_out),
        )
        self.bypass: nn.Module = (nn.Linear(feat_in, feat_out) if feat_in != feat_out
                                  else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``block(x) + bypass(x)``."""
        return self.block(x) + self.bypass(x)


class SwiGLUFFN(nn.Module):
    """SwiGLU feed-forward: one projection split into value and gate, then back to the width."""

    def __init__(self, width: int, hidden: int) -> None:
        super().__init__()
        self.linear1 = nn.Linear(width, 2 * hidden)
        self.linear2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return ``linear2(silu(a) * g)`` with ``a, g`` the halves of ``linear1(x)``."""
        a, g = self.linear1(x).chunk(2, dim=-1)
        return self.linear2(F.silu(a) * g)


class AttentionBlock(nn.Module):
    """Pre-LayerNorm self-attention with ln(L) query scaling, then a SwiGLU feed-forward."""

    def __init__(self, width: int, hidden: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.layer_norm_1 = nn.LayerNorm(width)
        self.attn = nn.MultiheadAttention(width, heads, dropout=dropout, batch_first=True)
        self.attn_dropout = nn.Dropout(dropout)
        self.layer_norm_2 = nn.LayerNorm(width)
        self.ffn = SwiGLUFFN(width, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply attention (queries scaled by ln of the sequence length) and the FFN."""
        h = self.layer_norm_1(x)
        scale = math.log(h.shape[-2])  # L counts the registers too
        attended, _ = self.attn(h * scale, h, h, need_weights=False)
        x = x + self.attn_dropout(attended)
        return x + self.ffn(self.layer_norm_2(x))


class BraInCoRLNetwork(nn.Module):
    """The in-context hypernetwork: context pairs in, readout ``(w, b)`` out.

    Parameters
    ----------
    config : BraInCoRLConfig
        The sizes (see :data:`PRESETS`).

    Examples
    --------
    >>> net = BraInCoRLNetwork(preset_config("tiny", embed_dim=8))
    >>> x, y = torch.randn(2, 10, 8), torch.randn(2, 10)
    >>> net(x, y).shape  # (voxels, embed_dim + 1)
    torch.Size([2, 9])
    """

    def __init__(self, config: BraInCoRLConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        width = c.internal_emb_dim
        self.early_layers = nn.Sequential(
            ResidualBlock(c.embed_dim + 1, width, c.early_hidden_dim, c.dropout),
            *(ResidualBlock(width, width, c.early_hidden_dim, c.dropout)
              for _ in range(c.num_early_lyr - 1)))
        self.cls_token = nn.Parameter(torch.randn(1, c.num_reg_tok, width) / math.sqrt(width + 1))
        self.input_dropout = nn.Dropout(c.dropout)
        self.transformer = nn.Sequential(*(
            AttentionBlock(width, c.tsfm_hidden_dim, c.num_heads, c.dropout)
            for _ in range(c.num_tsfm_layers)))
        self.weight_pred = nn.Sequential(
            *(ResidualBlock(width, width, c.w_pred_hidden_dim, c.dropout)
              for _ in range(c.num_w_pred_layers - 1)),
            ResidualBlock(width, c.embed_dim + 1, c.w_pred_hidden_dim, c.dropout))

    def forward(self, context_x: torch.Tensor, context_y: torch.Tensor) -> torch.Tensor:
        """Return the readout of each voxel from its context.

        Parameters
        ----------
        context_x : tensor of shape (B, N, E)
            Unit-normalised embeddings of the context images (the same or different per voxel).
        context_y : tensor of shape (B, N)
            Each voxel's responses to its context images.

        Returns
        -------
        tensor of shape (B, E + 1)
            ``(w, b)`` per voxel: a query image ``x`` is predicted as ``x @ w + b``.
        """
        tokens = self.early_layers(torch.cat([context_x, context_y.unsqueeze(-1)], dim=-1))
        registers = self.cls_token.expand(tokens.shape[0], -1, -1)
        sequence = self.input_dropout(torch.cat([registers, tokens], dim=1))
        return self.weight_pred(self.transformer(sequence)[:, 0])

    @staticmethod
    def predict(readout: torch.Tensor, query_x: torch.Tensor) -> torch.Tensor:
        """Predict responses (B, M) of each voxel's readout (B, E + 1) to images (B, M, E)."""
        return torch.einsum("bme,be->bm", query_x, readout[:, :-1]) + readout[:, -1:]
