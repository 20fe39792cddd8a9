"""demosaic.io.raw and demosaic.io.dng: DNG writing, LibRaw read-back, errors."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from demosaic.errors import WriteError
import rawpy
import tifffile
import torch
from PIL import Image

from demosaic import cfa
from demosaic.color import XYZ_TO_SRGB, camera_to_output_matrix
from demosaic.errors import CFAError, DemosaicError, RawReadError
from demosaic.io.dng import PHOTOMETRIC_CFA, PHOTOMETRIC_LINEAR_RAW, write_dng
from demosaic.io.raw import (TIFF_ORIENTATION_TO_FLIP, apply_orientation, open_raw, read_raw,
                             visible_layout)

MakeDng = Callable[..., tuple[Path, np.ndarray]]
BLACK, WHITE = 1024, 15000


# --------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shift,margins",
    [((0, 0), (0, 0, 0, 0)), ((2, 3), (2, 4, 1, 3)), ((2, 3), (8, 10, 4, 2)),
     ((5, 1), (13, 7, 0, 3)), ((4, 4), (7, 12, 9, 1))],
)
def test_xtrans_round_trip_uint16(make_dng: MakeDng, rng: np.random.Generator,
                                  shift: tuple[int, int], margins: tuple[int, int, int, int]
                                  ) -> None:
    layout = cfa.XTRANS.shifted(*shift)
    values = rng.integers(BLACK, WHITE + 1, size=(30, 42)).astype(np.uint16)
    values[0, :4] = (0, 700, 20000, 65535)  # below black and above white: kept, not clipped
    path, written = make_dng(layout, cfa=values, black_level=BLACK, white_level=WHITE,
                             margins=margins, make="TestMake", model="X-Test 1")
    img = read_raw(path)
    assert img.family == "xtrans" and img.pattern is cfa.XTRANS
    np.testing.assert_array_equal(img.layout, layout)
    assert img.alignment == cfa.align(layout)
    assert img.cfa.dtype == np.float32 and img.cfa.shape == (30, 42)
    expected = (written.astype(np.float64) - BLACK) / (WHITE - BLACK)
    np.testing.assert_allclose(img.cfa, expected, rtol=1e-6, atol=1e-7)
    assert img.cfa.min() < 0 and img.cfa.max() > 1
    top, left, bottom, right = margins
    assert img.visible_size == (30, 42)
    assert img.margins == (top, left)
    assert img.raw_size == (30 + top + bottom, 42 + left + right)
    assert img.black_levels == (BLACK,) * 4 and img.white_level == WHITE
    assert (img.make, img.model) == ("TestMake", "X-Test 1")
    assert img.orientation == 0


def test_xtrans_layout_correct_where_rawpy_pattern_is_not(make_dng: MakeDng) -> None:
    """With a top margin > 6 px rawpy evaluates LibRaw's X-Trans table at negative indices;
    the layout must come from visible coordinates."""
    layout = cfa.XTRANS.shifted(1, 4)
    path, _ = make_dng(layout, margins=(9, 14, 0, 0))
    with open_raw(path) as raw:
        assert raw.raw_pattern.shape == (6, 6) and raw.num_colors == 3  # LibRaw: X-Trans
        got, alignment = visible_layout(raw, path)
    np.testing.assert_array_equal(got, layout)
    # the canonical crop really is canonical
    img = read_raw(path)
    tiled = np.tile(layout, (6, 8))[: img.cfa.shape[0], : img.cfa.shape[1]]
    cropped = cfa.crop_to_canonical(tiled, alignment)
    np.testing.assert_array_equal(cropped[:6, :6], cfa.XTRANS.array)
    np.testing.assert_array_equal(img.canonical_cfa(), img.cfa[alignment.dy :, alignment.dx :])
    assert img.canonical_cfa(6).shape[0] % 6 == 0 and img.canonical_cfa(6).shape[1] % 6 == 0


def test_float_round_trip_within_quantisation_and_clipping(make_dng: MakeDng,
                                                          rng: np.random.Generator) -> None:
    values = rng.uniform(-0.05, 1.5, size=(24, 36)).astype(np.float32)  # > 1 and < 0 survive
    values[0, 0] = 10.0  # beyond 65535: clipped there
    path, _ = make_dng(cfa.XTRANS.shifted(3, 0), cfa=values, black_level=BLACK,
                       white_level=WHITE, margins=(6, 6, 6, 6))
    img = read_raw(path)
    step = 1.0 / (WHITE - BLACK)
    err = np.abs(img.cfa - values)
    err[0, 0] = 0
    assert err.max() <= 0.5 * step + 1e-6
    assert img.cfa[0, 0] == pytest.approx((65535 - BLACK) / (WHITE - BLACK), rel=1e-6)
    assert img.cfa.max() > 1.4 and img.cfa.min() < -0.04


def test_torch_input_and_pattern_name(make_dng: MakeDng, rng: np.random.Generator) -> None:
    values = torch.from_numpy(rng.random((1, 24, 30)).astype(np.float32))
    path, _ = make_dng("xtrans", cfa=values)  # (1, H, W) tensor, canonical phase
    img = read_raw(path)
    assert img.alignment.is_canonical
    np.testing.assert_allclose(img.cfa, values[0].numpy(), atol=0.5 / 65535 + 1e-7)


@pytest.mark.parametrize("pattern,margins", [("bayer_grbg", (0, 0, 0, 0)),
                                             ("bayer_grbg", (2, 4, 2, 0)),
                                             ("bayer_bggr", (10, 8, 1, 3))])
def test_bayer_round_trip(make_dng: MakeDng, pattern: str, margins: tuple[int, int, int, int]
                          ) -> None:
    p = cfa.get_pattern(pattern)
    path, written = make_dng(pattern, size=(24, 26), black_level=BLACK, white_level=WHITE,
                             margins=margins)
    img = read_raw(path)
    assert img.family == "bayer" and img.pattern is cfa.BAYER_RGGB
    np.testing.assert_array_equal(img.layout, p.array)
    np.testing.assert_allclose(img.cfa, (written.astype(np.float64) - BLACK) / (WHITE - BLACK),
                               rtol=1e-6, atol=1e-7)


def test_bayer_odd_margins_lose_one_row_and_column_consistently(make_dng: MakeDng) -> None:
    """Documented LibRaw behaviour: odd Bayer margins are rounded up to even."""
    path, written = make_dng("bayer_grbg", size=(24, 26), margins=(3, 5, 2, 2))
    img = read_raw(path)
    assert img.visible_size == (23, 25) and img.margins == (4, 6)
    np.testing.assert_allclose(img.cfa, written[1:, 1:] / 65535.0, atol=1e-7)
    np.testing.assert_array_equal(img.layout, cfa.BAYER_GRBG.shifted(1, 1))


def test_colour_metadata(make_dng: MakeDng) -> None:
    cm = np.array([[0.8, -0.2, -0.1], [-0.4, 1.2, 0.2], [-0.1, 0.2, 0.6]])
    path, _ = make_dng("xtrans", as_shot_neutral=(0.5, 1.0, 0.625), color_matrix=cm)
    img = read_raw(path)
    assert img.wb_multipliers == pytest.approx((2.0, 1.0, 1.6), rel=1e-5)
    assert img.daylight_multipliers[1] == 1.0 and all(m > 0 for m in img.daylight_multipliers)
    # LibRaw's rgb_cam follows from ColorMatrix1; our matrix maths agrees with it
    np.testing.assert_allclose(camera_to_output_matrix(cm), img.cam_to_srgb, atol=2e-3)
    np.testing.assert_allclose(camera_to_output_matrix(img.xyz_to_cam), img.cam_to_srgb, atol=1e-9)
    # xyz_to_cam is the file's matrix up to row scaling
    ratio = img.xyz_to_cam / cm
    np.testing.assert_allclose(ratio, ratio[:, :1] * np.ones((1, 3)), rtol=2e-3)


def test_default_colour_matrix_is_srgb_camera(make_dng: MakeDng) -> None:
    path, _ = make_dng("bayer_rggb", size=(22, 22))
    img = read_raw(path)
    np.testing.assert_allclose(img.cam_to_srgb, np.eye(3), atol=2e-3)
    assert img.wb_multipliers == (1.0, 1.0, 1.0)
    assert img.make == "demosaic" and img.model == "Synthetic"


def test_raw_image_is_read_only_and_frozen(xtrans_dng: Path) -> None:
    img = read_raw(xtrans_dng)
    assert not img.cfa.flags.writeable and not img.layout.flags.writeable
    with pytest.raises(dataclasses.FrozenInstanceError):
        img.make = "x"  # type: ignore[misc]
    assert "xtrans" in repr(img)


def test_make_model_header_fallback(xtrans_dng: Path, tmp_path: Path,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the metadata extra, make and model still come from the file header."""
    from demosaic.io import metadata as meta_mod

    monkeypatch.setattr(meta_mod, "_pyexiv2", lambda: None)
    img = read_raw(xtrans_dng)
    assert img.model == "X-Test 1" and img.metadata.iso is None
    fake = tmp_path / "fake.raf"
    fake.write_bytes(b"FUJIFILMCCD-RAW 0201FF383501" + b"X-T3".ljust(32, b"\0") + b"\0" * 64)
    assert meta_mod._header_identity(fake) == ("FUJIFILM", "X-T3")


