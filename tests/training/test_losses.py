"""Loss terms against hand-computed values, reductions, SSIM reference, composite and configs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from demosaic.color import linear_to_srgb
from demosaic.errors import ConfigError
from demosaic.losses import (
    LOG_MU,
    LOSSES,
    CompositeLoss,
    build_loss,
    chroma,
    gradient,
    l1,
    log_encode,
    msssim,
    msssim_index,
    ssim,
    ssim_index,
)

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs" / "loss"


def _pair(n: int = 2, h: int = 16, w: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g), torch.rand(n, 3, h, w, generator=g)


def ssim_reference(x: np.ndarray, y: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """Straightforward SSIM: loop over every valid window position of each channel of
    ``(C, H, W)`` images; weighted means/variances/covariance with a normalised 2-D gaussian."""
    ax = np.arange(size) - (size - 1) / 2
    g1 = np.exp(-ax**2 / (2 * sigma**2))
    win = np.outer(g1, g1)
    win /= win.sum()
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - size + 1):
            for j in range(x.shape[2] - size + 1):
                a = x[c, i:i + size, j:j + size]
                b = y[c, i:i + size, j:j + size]
                ma, mb = (win * a).sum(), (win * b).sum()
                va = (win * (a - ma) ** 2).sum()
                vb = (win * (b - mb) ** 2).sum()
                cov = (win * (a - ma) * (b - mb)).sum()
                vals.append(((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma**2 + mb**2 + c1) * (va + vb + c2)))
    return float(np.mean(vals))


# --------------------------------------------------------------------------------------
# Hand-computed values
# --------------------------------------------------------------------------------------


def test_l1_hand_computed() -> None:
    pred = torch.zeros(1, 3, 1, 2)
    target = torch.tensor([[[[1.0, -2.0]], [[0.5, 0.0]], [[0.0, 3.5]]]])
    assert l1(pred, target).item() == pytest.approx((1 + 2 + 0.5 + 0 + 0 + 3.5) / 6)


def test_gradient_hand_computed() -> None:
    # one channel, 2 x 3: d = pred - target = [[0, 1, 3], [2, 2, 2]]
    target = torch.zeros(1, 1, 2, 3)
    pred = torch.tensor([[[[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]]])
    # dx: [1, 2], [0, 0] -> mean 0.75 ; dy: [2, 1, -1] -> mean |.| = 4/3
    assert gradient(pred, target).item() == pytest.approx(0.75 + 4 / 3)
    # a constant offset has no gradient error
    assert gradient(target + 5.0, target).item() == 0.0


def test_chroma_hand_computed() -> None:
    target = torch.rand(1, 3, 4, 4)
    # the same offset on all channels is a pure luminance error: no chroma error
    assert chroma(target + 0.3, target).item() == pytest.approx(0.0, abs=1e-7)
    # +0.3 on R only: R-G error 0.3, B-G error 0 -> mean 0.15
    pred = target.clone()
    pred[:, 0] += 0.3
    assert chroma(pred, target).item() == pytest.approx(0.15, abs=1e-6)
    # +0.2 on G only: both differences off by 0.2
    pred = target.clone()
    pred[:, 1] += 0.2
    assert chroma(pred, target).item() == pytest.approx(0.2, abs=1e-6)


def test_log_space_encoding() -> None:
    x = torch.tensor([-4.0, -1.0, 0.0, 0.18, 1.0, 4.0])
    y = log_encode(x)
    assert y[4].item() == pytest.approx(1.0)
    assert y[2].item() == 0.0
    torch.testing.assert_close(y[:2], -y.flip(0)[:2])  # odd
    assert y[3].item() == pytest.approx(math.log1p(LOG_MU * 0.18) / math.log1p(LOG_MU))
    assert 0.45 < y[3].item() < 0.5 and y[5].item() < 1.6  # mid grey ~ sRGB, highlights compressed


# --------------------------------------------------------------------------------------
# Generic properties of every term
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_zero_for_identical_inputs(name: str) -> None:
    x, _ = _pair(h=48, w=48)
    assert LOSSES[name](x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_reductions(name: str) -> None:
    pred, target = _pair(n=3, h=24, w=24)
    per = LOSSES[name](pred, target, reduction="none")
    assert per.shape == (3,)
    assert (per > 0).all()
    torch.testing.assert_close(LOSSES[name](pred, target, reduction="mean"), per.mean())
    torch.testing.assert_close(LOSSES[name](pred, target, reduction="sum"), per.sum())
    assert LOSSES[name](pred, target).ndim == 0
    # per-sample values do not depend on the rest of the batch
    torch.testing.assert_close(LOSSES[name](pred[1:2], target[1:2], reduction="none"), per[1:2])
    with pytest.raises(ValueError, match="reduction"):
        LOSSES[name](pred, target, reduction="avg")


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_gradient_flows(name: str) -> None:
    pred, target = _pair(h=40, w=40)
    pred.requires_grad_(True)
    LOSSES[name](pred, target).backward()
    assert pred.grad is not None
    assert torch.isfinite(pred.grad).all()
    assert pred.grad.abs().sum() > 0


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_hdr_values_stay_finite(name: str) -> None:
    pred, target = _pair(h=32, w=32)
    pred, target = pred * 50, target * 50
    for space in ("linear", "srgb", "log"):
        if name == "periodic_display" and space != "linear":
            continue  # rejected by the constructor (test_periodic_display_needs_linear_space)
        p = pred.clone().requires_grad_(True)
        total, _ = CompositeLoss({name: 1.0}, space=space)(p, target)
        total.backward()
        assert torch.isfinite(total) and torch.isfinite(p.grad).all()


def test_shape_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="same shape"):
        l1(torch.zeros(1, 3, 4, 4), torch.zeros(1, 3, 4, 5))


# --------------------------------------------------------------------------------------
# SSIM / MS-SSIM
# --------------------------------------------------------------------------------------


def test_ssim_identical_is_one() -> None:
    x, _ = _pair()
    torch.testing.assert_close(ssim_index(x, x), torch.ones(2))
    assert ssim(x, x).item() == pytest.approx(0.0, abs=1e-6)


def test_ssim_matches_reference() -> None:
    rng = np.random.default_rng(4)
    x = rng.random((3, 14, 17))
    y = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1)
    ref = ssim_reference(x, y)
    got = ssim_index(torch.from_numpy(x)[None], torch.from_numpy(y)[None]).item()
    assert got == pytest.approx(ref, abs=1e-9)
    # float32 too
    got32 = ssim_index(torch.from_numpy(x).float()[None], torch.from_numpy(y).float()[None]).item()
    assert got32 == pytest.approx(ref, abs=1e-5)
    assert 0.0 < ref < 0.99


def test_ssim_small_images_use_a_smaller_window() -> None:
    rng = np.random.default_rng(5)
    x = rng.random((3, 8, 9))
    y = rng.random((3, 8, 9))
    ref = ssim_reference(x, y, size=7)
    assert ssim_index(torch.from_numpy(x)[None], torch.from_numpy(y)[None]).item() == pytest.approx(ref, abs=1e-9)


def test_ssim_orders_degradations() -> None:
    x, _ = _pair(n=1, h=48, w=48)
    g = torch.Generator().manual_seed(7)
    small = x + 0.02 * torch.randn(x.shape, generator=g)
    large = x + 0.2 * torch.randn(x.shape, generator=g)
    assert ssim_index(small, x) > ssim_index(large, x)


def test_msssim_scales() -> None:
    x, y = _pair(n=2, h=20, w=20)
    y = 0.5 * x + 0.5 * y
    # 20 px: only one scale fits (20 // 2 < 11), so MS-SSIM is SSIM
    torch.testing.assert_close(msssim_index(x, y), ssim_index(x, y))
    # 48 px: scales of 48, 24 and 12 px (6 < 11 stops): three scales, value in (0, 1)
    x, y = _pair(n=2, h=48, w=48)
    y = 0.7 * x + 0.3 * y
    v = msssim_index(x, y)
    assert ((v > 0) & (v < 1)).all()
    torch.testing.assert_close(msssim_index(x, x), torch.ones(2))
    assert msssim(x, x).item() == pytest.approx(0.0, abs=1e-6)


# --------------------------------------------------------------------------------------
# Composite and config
# --------------------------------------------------------------------------------------


def test_composite_weights_and_logged_terms() -> None:
    pred, target = _pair(h=32, w=32)
    loss = CompositeLoss({"l1": 1.0, "gradient": 0.1, "chroma": 0.05})
    total, values = loss(pred, target)
    assert set(values) == {"l1", "gradient", "chroma"}
    expected = l1(pred, target) + 0.1 * gradient(pred, target) + 0.05 * chroma(pred, target)
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(values["gradient"], gradient(pred, target))
    assert not values["l1"].requires_grad


def test_composite_spaces() -> None:
    pred, target = _pair(h=16, w=16)
    total, _ = CompositeLoss({"l1": 1.0}, space="srgb")(pred, target)
    torch.testing.assert_close(total, l1(linear_to_srgb(pred), linear_to_srgb(target)))
    total, _ = CompositeLoss({"l1": 1.0}, space="log")(pred, target)
    torch.testing.assert_close(total, l1(log_encode(pred), log_encode(target)))
    # dark errors weigh more in srgb than in linear
    t = torch.full((1, 3, 8, 8), 0.01)
    p = t + 0.005
    lin, _ = CompositeLoss({"l1": 1.0}, space="linear")(p, t)
    srgb, _ = CompositeLoss({"l1": 1.0}, space="srgb")(p, t)
    assert srgb > 3 * lin


def test_composite_border() -> None:
    target = torch.rand(1, 3, 20, 20)
    pred = target.clone()
    pred[..., :2, :] += 1.0  # error only in the two top rows
    assert CompositeLoss({"l1": 1.0}, border=2)(pred, target)[0].item() == 0.0
    assert CompositeLoss({"l1": 1.0}, border=1)(pred, target)[0].item() > 0.0
    with pytest.raises(ConfigError, match="border"):
        CompositeLoss({"l1": 1.0}, border=10)(pred, target)


def test_zero_weight_term_is_logged_but_not_added() -> None:
    pred, target = _pair()
    total, values = CompositeLoss({"l1": 1.0, "ssim": 0.0})(pred, target)
    torch.testing.assert_close(total, l1(pred, target))
    assert values["ssim"] > 0


def test_build_loss_validation() -> None:
    with pytest.raises(ConfigError, match=r"unknown term\(s\) \['l2'\].*chroma.*gradient.*l1.*msssim.*ssim"):
        build_loss({"terms": {"l2": 1.0}})
    with pytest.raises(ConfigError, match="spce"):
        build_loss({"spce": "srgb", "terms": {"l1": 1.0}})
    with pytest.raises(ConfigError, match="space"):
        build_loss({"space": "gamma", "terms": {"l1": 1.0}})
    with pytest.raises(ConfigError, match="l1"):
        build_loss({"terms": {"l1": "heavy"}})
    with pytest.raises(ConfigError, match=">= 0"):
        build_loss({"terms": {"l1": -1.0}})
    with pytest.raises(ConfigError, match="empty"):
        build_loss({"terms": {}})
    loss = build_loss(OmegaConf.create({"space": "log", "terms": {"ssim": 1}, "border": 3}))
    assert (loss.space, loss.terms, loss.border) == ("log", {"ssim": 1.0}, 3)


def test_loss_configs() -> None:
    files = {p.stem: p for p in CONFIG_DIR.glob("*.yaml")}
    assert {"v4", "v4_ssim", "fullres", "l1", "srgb_l1"} <= set(files)
    built = {name: build_loss(OmegaConf.load(path)) for name, path in files.items()}
    assert built["v4"].terms == {"l1": 1.0, "gradient": 0.1, "chroma": 0.05} and built["v4"].space == "linear"
    assert built["v4_ssim"].terms == {"l1": 0.4, "ssim": 0.5, "gradient": 0.1}
    assert set(built["fullres"].terms) == {"ssim", "gradient"}
    assert built["srgb_l1"].space == "srgb" and built["srgb_l1"].terms == {"l1": 1.0}
    pred, target = _pair(h=24, w=24)
    for loss in built.values():
        total, values = loss(pred, target)
        assert torch.isfinite(total) and total > 0 and set(values) == set(loss.terms)


def test_periodic_term_sees_only_the_cfa_periodic_error():
    from demosaic.losses import periodic

    torch.manual_seed(0)
    target = torch.rand(2, 3, 36, 48)
    assert periodic(target, target) == 0
    # a global offset is not periodic; a ramp of slope s only by its step within a cell
    # (phase means s * (j - 2.5), mean |.| = 1.5 s): small for smooth errors
    assert periodic(target + 0.05, target) < 1e-7
    slope = 0.1 / 47
    ramp = torch.linspace(0, 0.1, 48).expand(2, 3, 36, 48)
    torch.testing.assert_close(periodic(target + ramp, target), torch.tensor(1.5 * slope),
                               rtol=1e-3, atol=1e-6)
    # a 6x6 pattern is: each phase off by a fixed amount
    cell = torch.randn(1, 3, 6, 6) * 0.01
    grid = cell.repeat(1, 1, 6, 8)
    expected = (cell - cell.mean(dim=(2, 3), keepdim=True)).abs().mean()
    torch.testing.assert_close(periodic(target + grid, target), expected)
    # a period-2 (Bayer) pattern is seen too; per-sample values with reduction="none"
    bayer = torch.tensor([[0.01, -0.01], [-0.01, 0.01]]).repeat(18, 24)
    values = periodic(target + torch.stack([bayer * 0, bayer])[:, None], target, reduction="none")
    assert values.shape == (2,) and values[0] == 0 and values[1] > 9e-3
    # crops that are not multiples of 6 are cut, not rejected
    assert torch.isfinite(periodic(target[..., :35, :47] + 0.1, target[..., :35, :47]))


def test_periodic_display_measures_the_clipped_srgb_error():
    from demosaic.color import linear_to_srgb
    from demosaic.losses import periodic, periodic_display

    torch.manual_seed(0)
    cell = torch.randn(1, 3, 6, 6) * 0.002
    grid = cell.repeat(1, 1, 6, 8)
    dark, bright = torch.full((1, 3, 36, 48), 0.02), torch.full((1, 3, 36, 48), 0.6)
    # the same linear grid is a larger display error in the dark (sRGB slope ~4 vs ~0.6)
    assert periodic_display(dark + grid, dark) > 3 * periodic_display(bright + grid, bright)
    torch.testing.assert_close(periodic_display(dark + grid, dark),
                               periodic(linear_to_srgb(dark + grid), linear_to_srgb(dark)))
    # highlights above 1.0 clip on the display: a grid there is invisible and costs nothing
    assert periodic_display(2.0 + grid, torch.full_like(grid, 2.0)) == 0
    # a gradient reaches the prediction
    pred = (dark + grid).requires_grad_()
    periodic_display(pred, dark).backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0


def test_periodic_display_needs_linear_space():
    with pytest.raises(ConfigError, match="periodic_display.*loss.space=linear"):
        build_loss({"space": "srgb", "terms": {"l1": 1.0, "periodic_display": 1.0}})
    assert build_loss({"space": "linear", "terms": {"periodic_display": 1.0}}).terms == {"periodic_display": 1.0}
