"""estimate_noise on simulated captures: the standard deviation it predicts at mid-grey is
within 10 % of the simulation's true one, on busy and on flat pictures, X-Trans and Bayer at
a non-canonical phase, ISO 100 to 12800, 12- and 14-bit; odd inputs never raise.

"True" here is the simulation's sensor noise plus the quantisation of its data numbers:
``var = a x + b^2 + q^2 / 12`` with ``(a, b) = NoiseModel().params(iso)`` and ``q = 1 /
(white - black)`` (the step of one data number in normalised units; it matters only at
ISO 100 in 12 bits, ~1 % of the variance). Mid-grey is the raw level of an sRGB 0.18 grey
under the simulation's headroom 0.7, in each channel: ``x_c = 0.126 * neutral_c`` (green
0.126; the body's camera neutral scales red and blue), so every channel is checked at the
level a grey card would give it.
"""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from demosaic.cfa import BAYER_RGGB, XTRANS
from demosaic.io.raw import read_raw
from demosaic.noise.estimate import estimate_noise
from demosaic.noise.profile import NoiseProfile
from demosaic.sim.camera import CameraSimConfig, Capture
from demosaic.sim.raw_files import capture_scene, write_camera_raw
from demosaic.sim.scenes import synthetic_scene

#: Largest relative error of the estimated standard deviation at mid-grey.
TOLERANCE = 0.10
#: Non-canonical phases (visible top-left at pattern (1, 2) / (1, 0): GBRG).
LAYOUTS = {"xtrans": XTRANS.shifted(1, 2), "bayer": BAYER_RGGB.shifted(1, 0)}
ISOS = (100, 400, 800, 3200, 6400, 12800)
SIZE = 512


