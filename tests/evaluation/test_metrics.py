"""Metrics against hand-computed values; the periodic-artifact detector flags and passes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from demosaic import cfa as C
from demosaic import metrics as M
from demosaic.models import create_model


def _smooth_image(h: int = 96, w: int = 96, seed: int = 0) -> np.ndarray:
    """A natural-looking (3, h, w) linear image in [0.05, 0.95]: low-pass filtered noise."""
    rng = np.random.default_rng(seed)
    spec = np.fft.fft2(rng.standard_normal((3, h, w)))
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    img = np.real(np.fft.ifft2(spec / (1 + (np.hypot(fy, fx) / 0.05) ** 2)))
    img -= img.min(axis=(1, 2), keepdims=True)
    img /= img.max(axis=(1, 2), keepdims=True)
    return 0.05 + 0.9 * img


def _srgb(v: float) -> float:
    return 12.92 * v if v <= 0.0031308 else 1.055 * v ** (1 / 2.4) - 0.055


# --------------------------------------------------------------------------------------
# PSNR
# --------------------------------------------------------------------------------------


def test_psnr_constant_offset() -> None:
    t = np.full((3, 40, 40), 0.5)
    assert M.psnr(t + 0.1, t) == pytest.approx(20.0)          # 10 log10(1 / 0.01)
    assert M.psnr(t + 0.01, t) == pytest.approx(40.0)
    assert M.psnr(t + 0.1, t, peak=2.0) == pytest.approx(20.0 + 20 * math.log10(2))
    assert M.psnr(t, t) == math.inf


def test_psnr_border_and_inputs() -> None:
    t = np.random.default_rng(0).random((3, 40, 40))
    p = t.copy()
    p[:, :12, :] += 0.5  # error only inside the default border
    assert M.psnr(p, t) == math.inf
    assert M.psnr(p, t, border=0) < 20
    # torch tensors give the same numbers as numpy
    assert M.psnr(torch.from_numpy(p).float(), torch.from_numpy(t).float(), border=0) == pytest.approx(
        M.psnr(p.astype(np.float32), t.astype(np.float32), border=0), rel=1e-6)
    with pytest.raises(ValueError, match="same shape"):
        M.psnr(p[:, :30], t)


def test_psnr_srgb_hand_computed() -> None:
    t = np.full((3, 30, 30), 0.5)
    p = np.full((3, 30, 30), 0.25)
    expected = -20 * math.log10(abs(_srgb(0.25) - _srgb(0.5)))
    assert M.psnr_srgb(p, t) == pytest.approx(expected)
    # highlights beyond the display range are clipped before encoding: 1.5 vs 3.0 is no error
    assert M.psnr_srgb(np.full((3, 30, 30), 1.5), np.full((3, 30, 30), 3.0)) == math.inf
    # ... but linear PSNR sees it (HDR errors count there)
    assert M.psnr(np.full((3, 30, 30), 1.5), np.full((3, 30, 30), 3.0)) == pytest.approx(-20 * math.log10(1.5))


# --------------------------------------------------------------------------------------
# SSIM
# --------------------------------------------------------------------------------------


def _ssim_loop(x: np.ndarray, y: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    ax = np.arange(size) - (size - 1) / 2
    win = np.outer(np.exp(-ax**2 / (2 * sigma**2)), np.exp(-ax**2 / (2 * sigma**2)))
    win /= win.sum()
    vals = []
    for c in range(x.shape[0]):
        for i in range(x.shape[1] - size + 1):
            for j in range(x.shape[2] - size + 1):
                a, b = x[c, i:i + size, j:j + size], y[c, i:i + size, j:j + size]
                ma, mb = (win * a).sum(), (win * b).sum()
                va, vb = (win * (a - ma) ** 2).sum(), (win * (b - mb) ** 2).sum()
                cov = (win * (a - ma) * (b - mb)).sum()
                vals.append(((2 * ma * mb + 1e-4) * (2 * cov + 9e-4)) / ((ma**2 + mb**2 + 1e-4) * (va + vb + 9e-4)))
    return float(np.mean(vals))


def test_ssim_matches_reference_and_identity() -> None:
    rng = np.random.default_rng(1)
    t = rng.random((3, 15, 13))
    p = np.clip(t + 0.1 * rng.standard_normal(t.shape), 0, 1)
    assert M.ssim(p, t, border=0, space="linear") == pytest.approx(_ssim_loop(p, t), abs=1e-10)
    srgb = np.vectorize(_srgb)
    assert M.ssim(p, t, border=0) == pytest.approx(_ssim_loop(srgb(p), srgb(t)), abs=1e-10)
    assert M.ssim(t, t, border=0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="space"):
        M.ssim(p, t, border=0, space="log")


# --------------------------------------------------------------------------------------
# Texture, false colour, HDR
# --------------------------------------------------------------------------------------


def test_texture_score() -> None:
    t = _smooth_image(seed=2) * 0.5 + 0.25 * np.random.default_rng(3).random((3, 96, 96))
    assert M.texture_score(t, t) == pytest.approx(1.0)
    blurred = (t + np.roll(t, 1, -1) + np.roll(t, -1, -1) + np.roll(t, 1, -2) + np.roll(t, -1, -2)) / 5
    assert M.texture_score(blurred, t) < 0.5
    noisy = t + 0.05 * np.random.default_rng(4).standard_normal(t.shape)
    assert M.texture_score(noisy, t) > 1.2
    assert math.isnan(M.texture_score(t, np.full_like(t, 0.3)))


def test_false_colour_score() -> None:
    t = np.full((3, 64, 64), 0.2)
    t[:, :, 32:] = 0.8  # a vertical grey edge
    assert M.false_colour_score(t, t) == 0.0
    fringe = t.copy()
    fringe[0, :, 30:34] += 0.1  # red fringe along the edge
    score = M.false_colour_score(fringe, t)
    assert score > 0.02
    # the same fringe far from any edge does not count
    far = t.copy()
    far[0, :, 14:18] += 0.1
    assert M.false_colour_score(far, t) == pytest.approx(0.0, abs=1e-12)
    # grey (luminance-only) errors are not false colour
    grey = t.copy()
    grey[:, :, 30:34] *= 1.1
    assert M.false_colour_score(grey, t) == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(M.false_colour_score(t, np.full_like(t, 0.4)))


def test_hdr_error() -> None:
    t = np.full((3, 40, 40), 0.5)
    assert math.isnan(M.hdr_error(t, t))
    t[:, 15:25, 15:25] = 2.0
    clamped = np.minimum(t, 1.0)
    assert M.hdr_error(clamped, t) == pytest.approx(0.5)  # |1 - 2| / 2
    assert M.hdr_error(t, t) == 0.0
    assert M.hdr_error(t * 1.1, t) == pytest.approx(0.1)


# --------------------------------------------------------------------------------------
# Periodic artifacts
# --------------------------------------------------------------------------------------


def _pattern(period: int, h: int, w: int, amplitude: float, seed: int) -> np.ndarray:
    tile = np.random.default_rng(seed).standard_normal((3, period, period))
    tile -= tile.mean(axis=(1, 2), keepdims=True)
    tile *= amplitude / np.abs(tile).max()
    return np.tile(tile, (1, -(-h // period), -(-w // period)))[:, :h, :w]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_periodic_artifact_flags_injected_pattern(seed: int) -> None:
    truth = _smooth_image(128, 132, seed=seed)
    out = create_model("bilinear").demosaic(C.mosaic(torch.from_numpy(truth).float(), "xtrans")).double().numpy()
    noisy = out + 0.01 * np.random.default_rng(seed).standard_normal(out.shape)
    for clean in (out, noisy):
        assert M.periodic_artifact_score(clean - truth) < M.PERIODIC_ARTIFACT_THRESHOLD
    faint = _pattern(6, 128, 132, amplitude=3 / 255, seed=seed)  # +-1.2 % of white
    for clean in (out, noisy):
        assert M.periodic_artifact_score(clean + faint - truth) > M.PERIODIC_ARTIFACT_THRESHOLD
    # a period-5 pattern (no harmonic in common with period 6) is not a 6x6 CFA artifact,
    # but it is flagged when asked about period 5
    other = _pattern(5, 128, 132, amplitude=0.02, seed=seed)
    assert M.periodic_artifact_score(noisy + other - truth, period=6) < M.PERIODIC_ARTIFACT_THRESHOLD
    assert M.periodic_artifact_score(noisy + other - truth, period=5) > M.PERIODIC_ARTIFACT_THRESHOLD


def test_periodic_artifact_white_noise_and_edge_cases() -> None:
    rng = np.random.default_rng(9)
    assert 0.5 < M.periodic_artifact_score(rng.standard_normal((3, 120, 120))) < 2.0
    assert M.periodic_artifact_score(np.zeros((3, 60, 60))) == 0.0
    assert math.isnan(M.periodic_artifact_score(rng.standard_normal((3, 18, 60))))
    # a 2-D single-channel error works and a pure 6-px grid is flagged strongly
    grid = _pattern(6, 60, 66, 0.01, seed=3)[0] + 0.001 * rng.standard_normal((60, 66))
    assert M.periodic_artifact_score(grid) > 100


# --------------------------------------------------------------------------------------
# compute_all
# --------------------------------------------------------------------------------------


def test_compute_all() -> None:
    truth = _smooth_image(72, 84, seed=5)
    pred = truth + 0.01
    res = M.compute_all(pred, truth, border=12, period=6)
    assert set(res) == {"psnr", "psnr_srgb", "ssim", "texture", "periodic_artifact", "false_colour", "hdr_error"}
    assert all(isinstance(v, float) for v in res.values())
    assert res["psnr"] == pytest.approx(40.0)
    assert res["texture"] == pytest.approx(1.0, abs=0.05)  # brighter: sRGB slope slightly lower
    assert math.isnan(res["hdr_error"])
    assert 0.9 < res["ssim"] <= 1.0
    assert res["false_colour"] < 0.01  # a grey linear offset: small chroma change after sRGB encoding
    same = M.compute_all(torch.from_numpy(truth), torch.from_numpy(truth))
    assert same["psnr"] == math.inf and same["ssim"] == pytest.approx(1.0) and same["periodic_artifact"] == 0.0


def test_ssim_metric_and_loss_agree_with_scikit_image() -> None:
    """One SSIM: the reported metric (numpy in, float) and the loss term's index (torch) are
    the same computation, and both equal scikit-image's gaussian SSIM (sigma 1.5, population
    covariance, data range 1), channel-averaged."""
    import numpy as np
    import torch

    structural_similarity = pytest.importorskip(
        "skimage.metrics", reason="scikit-image (test extra) is not installed").structural_similarity
    from demosaic import losses, metrics

    rng = np.random.default_rng(11)
    x = rng.random((3, 40, 52))
    y = np.clip(x + 0.15 * rng.standard_normal(x.shape), 0, 1)
    ref = structural_similarity(x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
                                data_range=1.0, channel_axis=0)
    metric = metrics.ssim(x, y, border=0, space="linear")
    loss_index = losses.ssim_index(torch.from_numpy(x)[None], torch.from_numpy(y)[None]).item()
    assert metric == pytest.approx(ref, abs=1e-9)
    assert loss_index == pytest.approx(ref, abs=1e-9)
    assert losses.ssim(torch.from_numpy(x)[None], torch.from_numpy(y)[None]).item() == pytest.approx(1 - ref, abs=1e-9)
