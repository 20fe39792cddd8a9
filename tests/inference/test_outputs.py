"""Outputs other tools read right (issue 19): colour labels, ICC profiles, capture metadata,
the linear DNG's layout and range. The real tools (OpenImageIO, exiftool, darktable) are in
``test_tools.py``; here everything is checked with Python readers (OpenEXR, tifffile,
LittleCMS through Pillow, LibRaw through rawpy, Exiv2 through pyexiv2)."""

from __future__ import annotations

import io
from fractions import Fraction
from pathlib import Path

import numpy as np
import OpenEXR
import pytest
import rawpy
import tifffile
from PIL import Image, ImageCms

from demosaic import cfa as C
from demosaic.color import (ACESCG_TO_XYZ, REC2020_TO_XYZ, SRGB_TO_XYZ, XYZ_TO_SRGB,
                            chromaticities, srgb_to_linear)
from demosaic.inference.run import infer_file
from demosaic.sim.scenes import synthetic_scene
from demosaic.io import metadata as meta_mod
from demosaic.io.dng import LINEAR_BLACK, write_dng, write_linear_dng
from demosaic.io.icc import matrix_trc_profile
from demosaic.io.images import srgb_icc_profile

pyexiv2 = pytest.importorskip("pyexiv2", reason="the metadata extra (pyexiv2) is not installed")

#: A Fujifilm-like ColorMatrix1 (XYZ -> camera, D65): less saturated than sRGB.
XT_MATRIX = np.array([[1.1434, -0.4789, -0.0056], [-0.3631, 1.1603, 0.2254],
                      [-0.0454, 0.1275, 0.5952]])
