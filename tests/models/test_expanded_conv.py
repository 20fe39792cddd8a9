"""Over-parameterised convolutions (``model.expand``): trained as branches, run as one 3x3.

What must hold: the branches compute exactly what their folded kernel computes (so training
and inference agree), a U-Net folded by :func:`fold_expanded_state` gives the outputs of the
unfolded one at the plain U-Net's cost, a new expanded model starts as the plain model of the
same seed, and checkpoints (``load_model``, release checkpoints) come out plain.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from demosaic import cfa as C
from demosaic.models.checkpoint import load_model, make_checkpoint, release_checkpoint, save_checkpoint
from demosaic.errors import ConfigError
from demosaic.models import create_model
from demosaic.models.cost import model_cost
from demosaic.models.unet import ExpandedConv, fold_expanded_state


def _randomise(model: torch.nn.Module, seed: int = 3) -> None:
    """Give every branch non-zero, distinct weights (a trained state, not the initial one)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))


def test_branches_equal_their_folded_kernel() -> None:
    torch.manual_seed(0)
    conv = ExpandedConv(5, 7, expand=3)
    _randomise(conv)
    x = torch.randn(2, 5, 11, 13)
    # the branches as separate zero-padded convolutions, written out
    point = F.conv2d(x, conv.point)
    chain = F.conv2d(F.conv2d(x, conv.expand_in), conv.expand_out, padding=1)
    branches = F.conv2d(x, conv.weight, padding=1) + point + chain
    torch.testing.assert_close(conv(x), branches, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cfa", ["xtrans", "bayer_rggb"])
def test_folded_unet_computes_the_same_at_the_plain_cost(cfa: str) -> None:
    kwargs = {"cfa": cfa, "width": 4, "depth": 2, "blocks": 1,
              "packing": 3 if cfa == "xtrans" else 2}
    torch.manual_seed(0)
    model = create_model("unet", **kwargs, expand=2).eval()
    _randomise(model)
    state, folded_kwargs = fold_expanded_state(model.state_dict(), model.spec["kwargs"])
    assert folded_kwargs["expand"] == 0
    assert not any(k.endswith(("point", "expand_in", "expand_out")) for k in state)
    plain = create_model("unet", **folded_kwargs).eval()
    plain.load_state_dict(state)  # strict: exactly the plain network's tensors
    s = model.size_multiple * 2
    x = C.mosaic(torch.rand(2, 3, s, s), model.pattern)
    with torch.no_grad():
        torch.testing.assert_close(plain(x), model(x), rtol=1e-5, atol=1e-6)
    reference = create_model("unet", **kwargs)
    assert model_cost(plain, (1, 1, s, s)) == model_cost(reference, (1, 1, s, s))
    assert sum(p.numel() for p in model.parameters()) > sum(p.numel() for p in plain.parameters())


def test_a_new_expanded_model_starts_as_the_plain_one() -> None:
    torch.manual_seed(5)
    plain = create_model("unet", width=4, depth=2, packing=3).eval()
    torch.manual_seed(5)
    expanded = create_model("unet", width=4, depth=2, packing=3, expand=2).eval()
    x = C.mosaic(torch.rand(1, 3, 24, 24), plain.pattern)
    with torch.no_grad():
        torch.testing.assert_close(expanded(x), plain(x), rtol=0, atol=1e-6)
    # and a plain model's weights initialise it (same names; the branches stay at zero)
    missing = expanded.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert missing and all(k.endswith(("point", "expand_in", "expand_out")) for k in missing)


def test_checkpoints_load_and_release_plain(tmp_path) -> None:
    torch.manual_seed(0)
    model = create_model("unet", width=4, depth=2, packing=3, expand=2).eval()
    _randomise(model)
    ckpt = make_checkpoint(model, "unet", model.spec["kwargs"], cfa="xtrans", step=9)
    path = save_checkpoint(ckpt, tmp_path / "best.pt")
    loaded = load_model(path)
    assert not any(isinstance(m, ExpandedConv) for m in loaded.modules())
    assert loaded.spec["kwargs"]["expand"] == 0
    x = C.mosaic(torch.rand(1, 3, 48, 48), model.pattern)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x), rtol=1e-5, atol=1e-6)
    release = release_checkpoint(torch.load(path, weights_only=True))
    assert release["model"]["kwargs"]["expand"] == 0
    assert set(release["state_dict"]) == set(loaded.state_dict())
    torch.save(release, tmp_path / "release.pt")
    with torch.no_grad():
        torch.testing.assert_close(load_model(tmp_path / "release.pt")(x), loaded(x), rtol=0, atol=0)


def test_negative_expand_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="model.expand"):
        create_model("unet", width=4, depth=2, expand=-1)