# --------------------------------------------------------------------------------------
# LibRaw processing of written DNGs
# --------------------------------------------------------------------------------------


def test_libraw_postprocess_large_xtrans_dng(make_dng: MakeDng) -> None:
    """LINEAR on a >= 512 px X-Trans DNG reproduces the flat linear colour we mosaicked;
    Markesteijn (requested as AHD) runs too."""
    h, w = 516, 522
    colour = np.array([0.2, 0.3, 0.45], np.float32)
    rgb = np.broadcast_to(colour[:, None, None], (3, h, w))
    layout = cfa.XTRANS.shifted(2, 1)
    full = np.tile(layout, (h // 6 + 1, w // 6 + 1))[:h, :w]
    mosaic = np.take_along_axis(rgb, full[None], axis=0)[0]
    path, _ = make_dng(layout, cfa=mosaic, black_level=BLACK, white_level=WHITE,
                       margins=(8, 9, 2, 3), name="big.dng")
    with open_raw(path) as raw:
        out = raw.postprocess(demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR, output_bps=16,
                              gamma=(1, 1), no_auto_bright=True, use_camera_wb=True,
                              output_color=rawpy.ColorSpace.sRGB, user_flip=0)
    assert out.shape == (h, w, 3)
    inner = out[8:-8, 8:-8].reshape(-1, 3) / 65535.0
    np.testing.assert_allclose(inner.mean(0), colour, rtol=0.01)
    assert inner.std(0).max() < 2e-3
    with open_raw(path) as raw:
        out = raw.postprocess(demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD, half_size=False)
    assert out.shape == (h, w, 3)


def test_small_xtrans_markesteijn_error_is_wrapped(xtrans_dng: Path) -> None:
    from demosaic.io.libraw import develop  # LibRaw's one development names the 512 px limit

    with pytest.raises(RawReadError, match="xtrans.dng.*512"):
        develop(xtrans_dng, "AHD")


@pytest.mark.parametrize("tiff_orientation", range(1, 9))
def test_orientation_matches_libraw(make_dng: MakeDng, rng: np.random.Generator,
                                    tiff_orientation: int) -> None:
    rgb = rng.random((3, 24, 30)).astype(np.float32)
    path, _ = make_dng("xtrans", cfa=cfa.mosaic(rgb, "xtrans")[0], orientation=tiff_orientation)
    img = read_raw(path)
    assert img.orientation == TIFF_ORIENTATION_TO_FLIP[tiff_orientation]
    kw = dict(demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR, output_bps=16, gamma=(1, 1),
              no_auto_bright=True)
    with open_raw(path) as raw:
        stored = raw.postprocess(user_flip=0, **kw)
    with open_raw(path) as raw:
        upright = raw.postprocess(**kw)
    turned = apply_orientation(np.moveaxis(stored, -1, 0), img.orientation)
    np.testing.assert_array_equal(turned, np.moveaxis(upright, -1, 0))


def test_apply_orientation_meaning_and_torch() -> None:
    img = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    np.testing.assert_array_equal(apply_orientation(img, 0), img)
    np.testing.assert_array_equal(apply_orientation(img, 3), img[:, ::-1, ::-1])
    np.testing.assert_array_equal(apply_orientation(img, 6), np.rot90(img, k=-1, axes=(1, 2)))
    np.testing.assert_array_equal(apply_orientation(img, 5), np.rot90(img, k=1, axes=(1, 2)))
    for flip in range(8):
        np.testing.assert_array_equal(apply_orientation(torch.from_numpy(img), flip).numpy(),
                                      apply_orientation(img, flip))
    with pytest.raises(DemosaicError):
        apply_orientation(img, 8)


# --------------------------------------------------------------------------------------
# write_dng argument errors and atomicity
# --------------------------------------------------------------------------------------


def test_write_dng_rejects_bad_arguments(tmp_path: Path) -> None:
    ok = np.zeros((24, 24), np.float32)
    out = tmp_path / "bad.dng"
    with pytest.raises(CFAError):
        write_dng(out, ok, [[1, 1], [1, 1]])
    with pytest.raises(DemosaicError, match="black_level"):
        write_dng(out, ok, "xtrans", black_level=4000, white_level=4000)
    with pytest.raises(DemosaicError, match="shape"):
        write_dng(out, np.zeros((2, 24, 24)), "xtrans")
    with pytest.raises(DemosaicError, match="too small.*22"):
        write_dng(out, np.zeros((12, 30)), "xtrans")
    with pytest.raises(DemosaicError, match="NaN"):
        write_dng(out, np.full((24, 24), np.nan), "xtrans")
    with pytest.raises(DemosaicError, match="0..65535"):
        write_dng(out, np.full((24, 24), 70000, np.int32), "xtrans")
    with pytest.raises(DemosaicError, match="orientation"):
        write_dng(out, ok, "xtrans", orientation=9)
    with pytest.raises(DemosaicError, match="margins"):
        write_dng(out, ok, "xtrans", margins=(1, -1, 0, 0))
    with pytest.raises(DemosaicError, match="as_shot_neutral"):
        write_dng(out, ok, "xtrans", as_shot_neutral=(1, 0, 1))
    assert not out.exists()


def test_write_dng_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "a.dng"
    write_dng(out, np.zeros((24, 24), np.float32), "xtrans")
    before = out.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        Path(args[0]).write_bytes(b"partial")  # type: ignore[arg-type]
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", boom)
    with pytest.raises(WriteError, match="disk full.*nothing was written"):
        write_dng(out, np.ones((24, 24), np.float32), "xtrans")
    assert out.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["a.dng"]


# --------------------------------------------------------------------------------------
# read errors
# --------------------------------------------------------------------------------------


def _write_tiff_dng(path: Path, data: np.ndarray, photometric: int, extra: list) -> Path:
    tags = [(50706, "B", 4, (1, 4, 0, 0), True), (50708, "s", 0, "Odd Cam", True),
            (50717, "I", 1, 4095, True), (50778, "H", 1, 21, True)]
    if not any(tag[0] == 50714 for tag in extra):
        tags.append((50714, "I", 1, 0, True))
    tifffile.imwrite(path, data, photometric=photometric, subfiletype=0, metadata=None,
                     extratags=tags + extra)
    return path


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(RawReadError, match="nope.raf.*does not exist"):
        read_raw(tmp_path / "nope.raf")
    with pytest.raises(RawReadError, match="not a file"):
        read_raw(tmp_path)


def test_png_renamed_raf_and_text_file(tmp_path: Path) -> None:
    png = tmp_path / "photo.raf"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(png, format="PNG")
    with pytest.raises(RawReadError, match="photo.raf.*not a camera raw"):
        read_raw(png)
    txt = tmp_path / "notes.dng"
    txt.write_text("hello\n" * 100)
    with pytest.raises(RawReadError, match="notes.dng"):
        read_raw(txt)


@pytest.mark.parametrize("fraction", [0.6, 0.05])
def test_truncated_dng(xtrans_dng: Path, tmp_path: Path, fraction: float) -> None:
    data = xtrans_dng.read_bytes()
    cut = tmp_path / "cut.dng"
    cut.write_bytes(data[: int(len(data) * fraction)])
    with pytest.raises(RawReadError, match="cut.dng.*(truncated|corrupt)"):
        read_raw(cut)


def test_cygm_sensor_rejected(tmp_path: Path) -> None:
    path = _write_tiff_dng(tmp_path / "cygm.dng", np.zeros((24, 24), np.uint16), PHOTOMETRIC_CFA, [
        (33421, "H", 2, (2, 2), True), (33422, "B", 4, (3, 5, 1, 4), True),
        (50710, "B", 4, (3, 5, 1, 4), True), (50711, "H", 1, 1, True),
        (50721, "2i", 12, [1, 1] * 12, True),
    ])
    with pytest.raises(RawReadError, match="cygm.dng.*not red/green/blue"):
        read_raw(path)


def test_non_bayer_rgb_layout_rejected(tmp_path: Path) -> None:
    # an RGB 2x2 arrangement that is not Bayer (two greens in a row)
    path = _write_tiff_dng(tmp_path / "stripes.dng", np.zeros((24, 24), np.uint16),
                           PHOTOMETRIC_CFA, [
        (33421, "H", 2, (2, 2), True), (33422, "B", 4, (1, 1, 0, 2), True),
        (50710, "B", 3, (0, 1, 2), True), (50711, "H", 1, 1, True),
        (50721, "2i", 9, [1, 1] * 9, True),
    ])
    with pytest.raises(RawReadError, match="stripes.dng.*neither X-Trans nor Bayer"):
        read_raw(path)


def test_per_channel_black_levels_and_missing_white_balance(tmp_path: Path,
                                                            rng: np.random.Generator) -> None:
    """A Bayer DNG with a 2x2 BlackLevelRepeatDim (LibRaw folds it into per-colour blacks,
    second green separate) and no AsShotNeutral (falls back to daylight)."""
    data = rng.integers(1100, 4000, (24, 26)).astype(np.uint16)
    path = _write_tiff_dng(tmp_path / "blk.dng", data, PHOTOMETRIC_CFA, [
        (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),
        (50710, "B", 3, (0, 1, 2), True), (50711, "H", 1, 1, True),
        (50721, "2i", 9, [1, 1, 0, 1, 0, 1, 0, 1, 1, 1, 0, 1, 0, 1, 0, 1, 1, 1], True),
        (50713, "H", 2, (2, 2), True), (50714, "I", 4, (1000, 1010, 1030, 1020), True),
    ])
    img = read_raw(path)
    black = np.tile(np.array([[1000.0, 1010.0], [1030.0, 1020.0]]), (12, 13))
    np.testing.assert_allclose(img.cfa, (data - black) / (4095 - black), rtol=1e-6, atol=1e-7)
    assert sorted(img.black_levels) == [1000.0, 1010.0, 1020.0, 1030.0]
    assert img.wb_multipliers == img.daylight_multipliers
    np.testing.assert_array_equal(img.layout, cfa.BAYER_RGGB.array)


def test_a_dng_without_colour_matrix_is_read_as_libraw_reads_it(tmp_path: Path,
                                                                  rng: np.random.Generator,
                                                                  caplog: pytest.LogCaptureFixture
                                                                  ) -> None:
    """No ColorMatrix1 (LibRaw leaves both of its matrices empty): camera RGB is taken for
    linear sRGB (identity rgb_cam), with a warning naming the file, instead of an error about
    a singular matrix; demosaic-infer's colour step then works."""
    data = rng.integers(1100, 4000, (48, 48)).astype(np.uint16)
    path = _write_tiff_dng(tmp_path / "nomatrix.dng", data, PHOTOMETRIC_CFA, [
        (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),
        (50710, "B", 3, (0, 1, 2), True), (50711, "H", 1, 1, True),
        (50714, "I", 1, 1024, True), (50717, "I", 1, 4095, True),
    ])
    with caplog.at_level("WARNING", logger="demosaic.io.raw"):
        img = read_raw(path)
    assert any("nomatrix.dng" in r.message and "no colour matrix" in r.message for r in caplog.records)
    np.testing.assert_allclose(img.cam_to_srgb, np.eye(3))
    np.testing.assert_allclose(camera_to_output_matrix(img.xyz_to_cam, "srgb"), np.eye(3), atol=1e-9)


def test_as_shot_white_xy_gives_the_as_shot_and_the_daylight_balance(tmp_path: Path,
                                                                       rng: np.random.Generator
                                                                       ) -> None:
    """A DNG whose as-shot white is ``AsShotWhiteXY`` (tungsten) instead of AsShotNeutral:
    the as-shot multipliers are that white's, ``1 / (ColorMatrix @ XYZ(x, y))`` (what LibRaw
    falls back to), and the daylight ones come from the matrix at D65, not from that white."""
    from demosaic.sim.camera import body_by_name
    from demosaic.color import D65_XYZ

    cm = np.asarray(body_by_name("X-T3", "xtrans").xyz_to_cam, dtype=np.float64)
    x, y = 0.4476, 0.4074
    srational = [v for c in cm.ravel() for v in (int(round(c * 10000)), 10000)]
    data = rng.integers(1100, 4000, (48, 48)).astype(np.uint16)
    path = _write_tiff_dng(tmp_path / "whitexy.dng", data, PHOTOMETRIC_CFA, [
        (33421, "H", 2, (2, 2), True), (33422, "B", 4, (0, 1, 1, 2), True),
        (50710, "B", 3, (0, 1, 2), True), (50711, "H", 1, 1, True),
        (50721, "2i", 9, srational, True), (50778, "H", 1, 21, True),
        (50729, "2I", 2, [4476, 10000, 4074, 10000], True),
    ])
    img = read_raw(path)

    def mult(xyz: np.ndarray) -> np.ndarray:
        m = 1.0 / (np.round(cm * 10000) / 10000 @ xyz)
        return m / m[1]

    np.testing.assert_allclose(img.wb_multipliers, mult(np.array([x / y, 1.0, (1 - x - y) / y])),
                               rtol=2e-3)
    np.testing.assert_allclose(img.daylight_multipliers, mult(D65_XYZ), rtol=2e-3)
    assert img.wb_multipliers[2] > 2.5 > img.daylight_multipliers[2]  # tungsten: much more blue


def test_linear_dng_rejected(tmp_path: Path) -> None:
    data = np.zeros((24, 24, 3), np.uint16)
    path = _write_tiff_dng(tmp_path / "linear.dng", data, PHOTOMETRIC_LINEAR_RAW,
                           [(50721, "2i", 9, [1, 1] * 9, True)])
    with pytest.raises(RawReadError, match="linear.dng.*already demosaiced"):
        read_raw(path)


def test_sensor_check_helper_gives_same_errors(tmp_path: Path) -> None:
    data = np.zeros((24, 24, 3), np.uint16)
    path = _write_tiff_dng(tmp_path / "lin2.dng", data, PHOTOMETRIC_LINEAR_RAW,
                           [(50721, "2i", 9, [1, 1] * 9, True)])
    with open_raw(path) as raw, pytest.raises(RawReadError, match="lin2.dng"):
        visible_layout(raw, path)


def test_xyz_matrix_default_is_srgb() -> None:
    # the writer's default "camera" is linear sRGB: LibRaw maps it back to identity
    np.testing.assert_allclose(camera_to_output_matrix(XYZ_TO_SRGB), np.eye(3), atol=1e-12)