SOURCE_EXIF = {
    "Exif.Photo.ISOSpeedRatings": "800", "Exif.Photo.ExposureTime": "1/250",
    "Exif.Photo.FNumber": "28/10", "Exif.Photo.FocalLength": "35/1",
    "Exif.Photo.LensMake": "FUJIFILM", "Exif.Photo.LensModel": "XF35mmF1.4 R",
    "Exif.Photo.DateTimeOriginal": "2026:05:17 18:42:07", "Exif.Photo.OffsetTimeOriginal": "+02:00",
    "Exif.Photo.BodySerialNumber": "A1B2C3",
    "Exif.Image.ColorMatrix2": "1/1 0/1 0/1 0/1 1/1 0/1 0/1 0/1 1/1", "Exif.Image.CalibrationIlluminant2": "17",
}
EXPECTED = {"make": "FUJIFILM", "model": "X-T3", "iso": 800.0, "exposure_time": Fraction(1, 250),
            "f_number": 2.8, "focal_length": 35.0, "lens_make": "FUJIFILM",
            "lens_model": "XF35mmF1.4 R", "capture_date": "2026:05:17 18:42:07",
            "utc_offset": "+02:00", "orientation": 6, "serial": "A1B2C3"}


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An X-Trans DNG of a scene with EXIF, a real-like colour matrix, a WB and orientation 6."""
    truth = synthetic_scene(72, 96, seed=5) * np.float32(0.45)
    neutral = np.array([0.5, 1.0, 0.7])
    mosaic = C.mosaic(truth * neutral[:, None, None].astype(np.float32), C.XTRANS)[0]
    return write_dng(tmp_path_factory.mktemp("src") / "DSCF0042.dng", mosaic, "xtrans",
                     black_level=1024, white_level=16383, as_shot_neutral=neutral,
                     color_matrix=XT_MATRIX, make="FUJIFILM", model="X-T3", orientation=6,
                     exif=SOURCE_EXIF)


def test_metadata_is_read_from_the_source(source: Path) -> None:
    meta = meta_mod.read_metadata(source)
    assert meta.present() == EXPECTED
    assert meta.dng_colour["ColorMatrix2"] == "1/1 0/1 0/1 0/1 1/1 0/1 0/1 0/1 1/1"
    assert meta.dng_colour["CalibrationIlluminant2"] == "17"


def test_exr_defaults_to_linear_rec709_and_carries_standard_attributes(source: Path,
                                                                     tmp_path: Path) -> None:
    out = infer_file(source, tmp_path / "a.exr", model="bilinear", device="cpu").output
    with OpenEXR.File(str(out)) as f:
        header = dict(f.header())
    assert np.allclose(header["chromaticities"], chromaticities(SRGB_TO_XYZ), atol=1e-6)
    assert np.allclose(header["chromaticities"][:6], (0.64, 0.33, 0.30, 0.60, 0.15, 0.06))
    assert header["cameraMake"] == "FUJIFILM" and header["cameraModel"] == "X-T3"
    assert header["isoSpeed"] == 800.0 and header["aperture"] == pytest.approx(2.8)
    assert header["expTime"] == pytest.approx(0.004) and header["nominalFocalLength"] == 35.0
    assert header["lensModel"] == "XF35mmF1.4 R" and header["lensMake"] == "FUJIFILM"
    assert header["capDate"] == "2026:05:17 18:42:07" and header["utcOffset"] == -7200.0
    assert header["cameraSerialNumber"] == "A1B2C3"
    assert "orientation 6" in header["demosaic:sourceOrientation"]
    assert "srgb linear D65" == header["demosaic:colorSpace"]


@pytest.mark.parametrize("space,to_xyz", [("rec2020", REC2020_TO_XYZ), ("acescg", ACESCG_TO_XYZ)])
def test_exr_colour_spaces_are_labelled(source: Path, tmp_path: Path, space: str,
                                        to_xyz: np.ndarray) -> None:
    out = infer_file(source, tmp_path / f"{space}.exr", model="bilinear", device="cpu",
                     color_space=space).output
    with OpenEXR.File(str(out)) as f:
        assert np.allclose(f.header()["chromaticities"], chromaticities(to_xyz), atol=1e-6)


def _profile(path: Path) -> ImageCms.ImageCmsProfile:
    with tifffile.TiffFile(path) as tif:
        return ImageCms.ImageCmsProfile(io.BytesIO(bytes(tif.pages.first.tags["InterColorProfile"].value)))


def test_icc_profiles_transform_like_littlecms() -> None:
    """Our sRGB profile transforms exactly like LittleCMS's own; a linear-sRGB profile decodes
    sRGB values to their linear values; a linear Rec.2020 profile maps to sRGB with the
    matrix the colour module uses."""
    rng = np.random.default_rng(0)
    arr = (rng.random((32, 32, 3)) * 255).astype(np.uint8)
    im = Image.fromarray(arr)
    srgb = ImageCms.createProfile("sRGB")

    def load(data: bytes) -> ImageCms.ImageCmsProfile:
        return ImageCms.ImageCmsProfile(io.BytesIO(data))

    ours = load(matrix_trc_profile(SRGB_TO_XYZ, "srgb", "ours"))
    same = np.asarray(ImageCms.applyTransform(im, ImageCms.buildTransform(ours, srgb, "RGB", "RGB")))
    assert np.abs(same.astype(int) - arr).max() <= 1
    lin = load(matrix_trc_profile(SRGB_TO_XYZ, "linear", "lin"))
    decoded = np.asarray(ImageCms.applyTransform(im, ImageCms.buildTransform(srgb, lin, "RGB", "RGB")))
    assert np.abs(decoded / 255.0 - srgb_to_linear(arr / 255.0)).max() <= 1.0 / 255
    rec = load(matrix_trc_profile(REC2020_TO_XYZ, "linear", "rec"))
    # a mid-saturated Rec.2020 colour inside the sRGB gamut
    px = np.array([[[0.30, 0.42, 0.25]]])
    expect = np.clip(XYZ_TO_SRGB @ REC2020_TO_XYZ @ px[0, 0], 0, 1)
    as_srgb = ImageCms.applyTransform(Image.fromarray((px * 255).round().astype(np.uint8)),
                                      ImageCms.buildTransform(rec, lin, "RGB", "RGB"))
    assert np.abs(np.asarray(as_srgb)[0, 0] / 255.0 - expect).max() <= 2.5 / 255


def test_tiff_profile_matches_encoding_and_space_and_carries_exif(source: Path,
                                                                  tmp_path: Path) -> None:
    default = infer_file(source, tmp_path / "a.tif", model="bilinear", device="cpu").output
    assert _profile(default).tobytes() == ImageCms.ImageCmsProfile(io.BytesIO(srgb_icc_profile())).tobytes()
    linear = infer_file(source, tmp_path / "b.tif", model="bilinear", device="cpu",
                        color_space="rec2020", tiff_encoding="linear").output
    assert ImageCms.getProfileDescription(_profile(linear)).strip() == "Linear Rec.2020 (D65)"
    camera = infer_file(source, tmp_path / "c.tif", model="bilinear", device="cpu",
                        color_space="camera").output
    assert "FUJIFILM X-T3 camera RGB" in ImageCms.getProfileDescription(_profile(camera))
    meta = meta_mod.read_metadata(linear)
    assert meta.present() == {**EXPECTED, "orientation": 1}  # pixels upright


def test_linear_dng_layout_metadata_and_range(source: Path, tmp_path: Path) -> None:
    out = infer_file(source, tmp_path / "a.dng", model="bilinear", device="cpu").output
    with tifffile.TiffFile(out) as tif:
        ifd0 = tif.pages.first
        assert ifd0.tags["NewSubfileType"].value == 1 and ifd0.photometric == 2  # the preview
        assert max(ifd0.shape[:2]) <= 1024 and ifd0.dtype == np.uint8
        main = ifd0.pages[0]
        assert main.tags["NewSubfileType"].value == 0 and main.tags["PhotometricInterpretation"].value == 34892
        assert main.shape == (72, 96, 3) and main.dtype == np.uint16
    meta = meta_mod.read_metadata(out)
    assert meta.present() == EXPECTED  # orientation 6 kept: pixels stay in sensor orientation
    assert meta.dng_colour["ColorMatrix2"].startswith("1/1 0/1")
    with pyexiv2.Image(str(out)) as img:
        e = img.read_exif()
    assert e["Exif.Image.AsShotNeutral"].split()[0] == "1/2"
    with rawpy.imread(str(out)) as raw:
        assert raw.sizes.flip == 6 and raw.white_level > LINEAR_BLACK


def test_linear_dng_keeps_values_above_one(tmp_path: Path) -> None:
    """The white level is lowered so 2.5x the white fits; negatives (noise) clip to 0."""
    rgb = np.random.default_rng(1).random((3, 30, 40)).astype(np.float32) * 2.5 - 0.01
    out = write_linear_dng(tmp_path / "r.dng", rgb, xyz_to_cam=XT_MATRIX,
                           as_shot_neutral=(0.5, 1.0, 0.7))
    with tifffile.TiffFile(out) as tif:
        page = tif.pages.first
        black, white = page.tags["BlackLevel"].value, page.tags["WhiteLevel"].value
        back = (page.asarray().astype(np.float64).transpose(2, 0, 1) - black) / (white - black)
    assert black == LINEAR_BLACK == 0 and white == int(65535 / rgb.max())
    assert np.abs(back - np.maximum(rgb, 0)).max() <= 0.5 / (white - black) + 1e-6


def test_without_the_metadata_extra_outputs_keep_make_and_model(source: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    monkeypatch.setattr(meta_mod, "_pyexiv2", lambda: None)
    out = infer_file(source, tmp_path / "a.exr", model="bilinear", device="cpu").output
    with OpenEXR.File(str(out)) as f:
        header = dict(f.header())
    assert header["cameraModel"] == "X-T3" and "isoSpeed" not in header
    assert infer_file(source, tmp_path / "a.dng", model="bilinear", device="cpu").output.exists()


def test_folder_mode_writes_linear_dngs_and_skips_done_ones(source: Path, tmp_path: Path) -> None:
    from demosaic.cli.infer import main as infer_main

    folder = tmp_path / "raws"
    folder.mkdir()
    for name in ("a.dng", "b.dng"):
        (folder / name).write_bytes(source.read_bytes())
    out = tmp_path / "out"
    argv = [str(folder), str(out), "--model", "bilinear", "--device", "cpu", "--format", "dng",
            "--no-progress"]
    assert infer_main(argv) == 0
    written = sorted(p.name for p in out.iterdir())
    assert written == ["a.dng", "b.dng"]
    assert meta_mod.read_metadata(out / "b.dng").present() == EXPECTED
    before = (out / "a.dng").stat().st_mtime_ns
    assert infer_main(argv) == 0  # done files are skipped
    assert (out / "a.dng").stat().st_mtime_ns == before
