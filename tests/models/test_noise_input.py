"""The noise level as a network input: the map, exposure equivariance, tiling, old checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demosaic import cfa
from demosaic.errors import CFAError, ConfigError
from demosaic.inference.tiling import tiled_demosaic
from demosaic.models import create_model
from demosaic.models.checkpoint import load_checkpoint, load_model
from demosaic.models.ensemble import GeometricEnsemble
from demosaic.models.zoo import DEFAULT_CHECKPOINT
from demosaic.noise.noise_map import packed_noise_map
from demosaic.noise.profile import NoiseProfile

#: Balanced coefficients of a typical ISO 3200 capture: [[m_c S], [m_c^2 O]], R/B amplified.
COEFFS = torch.tensor([[2.0e-3, 1.1e-3, 1.6e-3], [4.0e-7, 1.2e-7, 2.6e-7]])


def _noisy_model(cfa_name: str = "xtrans", **kw) -> torch.nn.Module:
    """A noise-aware U-Net whose noise branches are not zero (as after training)."""
    torch.manual_seed(1)
    kwargs = dict(packing=3, width=8, depth=3) if cfa_name == "xtrans" else dict(width=8, depth=3)
    model = create_model("unet", cfa=cfa_name, noise_input=True, **kwargs, **kw).eval()
    with torch.no_grad():
        model.noise_stem.weight.normal_(0, 3.0)
        model.sample_head.weight.normal_(0, 0.3)
    return model


def _map(model: torch.nn.Module, x: torch.Tensor, coeffs: torch.Tensor) -> torch.Tensor:
    """The per-pixel noise map ``(N, 1, H, W)`` the model computes for mosaic ``x``."""
    packed = model.pack(x)
    if not model.masked_input:
        packed = torch.nn.functional.pixel_unshuffle(model.masked_mosaic(x), model.packing)
    sigma = packed_noise_map(packed, model.packed_colours(packed), coeffs)
    return torch.nn.functional.pixel_shuffle(sigma.contiguous(), model.packing)


@pytest.mark.parametrize("cfa_name", ["xtrans", "bayer_rggb"])
def test_noise_map_is_the_poisson_gaussian_std_and_scales_with_exposure(cfa_name):
    model = _noisy_model(cfa_name)
    x = torch.full((1, 1, 48, 48), 0.2)
    colour = torch.from_numpy(cfa.mask(cfa_name, 48, 48)).argmax(0)
    want = (COEFFS[0][colour] * 0.2 + COEFFS[1][colour]).sqrt()
    torch.testing.assert_close(_map(model, x, COEFFS)[0, 0], want)
    # signal and noise scaled by k: coefficients (k S, k^2 O), map k times
    y = torch.rand(2, 1, 48, 48)
    for k in (0.25, 3.0):
        scaled = COEFFS.clone()
        scaled[0] *= k
        scaled[1] *= k * k
        torch.testing.assert_close(_map(model, k * y, scaled), k * _map(model, y, COEFFS),
                                   rtol=1e-5, atol=1e-8)
    # NoiseProfile.exposed is the same rule on the profile
    p = NoiseProfile.uniform(1e-3, 1e-6)
    assert p.exposed(2.0).std(0.4) == pytest.approx(2.0 * p.std(0.2))


def test_noise_aware_unet_is_exposure_equivariant_with_its_map():
    model = _noisy_model()
    x = torch.rand(2, 1, 48, 48)
    y = model(x, COEFFS)
    for k in (0.125, 4.0):
        scaled = COEFFS.clone()
        scaled[0] *= k
        scaled[1] *= k * k
        torch.testing.assert_close(model(k * x, scaled), k * y, rtol=1e-4, atol=1e-5 * k)


def test_the_map_changes_the_output_and_zero_means_clean():
    model = _noisy_model()
    x = torch.rand(1, 1, 48, 48)
    assert (model(x, COEFFS) - model(x)).abs().max() > 1e-3
    torch.testing.assert_close(model(x, torch.zeros(2, 3)), model(x))
    with pytest.raises(CFAError, match="noise coefficients"):
        model(x, torch.ones(3, 2))


@pytest.mark.parametrize("cfa_name", ["xtrans", "bayer_rggb"])
def test_tiled_output_with_the_map_equals_the_whole_image(cfa_name):
    model = _noisy_model(cfa_name)
    rng = np.random.default_rng(0)
    mosaic = rng.random((150, 174)).astype(np.float32) * 0.6
    whole = tiled_demosaic(model, mosaic, tile=0, device="cpu", noise=COEFFS)
    tiled = tiled_demosaic(model, mosaic, tile=72, device="cpu", noise=COEFFS)
    assert (whole - tiled).abs().max() < 1e-5
    plain = tiled_demosaic(model, mosaic, tile=0, device="cpu")
    assert (whole - plain).abs().max() > 1e-3  # the map did reach the network


def test_old_checkpoints_load_and_a_grown_network_starts_where_they_were():
    ckpt = load_checkpoint(DEFAULT_CHECKPOINT)
    old = load_model(DEFAULT_CHECKPOINT)
    x = torch.rand(1, 1, 48, 48)
    if "noise_input" not in ckpt["model"]["kwargs"] or not ckpt["model"]["kwargs"]["noise_input"]:
        assert not old.noise_input
        with torch.no_grad():  # a model without the input ignores the level
            torch.testing.assert_close(old(x), old.demosaic(x, COEFFS))
    # an old-format state (no noise_input key) grown by the input: new tensors start at zero
    kwargs = {k: v for k, v in ckpt["model"]["kwargs"].items() if k != "noise_input"}
    plain = create_model("unet", **kwargs).eval()
    plain.load_state_dict({k: v for k, v in ckpt["state_dict"].items()
                           if not k.startswith(("noise_stem", "sample_head"))})
    grown = create_model("unet", **kwargs, noise_input=True).eval()
    missing = grown.load_state_dict(plain.state_dict(), strict=False).missing_keys
    assert sorted(missing) == ["noise_stem.weight", "sample_head.weight"]
    with torch.no_grad():
        torch.testing.assert_close(grown(x, COEFFS), plain(x), rtol=0, atol=0)


def test_the_ensemble_passes_the_level_to_every_view():
    model = _noisy_model()
    ens = GeometricEnsemble(model, views=2)
    x = torch.rand(1, 1, 48, 48)
    assert ens.noise_input
    with torch.no_grad():
        assert (ens(x, COEFFS) - ens(x)).abs().max() > 1e-3


@pytest.mark.parametrize("fmt", ["torchscript", "onnx", "checkpoint"])
def test_a_noise_aware_model_exports_with_its_second_input(tmp_path, fmt):
    from demosaic.export import export_model
    from demosaic.models.checkpoint import make_checkpoint

    model = _noisy_model()
    kwargs = dict(cfa="xtrans", packing=3, width=8, depth=3, noise_input=True)
    ckpt = make_checkpoint(model, "unet", kwargs, cfa="xtrans", step=1)
    out = tmp_path / {"onnx": "m.onnx", "torchscript": "m.ts", "checkpoint": "m.pt"}[fmt]
    report = export_model(ckpt, fmt, out)
    assert report.max_abs_diff <= 1e-4 and out.is_file()
    with pytest.raises(ConfigError, match="--int8"):
        export_model(ckpt, "onnx", tmp_path / "q.onnx", int8="dynamic")
