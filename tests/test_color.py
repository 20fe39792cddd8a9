"""demosaic.color: sRGB transfer, colour matrices, white balance."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from demosaic import cfa
from demosaic import color as C
from demosaic.errors import DemosaicError

# A plausible XYZ -> camera matrix (made-up numbers with the shape of a real sensor's).
CAM = np.array([[1.1, -0.35, -0.12], [-0.42, 1.25, 0.18], [-0.06, 0.21, 0.58]])


# --------------------------------------------------------------------------------------
# sRGB transfer
# --------------------------------------------------------------------------------------


def test_srgb_known_values() -> None:
    assert C.srgb_to_linear(np.float64(0.5)) == pytest.approx(0.21404114048223255, abs=1e-12)
    assert C.linear_to_srgb(np.float64(0.0031308)) == pytest.approx(0.0031308 * 12.92, abs=1e-15)
    assert C.srgb_to_linear(np.float64(0.04045)) == pytest.approx(0.04045 / 12.92, abs=1e-15)
    # just above the thresholds the power segments apply
    assert C.linear_to_srgb(np.float64(0.0032)) == pytest.approx(1.055 * 0.0032 ** (1 / 2.4) - 0.055)
    assert C.srgb_to_linear(np.float64(0.05)) == pytest.approx(((0.05 + 0.055) / 1.055) ** 2.4)
    assert C.linear_to_srgb(np.float64(1.0)) == pytest.approx(1.0, abs=1e-12)
    assert C.srgb_to_linear(np.float64(1.0)) == pytest.approx(1.0, abs=1e-12)
    assert C.linear_to_srgb(np.float64(0.0)) == 0.0


def test_srgb_extends_beyond_unit_range_sign_symmetrically() -> None:
    x = np.array([-4.0, -1.5, -0.2, -0.001, 0.001, 0.2, 1.5, 4.0])
    enc = C.linear_to_srgb(x)
    np.testing.assert_allclose(C.linear_to_srgb(-x), -enc, rtol=0, atol=0)
    # above 1 the power curve continues
    assert enc[-1] == pytest.approx(1.055 * 4.0 ** (1 / 2.4) - 0.055)
    assert enc[-1] > 1.0 and enc[0] < -1.0
    np.testing.assert_allclose(C.srgb_to_linear(-enc), -x, rtol=1e-12, atol=1e-15)
    assert np.all(np.diff(C.linear_to_srgb(np.linspace(-3, 3, 10001))) > 0)  # monotonic


def test_srgb_round_trip_numpy_float64_and_float32() -> None:
    x = np.linspace(-5, 5, 200001)
    np.testing.assert_allclose(C.srgb_to_linear(C.linear_to_srgb(x)), x, rtol=1e-12, atol=1e-8)
    v = np.linspace(-5, 5, 200001)
    # the IEC segments miss each other by ~2e-6 in encoded values at 0.04045: within 3e-8
    np.testing.assert_allclose(C.linear_to_srgb(C.srgb_to_linear(v)), v, rtol=1e-12, atol=3e-8)
    away = np.abs(np.abs(v) - 0.04045) > 3e-6
    np.testing.assert_allclose(C.linear_to_srgb(C.srgb_to_linear(v[away])), v[away], rtol=1e-12,
                               atol=1e-15)
    x32 = x.astype(np.float32)
    out = C.srgb_to_linear(C.linear_to_srgb(x32))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, x32, rtol=2e-6, atol=1e-7)


def test_srgb_8bit_codes_survive_round_trip() -> None:
    codes = np.arange(256)
    lin = C.srgb_to_linear(codes / 255.0)
    back = np.rint(C.linear_to_srgb(lin) * 255).astype(int)
    np.testing.assert_array_equal(back, codes)


def test_srgb_integer_input_promoted_to_float32() -> None:
    out = C.srgb_to_linear(np.array([0, 1, 2]))
    assert out.dtype == np.float32


def test_srgb_torch_matches_numpy_and_has_finite_gradients() -> None:
    x = torch.linspace(-3, 3, 1001, dtype=torch.float64)
    np.testing.assert_allclose(C.linear_to_srgb(x).numpy(), C.linear_to_srgb(x.numpy()), atol=1e-14)
    np.testing.assert_allclose(C.srgb_to_linear(x).numpy(), C.srgb_to_linear(x.numpy()), atol=1e-14)
    t = torch.tensor([-2.0, -0.001, 0.0, 0.0031308, 0.04045, 0.5, 3.0], requires_grad=True)
    (C.linear_to_srgb(t).sum() + C.srgb_to_linear(t).sum()).backward()
    assert t.grad is not None and torch.all(torch.isfinite(t.grad))
    y = C.srgb_to_linear(C.linear_to_srgb(torch.linspace(-2, 2, 999)))
    assert y.dtype == torch.float32
    torch.testing.assert_close(y, torch.linspace(-2, 2, 999), rtol=2e-6, atol=1e-7)


# --------------------------------------------------------------------------------------
# matrices
# --------------------------------------------------------------------------------------


def test_standard_matrices() -> None:
    iec = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722], [0.0193, 0.1192, 0.9505]])
    np.testing.assert_allclose(C.SRGB_TO_XYZ, iec, atol=2e-4)
    bt2020 = np.array([[0.6370, 0.1446, 0.1689], [0.2627, 0.6780, 0.0593], [0.0, 0.0281, 1.0610]])
    np.testing.assert_allclose(C.REC2020_TO_XYZ, bt2020, atol=2e-4)
    np.testing.assert_allclose(C.SRGB_TO_XYZ @ np.ones(3), C.D65_XYZ, atol=1e-12)
    np.testing.assert_allclose(C.REC2020_TO_XYZ @ np.ones(3), C.D65_XYZ, atol=1e-12)
    np.testing.assert_allclose(C.XYZ_TO_SRGB @ C.SRGB_TO_XYZ, np.eye(3), atol=1e-12)
    assert C.D65_XYZ[1] == 1.0


@pytest.mark.parametrize("space", ["srgb", "rec2020"])
def test_camera_white_maps_to_output_white(space: str) -> None:
    m = C.camera_to_output_matrix(CAM, space)
    assert m.shape == (3, 3)
    np.testing.assert_allclose(m @ np.ones(3), np.ones(3), atol=1e-12)


def test_camera_matrix_xyz_output_and_row_scale_invariance() -> None:
    np.testing.assert_allclose(C.camera_to_output_matrix(CAM, "xyz") @ np.ones(3), C.D65_XYZ,
                               atol=1e-12)
    scaled = CAM * np.array([[2.0], [0.5], [7.0]])
    np.testing.assert_allclose(C.camera_to_output_matrix(scaled), C.camera_to_output_matrix(CAM),
                               atol=1e-12)
    # rec2020 = sRGB result converted through XYZ
    np.testing.assert_allclose(
        C.camera_to_output_matrix(CAM, "rec2020"),
        C.XYZ_TO_REC2020 @ C.SRGB_TO_XYZ @ C.camera_to_output_matrix(CAM, "srgb"), atol=1e-12)


def test_camera_that_sees_srgb_gives_identity() -> None:
    np.testing.assert_allclose(C.camera_to_output_matrix(C.XYZ_TO_SRGB), np.eye(3), atol=1e-12)
    # a camera response to XYZ: output of camera XYZ->camera then matrix recovers sRGB
    rgb = np.array([0.2, 0.5, 0.9])
    cam = CAM @ C.SRGB_TO_XYZ @ rgb
    pre_mul = 1.0 / (CAM @ C.D65_XYZ)  # white balance that makes D65 camera-neutral
    out = C.camera_to_output_matrix(CAM) @ (cam * pre_mul)
    np.testing.assert_allclose(out, rgb, atol=1e-12)


def test_xyz_to_cam_from_rgb_cam_inverts() -> None:
    rgb_cam = C.camera_to_output_matrix(CAM)
    back = C.xyz_to_cam_from_rgb_cam(rgb_cam)
    np.testing.assert_allclose(back @ C.D65_XYZ, np.ones(3), atol=1e-12)  # rows normalised
    np.testing.assert_allclose(back, CAM / (CAM @ C.D65_XYZ)[:, None], atol=1e-12)
    np.testing.assert_allclose(C.camera_to_output_matrix(back), rgb_cam, atol=1e-12)


def test_camera_matrix_errors() -> None:
    with pytest.raises(DemosaicError, match="3x3"):
        C.camera_to_output_matrix(np.zeros((4, 3)))
    with pytest.raises(DemosaicError, match="zero"):
        C.camera_to_output_matrix(np.zeros((3, 3)))
    with pytest.raises(DemosaicError, match="unknown output colour space"):
        C.camera_to_output_matrix(CAM, "prophoto")


def test_apply_matrix_numpy_torch_batched(rng: np.random.Generator) -> None:
    img = rng.normal(size=(3, 5, 7)).astype(np.float32) * 2
    m = C.camera_to_output_matrix(CAM)
    expected = np.einsum("ck,khw->chw", m, img.astype(np.float64))
    out = C.apply_matrix(img, m)
    assert out.dtype == np.float32 and out.shape == img.shape
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    batch = np.stack([img, -img])
    np.testing.assert_allclose(C.apply_matrix(batch, m)[1], -expected, rtol=1e-5, atol=1e-5)
    t = C.apply_matrix(torch.from_numpy(batch), torch.from_numpy(m))
    assert isinstance(t, torch.Tensor) and t.dtype == torch.float32
    np.testing.assert_allclose(t[0].numpy(), expected, rtol=1e-5, atol=1e-5)
    with pytest.raises(DemosaicError):
        C.apply_matrix(img[:2], m)
    with pytest.raises(DemosaicError):
        C.apply_matrix(img, np.eye(4))


# --------------------------------------------------------------------------------------
# white balance
# --------------------------------------------------------------------------------------


def test_apply_white_balance_normalises_green(rng: np.random.Generator) -> None:
    img = rng.random((3, 4, 6)).astype(np.float32) * 3  # values > 1 must survive
    out = C.apply_white_balance(img, [2.0, 2.0, 3.0])
    np.testing.assert_allclose(out, img * np.array([1.0, 1.0, 1.5], np.float32)[:, None, None])
    assert out.max() > 1.0
    t = C.apply_white_balance(torch.from_numpy(img)[None], (2.0, 2.0, 3.0, 0.0))
    np.testing.assert_allclose(t[0].numpy(), out, rtol=1e-6)
    for bad in ([1.0, 1.0], [1.0, 0.0, 1.0], [1.0, float("nan"), 1.0]):
        with pytest.raises(DemosaicError, match="multipliers|white balance"):
            C.apply_white_balance(img, bad)


@pytest.mark.parametrize("pattern,shift", [("xtrans", (0, 0)), ("xtrans", (2, 5)),
                                           ("bayer_grbg", (1, 0))])
def test_white_balance_mosaic_commutes_with_mosaicking(rng: np.random.Generator, pattern: str,
                                                       shift: tuple[int, int]) -> None:
    p = cfa.get_pattern(pattern)
    layout = p.shifted(*shift)
    h, w = 13, 17  # not multiples of the period
    rgb = rng.random((3, h, w)).astype(np.float32) * 2
    # mosaic in the shifted phase: sample with the layout's own (tiled) mask
    full = np.tile(layout, (-(-h // p.period), -(-w // p.period)))[:h, :w]
    mosaic = np.take_along_axis(rgb, full[None], axis=0)
    mult = (1.8, 0.9, 1.35)
    wb_first = np.take_along_axis(C.apply_white_balance(rgb, mult), full[None], axis=0)
    out = C.white_balance_mosaic(mosaic, layout, mult)
    np.testing.assert_allclose(out, wb_first, rtol=1e-6)
    out_t = C.white_balance_mosaic(torch.from_numpy(mosaic)[None], layout, mult)
    assert out_t.shape == (1, 1, h, w)
    np.testing.assert_allclose(out_t[0].numpy(), wb_first, rtol=1e-6)


def test_white_balance_mosaic_accepts_libraw_second_green_and_rejects_bad_layout() -> None:
    mos = np.ones((4, 4), np.float32)
    out = C.white_balance_mosaic(mos, [[0, 1], [3, 2]], (2.0, 1.0, 4.0))
    np.testing.assert_array_equal(out[:2, :2], [[2.0, 1.0], [1.0, 4.0]])
    with pytest.raises(DemosaicError):
        C.white_balance_mosaic(mos, [[0, 1, 2]], (1, 1, 1))
    with pytest.raises(DemosaicError):
        C.white_balance_mosaic(mos, [[0, 5], [1, 2]], (1, 1, 1))


def test_acescg_matches_the_published_srgb_to_acescg_matrix():
    """sRGB (D65) -> ACEScg with Bradford adaptation, as published (e.g. by colour-science)."""
    m = C.xyz_to_output("acescg") @ C.SRGB_TO_XYZ
    published = np.array([[0.6131, 0.3395, 0.0474],
                          [0.0702, 0.9164, 0.0134],
                          [0.0206, 0.1096, 0.8698]])
    np.testing.assert_allclose(m, published, atol=2e-4)
    np.testing.assert_allclose(m @ np.ones(3), np.ones(3), atol=1e-9)  # white stays white
    ch = C.chromaticities(C.ACESCG_TO_XYZ)
    np.testing.assert_allclose(ch, [0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767],
                               atol=1e-9)
