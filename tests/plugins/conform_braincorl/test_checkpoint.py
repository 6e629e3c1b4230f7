"""Checkpoints: round trip, official state dicts, refusals of corrupt or mismatched files."""

from __future__ import annotations

from pathlib import Path

import pytest

from conform_core.exceptions import DataFileError

torch = pytest.importorskip("torch")

from conform_braincorl.checkpoint import (  # noqa: E402
    Checkpoint,
    load_checkpoint,
    load_official_checkpoint,
    save_checkpoint,
)
from conform_braincorl.network import BraInCoRLNetwork, preset_config  # noqa: E402


def _official_state(embed: int, width: int, layers: int, ffn: int, registers: int,
                    gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A random state dict with the official implementation's names and shapes, written out
    from its layer definitions (not from our module), as its ``torch.save`` would store it."""
    def block(prefix: str, fin: int, fout: int, hidden: int) -> dict[str, tuple[int, ...]]:
        shapes = {f"{prefix}.block.0.weight": (fin,), f"{prefix}.block.0.bias": (fin,),
                  f"{prefix}.block.3.weight": (hidden, fin), f"{prefix}.block.3.bias": (hidden,),
                  f"{prefix}.block.4.weight": (hidden,), f"{prefix}.block.4.bias": (hidden,),
                  f"{prefix}.block.7.weight": (fout, hidden), f"{prefix}.block.7.bias": (fout,)}
        if fin != fout:
            shapes |= {f"{prefix}.bypass.weight": (fout, fin), f"{prefix}.bypass.bias": (fout,)}
        return shapes

    shapes = {"cls_token": (1, registers, width)}
    shapes |= block("early_layers.0", embed + 1, width, 2 * width)
    for i in range(layers):
        t = f"transformer.{i}"
        shapes |= {f"{t}.layer_norm_1.weight": (width,), f"{t}.layer_norm_1.bias": (width,),
                   f"{t}.attn.in_proj_weight": (3 * width, width),
                   f"{t}.attn.in_proj_bias": (3 * width,),
                   f"{t}.attn.out_proj.weight": (width, width),
                   f"{t}.attn.out_proj.bias": (width,),
                   f"{t}.layer_norm_2.weight": (width,), f"{t}.layer_norm_2.bias": (width,),
                   f"{t}.ffn.linear1.weight": (2 * ffn, width), f"{t}.ffn.linear1.bias": (2 * ffn,),
                   f"{t}.ffn.linear2.weight": (width, ffn), f"{t}.ffn.linear2.bias": (width,)}
    shapes |= block("weight_pred.0", width, embed + 1, 2 * width)
    return {k: torch.randn(s, generator=gen) for k, s in shapes.items()}


@pytest.mark.parametrize("wrapped", [False, True])
def test_official_state_dict_loads(tmp_path: Path, wrapped: bool) -> None:
    # The CLIP preset's sizes with 2 of its 20 layers, to keep the file ~45 MB.
    state = _official_state(512, 560, 2, 2048, 4, torch.Generator().manual_seed(0))
    path = tmp_path / "CLIP_trained_on_s125.pth"
    torch.save({"state_dict": state, "epoch": 3} if wrapped else state, path)
    ckpt = load_official_checkpoint(path, "clip", num_tsfm_layers=2, feature_space="clip:x:y")
    loaded = ckpt.network.state_dict()
    assert set(loaded) == set(state)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
    assert ckpt.feature_space == "clip:x:y" and ckpt.embed_dim == 512


def test_official_state_dict_of_another_size_is_refused(tmp_path: Path) -> None:
    state = _official_state(768, 800, 1, 2048, 4, torch.Generator().manual_seed(0))
    torch.save(state, tmp_path / "dino.pth")
    with pytest.raises(DataFileError, match=r"another shape.*preset"):
        load_official_checkpoint(tmp_path / "dino.pth", "clip", num_tsfm_layers=1)


def _tiny(seed: int = 0) -> BraInCoRLNetwork:
    torch.manual_seed(seed)
    return BraInCoRLNetwork(preset_config("tiny", embed_dim=6))


def test_round_trip(tmp_path: Path) -> None:
    net = _tiny()
    save_checkpoint(Checkpoint(net, "precomputed", {"excluded_stimuli": ["a", "b"]}), tmp_path,
                    card="# card\n")
    back = load_checkpoint(tmp_path)
    for key, value in net.state_dict().items():
        assert torch.equal(back.network.state_dict()[key], value)
    assert back.feature_space == "precomputed"
    assert back.info["excluded_stimuli"] == ["a", "b"]
    assert not back.network.training
    assert (tmp_path / "config.json").is_file() and (tmp_path / "model_card.md").is_file()
    assert load_checkpoint(tmp_path / "model.safetensors").feature_space == "precomputed"


def test_truncated_checkpoint_is_refused(tmp_path: Path) -> None:
    save_checkpoint(Checkpoint(_tiny()), tmp_path)
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(DataFileError, match="truncated or corrupt"):
        load_checkpoint(tmp_path)


def test_missing_and_foreign_files_are_refused(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    with pytest.raises(DataFileError, match="No BraInCoRL checkpoint"):
        load_checkpoint(tmp_path / "nowhere")
    save_file({"w": torch.zeros(2)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(DataFileError, match="not a conform BraInCoRL checkpoint"):
        load_checkpoint(tmp_path)


def test_a_save_killed_midway_leaves_the_previous_checkpoint(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    import safetensors.torch

    first = _tiny(0)
    save_checkpoint(Checkpoint(first), tmp_path)

    def dies_halfway(tensors: dict, filename: str, metadata: dict) -> None:
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", dies_halfway)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(Checkpoint(_tiny(1)), tmp_path)
    back = load_checkpoint(tmp_path)
    for key, value in first.state_dict().items():
        assert torch.equal(back.network.state_dict()[key], value)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
