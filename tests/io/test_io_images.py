"""demosaic.io.images: PNG/JPEG/TIFF/EXR reading and writing."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import OpenEXR
import pytest

from demosaic.errors import WriteError
import tifffile
import torch
from PIL import Image

from demosaic import io as dio
from demosaic.color import linear_to_srgb, srgb_to_linear
from demosaic.errors import ImageIOError
from demosaic.io import images as images_mod
from demosaic.io.images import (EXR_COMPRESSIONS, half_range_exceeded, read_exr, read_image, read_image_linear, write_exr, write_png,
                                write_tiff16)


def _png16(path: Path, data: np.ndarray, filters: list[int]) -> Path:
    """Independent 16-bit PNG encoder using each PNG filter type in turn per row."""
    h, w, c = data.shape
    bpp = 2 * c
    raw = data.astype(">u2").view(np.uint8).reshape(h, w, bpp).astype(np.int32)
    prev = np.zeros((w, bpp), np.int32)
    zero = np.zeros((1, bpp), np.int32)
    rows = []
    for y in range(h):
        f = filters[y % len(filters)]
        row = raw[y]
        left = np.vstack([zero, row[:-1]])
        upleft = np.vstack([zero, prev[:-1]])
        if f == 0:
            out = row
        elif f == 1:
            out = row - left
        elif f == 2:
            out = row - prev
        elif f == 3:
            out = row - ((left + prev) >> 1)
        else:
            p = left + prev - upleft
            pa, pb, pc = abs(p - left), abs(p - prev), abs(p - upleft)
            out = row - np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, prev, upleft))
        rows.append(bytes([f]) + (out & 255).astype(np.uint8).tobytes())
        prev = row

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    colour = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    path.write_bytes(b"\x89PNG\r\n\x1a\n"
                     + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"".join(rows))) + chunk(b"IEND", b""))
    return path


# --------------------------------------------------------------------------------------
# reading integer formats
# --------------------------------------------------------------------------------------


def test_png8_rgb_grey_alpha_palette(tmp_path: Path, rng: np.random.Generator) -> None:
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    out = read_image(tmp_path / "rgb.png")
    assert out.shape == (7, 9, 3) and out.dtype == np.float32
    np.testing.assert_array_equal(out, rgb / np.float32(255))
    lin = read_image_linear(tmp_path / "rgb.png")
    assert lin.shape == (3, 7, 9) and lin.dtype == np.float32
    np.testing.assert_allclose(lin, srgb_to_linear(np.moveaxis(rgb, -1, 0) / 255.0), atol=1e-7)

    grey = rgb[..., 0]
    Image.fromarray(grey).save(tmp_path / "grey.png")
    g = read_image(tmp_path / "grey.png")
    assert g.shape == (7, 9, 3)
    for c in range(3):
        np.testing.assert_array_equal(g[..., c], grey / np.float32(255))

    rgba = np.dstack([rgb, np.full((7, 9), 17, np.uint8)])
    Image.fromarray(rgba).save(tmp_path / "rgba.png")
    np.testing.assert_array_equal(read_image(tmp_path / "rgba.png"), out)

    Image.fromarray(rgb).quantize(colors=8).save(tmp_path / "pal.png")
    pal = read_image(tmp_path / "pal.png")
    expected = np.asarray(Image.open(tmp_path / "pal.png").convert("RGB")) / np.float32(255)
    np.testing.assert_array_equal(pal, expected)


@pytest.mark.parametrize("channels,filters", [(3, [0, 1, 2, 3, 4]), (3, [1, 2]), (4, [4]),
                                              (1, [3, 4]), (2, [0])])
def test_png16_decoded_exactly(tmp_path: Path, rng: np.random.Generator, channels: int,
                               filters: list[int]) -> None:
    data = rng.integers(0, 65536, (11, 13, channels)).astype(np.uint16)
    path = _png16(tmp_path / "a16.png", data, filters)
    out = read_image(path)
    expected_rgb = data[..., :3] if channels >= 3 else np.repeat(data[..., :1], 3, axis=-1)
    np.testing.assert_array_equal(out, expected_rgb.astype(np.float32) / np.float32(65535))


def test_png16_grey_written_by_pillow(tmp_path: Path, rng: np.random.Generator) -> None:
    grey = rng.integers(0, 65536, (6, 10)).astype(np.uint16)
    Image.fromarray(grey).save(tmp_path / "g16.png")  # mode I;16
    out = read_image(tmp_path / "g16.png")
    np.testing.assert_array_equal(out[..., 1], grey / np.float32(65535))


def test_png16_truncated_and_corrupt(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.integers(0, 65536, (20, 20, 3)).astype(np.uint16)
    good = _png16(tmp_path / "good.png", data, [4]).read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageIOError, match="cut.png"):
        read_image(cut)
    corrupt = bytearray(good)
    corrupt[28] = 1  # IHDR changed without fixing its CRC
    (tmp_path / "crc.png").write_bytes(bytes(corrupt))
    with pytest.raises(ImageIOError, match="crc.png"):
        read_image(tmp_path / "crc.png")


def test_jpeg(tmp_path: Path) -> None:
    yy, xx = np.mgrid[0:32, 0:40]
    rgb = np.stack([yy * 7, xx * 6, (xx + yy) * 3], -1).clip(0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=98)
    out = read_image(tmp_path / "a.jpg")
    assert out.shape == (32, 40, 3)
    assert np.abs(out - rgb / 255.0).mean() < 0.01
    Image.fromarray(rgb[..., 0]).save(tmp_path / "g.jpeg")
    assert read_image(tmp_path / "g.jpeg").shape == (32, 40, 3)


def test_tiff_8_16_bit_planar_grey_float(tmp_path: Path, rng: np.random.Generator) -> None:
    rgb8 = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "a8.tif", rgb8, photometric="rgb")
    np.testing.assert_array_equal(read_image(tmp_path / "a8.tif"), rgb8 / np.float32(255))
    rgb16 = rng.integers(0, 65536, (5, 6, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "a16.tiff", rgb16, photometric="rgb")
    np.testing.assert_array_equal(read_image(tmp_path / "a16.tiff"), rgb16 / np.float32(65535))
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(rgb16, -1, 0), photometric="rgb",
                     planarconfig="separate")
    np.testing.assert_array_equal(read_image(tmp_path / "planar.tif"), rgb16 / np.float32(65535))
    tifffile.imwrite(tmp_path / "grey.tif", rgb16[..., 1], photometric="minisblack")
    np.testing.assert_array_equal(read_image(tmp_path / "grey.tif")[..., 2],
                                  rgb16[..., 1] / np.float32(65535))
    f = rng.normal(size=(5, 6, 3)).astype(np.float32) * 2
    tifffile.imwrite(tmp_path / "f.tif", f, photometric="rgb")
    np.testing.assert_array_equal(read_image(tmp_path / "f.tif"), f)
    Image.fromarray(rgb8).quantize(colors=4).save(tmp_path / "pal.tif")  # palette: via Pillow
    assert read_image(tmp_path / "pal.tif").shape == (5, 6, 3)


# --------------------------------------------------------------------------------------
# writers
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("half", [True, False])
def test_exr_round_trip_keeps_out_of_range_values(tmp_path: Path, rng: np.random.Generator,
                                                  half: bool) -> None:
    rgb = (rng.normal(size=(3, 9, 11)) * 3).astype(np.float32)
    rgb[0, 0, :3] = (1000.0, -0.5, 1.0 + 1e-3)
    meta = {"demosaic.model": "unet", "comment": "test"}
    path = write_exr(tmp_path / "a.exr", rgb, half=half, metadata=meta)
    out, got_meta = read_exr(path)
    assert out.shape == (3, 9, 11) and out.dtype == np.float32
    expected = rgb.astype(np.float16).astype(np.float32) if half else rgb
    np.testing.assert_array_equal(out, expected)
    assert out.max() > 1.0 and out.min() < 0.0
    assert got_meta == meta
    hwc = read_image(path)
    np.testing.assert_array_equal(hwc, np.moveaxis(expected, 0, -1))
    np.testing.assert_array_equal(read_image_linear(path), expected)


@pytest.mark.parametrize("compression", EXR_COMPRESSIONS)
def test_exr_compressions_are_lossless_and_recorded(tmp_path: Path, rng: np.random.Generator,
                                                   compression: str) -> None:
    rgb = (rng.normal(size=(3, 40, 33)) * 2).astype(np.float16)
    path = write_exr(tmp_path / "c.exr", rgb, compression=compression)
    out, _ = read_exr(path)
    np.testing.assert_array_equal(out, rgb.astype(np.float32))
    with OpenEXR.File(str(path)) as f:
        name = str(f.header()["compression"]).upper()
    assert ("NO_" if compression == "none" else compression.upper() + "_") in name


def test_exr_default_compression_is_piz_and_bad_names_fail(tmp_path: Path) -> None:
    img = np.ones((3, 8, 8), np.float32)
    with OpenEXR.File(str(write_exr(tmp_path / "d.exr", img))) as f:
        assert "PIZ" in str(f.header()["compression"]).upper()
    with pytest.raises(ImageIOError, match="'lzw'.*x.exr"):
        write_exr(tmp_path / "x.exr", img, compression="lzw")
    assert not (tmp_path / "x.exr").exists()


def test_half_range_check(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    assert not half_range_exceeded(np.array([np.nan, np.inf, 65504.0, -1.0], np.float32))
    assert half_range_exceeded(np.array([np.nan, -7e4], np.float32))
    assert not half_range_exceeded(np.zeros((3, 0, 4), np.float32))
    assert not half_range_exceeded(np.array([-65504.0, 65504.0, -np.inf], np.float32))
    assert half_range_exceeded(np.array([[1.0, 2.0], [3.0, 65505.0 * 1.01]], np.float32))
    with caplog.at_level("WARNING"):
        write_exr(tmp_path / "big.exr", np.full((3, 2, 2), 1e5, np.float32))
    assert "half-float range" in caplog.text


def test_exr_accepts_torch_and_grey_y_channel(tmp_path: Path) -> None:
    t = torch.linspace(-1, 5, 3 * 4 * 5).reshape(3, 4, 5)
    out, _ = read_exr(write_exr(tmp_path / "t.exr", t, half=False))
    np.testing.assert_array_equal(out, t.numpy())
    y = np.arange(12, dtype=np.float32).reshape(3, 4) - 2
    with OpenEXR.File({"type": OpenEXR.scanlineimage}, {"Y": y}) as f:
        f.write(str(tmp_path / "y.exr"))
    grey, _ = read_exr(tmp_path / "y.exr")
    assert grey.shape == (3, 3, 4)
    np.testing.assert_array_equal(grey[2], y)


def test_exr_errors(tmp_path: Path) -> None:
    img = np.zeros((3, 4, 4), np.float32)
    with pytest.raises(ImageIOError, match="reserved"):
        write_exr(tmp_path / "a.exr", img, metadata={"compression": "x"})
    with pytest.raises(ImageIOError, match="str"):
        write_exr(tmp_path / "a.exr", img, metadata={"k": 3})  # type: ignore[dict-item]
    with pytest.raises(ImageIOError, match="a.png.*extension"):
        write_exr(tmp_path / "a.png", img)
    with pytest.raises(ImageIOError, match="shape"):
        write_exr(tmp_path / "a.exr", img[:2])
    bad = tmp_path / "bad.exr"
    bad.write_bytes(b"not an exr at all")
    with pytest.raises(ImageIOError, match="bad.exr"):
        read_exr(bad)
    with pytest.raises(ImageIOError, match="missing.exr"):
        read_exr(tmp_path / "missing.exr")
    with OpenEXR.File({"type": OpenEXR.scanlineimage}, {"Z": np.zeros((2, 2), np.float32)}) as f:
        f.write(str(tmp_path / "z.exr"))
    with pytest.raises(ImageIOError, match="z.exr.*channels"):
        read_exr(tmp_path / "z.exr")


def test_tiff16_srgb_round_trip_clips_only_at_quantisation(tmp_path: Path,
                                                           rng: np.random.Generator) -> None:
    rgb = rng.uniform(-0.2, 1.5, (3, 8, 10)).astype(np.float32)
    path = write_tiff16(tmp_path / "a.tif", rgb)
    stored = tifffile.imread(path)
    assert stored.dtype == np.uint16 and stored.shape == (8, 10, 3)
    expected_codes = np.rint(np.clip(linear_to_srgb(rgb.astype(np.float64)), 0, 1) * 65535)
    np.testing.assert_array_equal(np.moveaxis(stored, -1, 0), expected_codes)
    lin = read_image_linear(path)
    np.testing.assert_allclose(lin, np.clip(rgb, 0, 1), atol=5e-5)
    assert lin.max() == 1.0 and lin.min() == 0.0
    path_lin = write_tiff16(tmp_path / "lin.tiff", torch.from_numpy(rgb), srgb=False)
    np.testing.assert_allclose(np.moveaxis(read_image(path_lin), -1, 0), np.clip(rgb, 0, 1),
                               atol=0.5 / 65535 + 1e-7)
    with pytest.raises(ImageIOError, match="extension"):
        write_tiff16(tmp_path / "a.png", rgb)


def test_png_preview_exposure_and_clipping(tmp_path: Path, rng: np.random.Generator) -> None:
    rgb = rng.uniform(-0.1, 2.0, (3, 6, 7)).astype(np.float32)
    path = write_png(tmp_path / "p.png", rgb, exposure=0.5)
    codes = np.asarray(Image.open(path))
    assert codes.dtype == np.uint8 and codes.shape == (6, 7, 3)
    expected = np.rint(np.clip(linear_to_srgb(rgb.astype(np.float64) * 0.5), 0, 1) * 255)
    np.testing.assert_array_equal(np.moveaxis(codes, -1, 0), expected)
    with pytest.raises(ImageIOError, match="extension"):
        write_png(tmp_path / "p.jpg", rgb)


def test_writers_are_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    img = np.full((3, 4, 4), 0.5, np.float32)
    out = write_tiff16(tmp_path / "keep.tif", img)
    before = out.read_bytes()

    def boom(path: object, *args: object, **kwargs: object) -> None:
        Path(path).write_bytes(b"partial")  # type: ignore[arg-type]
        raise OSError("disk full")

    monkeypatch.setattr(images_mod.tifffile, "imwrite", boom)
    with pytest.raises(WriteError, match="disk full.*nothing was written"):
        write_tiff16(out, img * 0)
    assert out.read_bytes() == before
    write_exr(tmp_path / "x.exr", img)
    write_png(tmp_path / "y.png", img)
    assert sorted(os.listdir(tmp_path)) == ["keep.tif", "x.exr", "y.png"]


# --------------------------------------------------------------------------------------
# read errors
# --------------------------------------------------------------------------------------


def test_read_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ImageIOError, match="nothere.png.*does not exist"):
        read_image(tmp_path / "nothere.png")
    (tmp_path / "a.bmp").write_bytes(b"BM")
    with pytest.raises(ImageIOError, match="a.bmp.*unknown image extension"):
        read_image(tmp_path / "a.bmp")
    (tmp_path / "junk.png").write_bytes(b"\x00" * 100)
    with pytest.raises(ImageIOError, match="junk.png"):
        read_image(tmp_path / "junk.png")
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "ok.jpg")
    data = (tmp_path / "ok.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    with pytest.raises(ImageIOError, match="cut.jpg"):
        read_image(tmp_path / "cut.jpg")
    (tmp_path / "t.tif").write_text("text, not a tiff")
    with pytest.raises(ImageIOError, match="t.tif"):
        read_image_linear(tmp_path / "t.tif")
    with pytest.raises(ImageIOError, match="not a file"):
        read_image(tmp_path)


def test_package_reexports() -> None:
    assert dio.read_image is read_image and dio.write_exr is write_exr
    assert callable(dio.read_raw) and callable(dio.write_dng) and callable(dio.atomic_path)
    with pytest.raises(AttributeError):
        dio.nonexistent  # noqa: B018


def test_tiffs_embed_an_icc_profile_of_their_encoding(tmp_path):
    import io

    from PIL import ImageCms

    from demosaic.io.images import write_tiff16

    path = write_tiff16(tmp_path / "a.tif", np.full((3, 8, 8), 0.2, np.float32))
    with tifffile.TiffFile(path) as tif:
        icc = tif.pages.first.tags["InterColorProfile"].value
    profile = ImageCms.ImageCmsProfile(io.BytesIO(bytes(icc)))
    assert "sRGB" in ImageCms.getProfileDescription(profile)
    linear = write_tiff16(tmp_path / "b.tif", np.full((3, 8, 8), 0.2, np.float32), srgb=False)
    with tifffile.TiffFile(linear) as tif:
        icc = tif.pages.first.tags["InterColorProfile"].value
    profile = ImageCms.ImageCmsProfile(io.BytesIO(bytes(icc)))
    assert "Linear sRGB" in ImageCms.getProfileDescription(profile)