def flat_scene(h: int, w: int) -> np.ndarray:
    """``(3, h, w)`` linear sRGB: smooth gradients (a different one per channel) and four
    constant patches from near-black to highlights (no texture, no edges but the patches')."""
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([0.05 + 0.6 * x / w, 0.05 + 0.5 * y / h, 0.1 + 0.4 * (x + y) / (h + w)])
    for k, (y0, x0) in enumerate([(0, 0), (h // 2, 0), (0, w // 2), (h // 2, w // 2)]):
        img[:, y0:y0 + h // 4, x0:x0 + w // 4] = 0.05 + 0.25 * k
    return img.astype(np.float32)


SCENES = {"busy": lambda: synthetic_scene(SIZE, SIZE, seed=0),
          "flat": lambda: flat_scene(SIZE, SIZE)}


def _capture(rgb: np.ndarray, family: str, iso: float, bits: int, seed: int = 0
             ) -> tuple[np.ndarray, np.ndarray, Capture]:
    """``(cfa, layout, capture)``: a daylight capture (no white-balance error) and its mosaic
    normalised as :func:`demosaic.io.raw.read_raw` does (black 0, white 1, not balanced)."""
    cfg = CameraSimConfig(illuminant_sigma=0.0, wb_error=0.0, bits=[bits])
    grid, cap = capture_scene(rgb, LAYOUTS[family], iso=iso, cfg=cfg,
                              rng=np.random.default_rng(seed))
    cfa = (cap.raw.astype(np.float32) - cap.black) / np.float32(cap.white - cap.black)
    return cfa, grid, cap


def _ratios(profile: NoiseProfile, cap: Capture) -> np.ndarray:
    """Estimated / true standard deviation at each channel's mid-grey (module docstring)."""
    a, b = cap.noise
    q = 1.0 / (cap.white - cap.black)
    out = []
    for c in range(3):
        x = 0.126 * float(cap.body.neutral[c])
        out.append(profile.std(x, c) / np.sqrt(a * x + b * b + q * q / 12.0))
    return np.array(out)


@pytest.mark.parametrize("bits", (12, 14))
@pytest.mark.parametrize("iso", ISOS)
@pytest.mark.parametrize("scene", sorted(SCENES))
@pytest.mark.parametrize("family", sorted(LAYOUTS))
def test_std_at_mid_grey_within_10_percent(family: str, scene: str, iso: int, bits: int) -> None:
    cfa, grid, cap = _capture(SCENES[scene](), family, iso, bits, seed=iso + bits)
    profile = estimate_noise(cfa, grid)
    ratios = _ratios(profile, cap)
    assert profile.source == "estimated"
    assert np.all(np.abs(ratios - 1.0) < TOLERANCE), (family, scene, iso, bits, ratios.round(3))


@pytest.mark.parametrize("family, iso, bits", [("xtrans", 3200, 14), ("bayer", 800, 12)])
def test_estimate_from_a_camera_raw_file(tmp_path, family: str, iso: int, bits: int) -> None:
    """The end-to-end path: a DNG written like a camera's, read back by read_raw."""
    cfg = CameraSimConfig(illuminant_sigma=0.0, wb_error=0.0, bits=[bits])
    path, cap = write_camera_raw(tmp_path / "shot.dng", synthetic_scene(384, 384, seed=2),
                                 LAYOUTS[family], iso=iso, cfg=cfg, noise_profile=True)
    raw = read_raw(path)
    profile = estimate_noise(raw.cfa, raw.layout, white=1.0)
    assert np.all(np.abs(_ratios(profile, cap) - 1.0) < TOLERANCE)
    tag = raw.noise_profile  # the capture's true (a, b^2)
    assert tag is not None
    for c in range(3):
        x = 0.126 * float(cap.body.neutral[c])
        assert profile.std(x, c) == pytest.approx(tag.std(x, c), rel=TOLERANCE)


@pytest.mark.parametrize("family", sorted(LAYOUTS))
def test_clipped_highlights_do_not_bias_it(family: str) -> None:
    """A third of the frame clipped (the picture 2.5x over-exposed): the clipped pixels and
    the tiles whose noise would reach the white level are left out, so the estimate stays
    where the unclipped capture of the same scene puts it."""
    rgb = flat_scene(384, 384) + synthetic_scene(384, 384, seed=3)
    cfa, grid, cap = _capture(rgb * 2.5, family, 1600, 14)
    assert np.mean(cfa >= 1.0) > 0.2
    clipped = _ratios(estimate_noise(cfa, grid), cap)
    cfa2, grid2, cap2 = _capture(rgb * 0.5, family, 1600, 14)
    assert np.mean(cfa2 >= 1.0) == 0.0
    unclipped = _ratios(estimate_noise(cfa2, grid2), cap2)
    assert np.all(np.abs(clipped - 1.0) < TOLERANCE), clipped.round(3)
    assert np.all(np.abs(clipped - unclipped) < 0.06), (clipped.round(3), unclipped.round(3))


@pytest.mark.parametrize("family", sorted(LAYOUTS))
def test_channels_with_different_noise_are_fitted_apart(family: str) -> None:
    """Red twice and blue 0.6 times green's variance (a sensor with per-channel gains):
    each channel gets its own fit instead of the pooled one."""
    _, grid, cap = _capture(flat_scene(384, 384), family, 800, 14)
    a, b = cap.noise
    tiled = np.tile(grid, (384 // grid.shape[0],) * 2)
    clean = cap.target / cap.multipliers[:, None, None]  # balanced truth -> raw units
    mosaic = np.take_along_axis(clean, tiled[None], axis=0)[0]
    var = np.array([2.0, 1.0, 0.6])[tiled] * (a * mosaic + b * b)
    noisy = mosaic + np.random.default_rng(7).standard_normal(mosaic.shape) * np.sqrt(var)
    profile = estimate_noise(np.minimum(noisy, 1.0).astype(np.float32), grid)
    for c, k in enumerate((2.0, 1.0, 0.6)):
        x = 0.126 * float(cap.body.neutral[c])
        assert profile.std(x, c) / np.sqrt(k * (a * x + b * b)) == pytest.approx(1.0, abs=TOLERANCE)


@pytest.mark.parametrize("family", sorted(LAYOUTS))
def test_a_constant_black_or_clipped_image_gives_a_zero_profile(family: str, caplog) -> None:
    grid = LAYOUTS[family]
    caplog.set_level(logging.DEBUG, logger="demosaic.noise.estimate")
    for image in (np.full((200, 200), 0.3, np.float32), np.zeros((200, 200), np.float32),
                  np.ones((200, 200), np.float32), np.full((200, 200), np.nan, np.float32)):
        profile = estimate_noise(image, grid)
        assert profile.is_clean and profile.source == "estimated"
    assert "zero profile" in caplog.text


@pytest.mark.parametrize("family", sorted(LAYOUTS))
def test_a_tiny_image_gives_a_rough_estimate_and_odd_inputs_never_raise(family: str) -> None:
    """64 x 64 px: few tiles, no flatness test between them (documented as rough: within
    30 % on a flat picture); smaller or malformed inputs give a zero profile, never an error."""
    cfa, grid, cap = _capture(np.full((3, 64, 64), 0.3, np.float32), family, 3200, 14)
    assert np.all(np.abs(_ratios(estimate_noise(cfa, grid), cap) - 1.0) < 0.3)
    for image, layout in ((cfa[:10, :10], grid), (np.zeros((0, 0)), grid), (cfa[0], grid),
                          (cfa, np.zeros(3)), (cfa, np.zeros((3, 3), int)),
                          (cfa, np.full((2, 2), 5)), (cfa.astype(np.uint16), grid)):
        assert isinstance(estimate_noise(image, layout), NoiseProfile)


def test_libraw_second_green_and_determinism() -> None:
    """LibRaw's colour 3 (second green) counts as green; the same call gives the same answer."""
    cfa, grid, _ = _capture(flat_scene(256, 256), "bayer", 1600, 14)
    first = estimate_noise(cfa, grid)
    second_green = grid.copy()
    second_green[np.nonzero(grid == 1)[0][-1], np.nonzero(grid == 1)[1][-1]] = 3
    assert estimate_noise(cfa, second_green) == first
    assert estimate_noise(cfa.copy(), grid.copy()) == first


def test_a_24_megapixel_mosaic_takes_well_under_a_second() -> None:
    """Speed (measured ~0.2 s for X-Trans on 2 cores); the bound leaves room for a busy
    machine."""
    rng = np.random.default_rng(0)
    h, w = 4000, 6000
    base = np.linspace(0.05, 0.6, w, dtype=np.float32)[None, :].repeat(h, 0)
    cfa = base + rng.standard_normal((h, w), dtype=np.float32) * np.sqrt(3e-5 * base + 1e-7)
    estimate_noise(cfa[:256, :256], XTRANS.array)  # filter tables, cached once per layout
    start = time.perf_counter()
    profile = estimate_noise(cfa, XTRANS.array)
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0
    assert profile.std(0.3, 1) == pytest.approx(np.sqrt(3e-5 * 0.3 + 1e-7), rel=0.05)


#: Bound on estimated / true std at green mid-grey over the bundled photographs (their own
#: texture and grain count as noise: measured max 2.81 / 2.88 at ISO 800, 1.69 / 1.78 at
#: ISO 3200 for X-Trans / Bayer, min 0.93, median ~1.05), with a margin.
PHOTO_BOUNDS = {800: 3.2, 3200: 2.0}


@pytest.mark.parametrize("iso", sorted(PHOTO_BOUNDS))
@pytest.mark.parametrize("family", sorted(LAYOUTS))
def test_bundled_photographs_are_not_overestimated_beyond_the_measured_bound(
        tmp_path, family: str, iso: int) -> None:
    """Real photographs (src/demosaic/assets/samples) through a camera-like DNG: texture
    only inflates the estimate, by at most the measured bound; never far below the truth."""
    from pathlib import Path

    from demosaic.io.images import read_image_linear

    root = Path(__file__).resolve().parents[2] / "src" / "demosaic" / "assets" / "samples"
    photos = sorted(p for p in root.glob("*/*") if p.suffix in (".png", ".jpg"))
    assert len(photos) >= 8
    cfg = CameraSimConfig(illuminant_sigma=0.0, wb_error=0.0, bits=[14])
    ratios = []
    for i, photo in enumerate(photos):
        path, cap = write_camera_raw(tmp_path / "shot.dng", read_image_linear(photo),
                                     LAYOUTS[family], iso=iso, cfg=cfg,
                                     rng=np.random.default_rng(i))
        raw = read_raw(path)
        ratios.append(_ratios(estimate_noise(raw.cfa, raw.layout), cap)[1])
    ratios = np.array(ratios)
    assert ratios.max() < PHOTO_BOUNDS[iso], ratios.round(3)
    assert ratios.min() > 0.85, ratios.round(3)
    assert np.median(ratios) < 1.2, ratios.round(3)
