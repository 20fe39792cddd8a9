"""Integration: our outputs opened by the tools people use (issue 19).

OpenImageIO (``oiiotool``), exiftool and darktable (``darktable-cli``) come from Debian's
packages: ``apt-get install openimageio-tools libimage-exiftool-perl darktable`` (``.ci/run``
installs them; the README says so). A test whose tool is missing is skipped with that reason.
The source is the camera-realistic test chart (:func:`demosaic.data.chart.write_chart_dng`:
X-T3 colour matrix, daylight white balance, ISO 200 noise, EXIF), developed by the shipped
model through :func:`demosaic.inference.run.infer_file`, the path ``demosaic-infer`` takes.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from demosaic.color import ACESCG_TO_XYZ, REC2020_TO_XYZ, SRGB_TO_XYZ, chromaticities
from demosaic.data.chart import colour_chart, false_colour, patch_delta_e, write_chart_dng
from demosaic.inference.run import infer_file
from demosaic.io.images import read_image
from demosaic.io.tools import (PACKAGES, darktable_render, exiftool_tags, have, oiio_info,
                               rawtherapee_render)

pytest.importorskip("pyexiv2", reason="the metadata extra (pyexiv2) is not installed")


def _needs(tool: str) -> pytest.MarkDecorator:
    return pytest.mark.skipif(not have(tool), reason=f"{tool} is not installed "
                              f"(apt-get install {PACKAGES[tool]})")


@pytest.fixture(scope="module")
def chart_dng(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("chart") / "DSCF0001.dng"
    write_chart_dng(path, iso=200.0)
    return path


@pytest.fixture(scope="module")
def outputs(chart_dng: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("out")
    runs = {"srgb.exr": {}, "rec2020.exr": {"color_space": "rec2020"},
            "acescg.exr": {"color_space": "acescg"}, "camera.exr": {"color_space": "camera"},
            "srgb.tif": {}, "linear.tif": {"tiff_encoding": "linear"}, "linear.dng": {}}
    return {name: infer_file(chart_dng, folder / name, device="cpu", **kw).output
            for name, kw in runs.items()}


def _oiio_chromaticities(info: str) -> np.ndarray:
    m = re.search(r"chromaticities: ([-\d., ]+)", info)
    assert m, info
    return np.array([float(v) for v in m.group(1).split(",")])


@_needs("oiiotool")
@pytest.mark.parametrize("name,to_xyz", [("srgb.exr", SRGB_TO_XYZ), ("rec2020.exr", REC2020_TO_XYZ),
                                         ("acescg.exr", ACESCG_TO_XYZ)])
def test_oiio_reads_the_exr_primaries(outputs: dict[str, Path], name: str,
                                      to_xyz: np.ndarray) -> None:
    info = oiio_info(outputs[name])
    assert np.allclose(_oiio_chromaticities(info), chromaticities(to_xyz), atol=1e-4)
    for field in ('cameraMake: "FUJIFILM"', 'cameraModel: "X-T3"', "isoSpeed: 200",
                  "ExposureTime: 0.008", "FNumber: 5.6", "nominalFocalLength: 35",
                  'lensModel: "XF35mmF1.4 R"', 'DateTime: "2026:11:30 09:00:00"'):
        assert field in info, (field, info)


@_needs("oiiotool")
def test_oiio_reads_camera_rgb_as_labelled_camera_primaries(outputs: dict[str, Path]) -> None:
    info = oiio_info(outputs["camera.exr"])
    chroma = _oiio_chromaticities(info)
    assert np.allclose(chroma[6:], (0.3127, 0.3290), atol=1e-3)  # balanced: white is D65
    assert not np.allclose(chroma[:6], chromaticities(SRGB_TO_XYZ)[:6], atol=1e-2)
    assert 'demosaic:colorSpace: "camera' in info


@_needs("oiiotool")
def test_oiio_reads_the_tiff_profiles(outputs: dict[str, Path]) -> None:
    assert "sRGB" in re.search(r'profile_description: "([^"]*)"', oiio_info(outputs["srgb.tif"])).group(1)
    linear = oiio_info(outputs["linear.tif"])
    assert 'profile_description: "Linear sRGB (Rec.709 primaries, D65)"' in linear


@_needs("oiiotool")
def test_oiio_opens_the_linear_dng_with_its_metadata(outputs: dict[str, Path]) -> None:
    """OpenImageIO develops DNGs through LibRaw: our LinearRaw DNG opens as a 3-channel raw
    of the chart's size with the camera's colour data and EXIF."""
    info = oiio_info(outputs["linear.dng"])
    assert re.search(r":\s+516 x\s+504, 3 channel, uint16 raw", info), info
    for field in ('Model: "X-T3"', "Exif:ISOSpeedRatings: 200", "FNumber: 5.6",
                  'Exif:LensModel: "XF35mmF1.4 R"', 'Exif:DateTimeOriginal: "2026:11:30 09:00:00"',
                  "raw:cam_mul:", "raw:cam_xyz:"):
        assert field in info, (field, info)


@_needs("exiftool")
@pytest.mark.parametrize("name", ["srgb.tif", "linear.dng"])
def test_exiftool_reads_the_capture_metadata(outputs: dict[str, Path], name: str) -> None:
    tags = exiftool_tags(outputs[name])
    assert tags["IFD0:Make"] == "FUJIFILM" and tags["IFD0:Model"] == "X-T3"
    assert tags["ExifIFD:ISO"] == 200 and tags["ExifIFD:ExposureTime"] == pytest.approx(0.008)
    assert tags["ExifIFD:FNumber"] == 5.6 and tags["ExifIFD:FocalLength"] == 35
    assert tags["ExifIFD:LensModel"] == "XF35mmF1.4 R" and tags["ExifIFD:LensMake"] == "FUJIFILM"
    assert tags["ExifIFD:DateTimeOriginal"] == "2026:11:30 09:00:00"
    assert tags["ExifIFD:OffsetTimeOriginal"] == "+01:00"
    assert tags["IFD0:Orientation"] == 1


@_needs("exiftool")
def test_exiftool_sees_a_linear_dng_with_preview_and_colour_tags(outputs: dict[str, Path]) -> None:
    tags = exiftool_tags(outputs["linear.dng"])
    assert tags["IFD0:SubfileType"] == 1 and tags["SubIFD:SubfileType"] == 0
    assert tags["SubIFD:PhotometricInterpretation"] == 34892  # LinearRaw
    assert tags["SubIFD:SamplesPerPixel"] == 3 and tags["SubIFD:BitsPerSample"] == "16 16 16"
    assert tags["SubIFD:WhiteLevel"] <= 65535 and tags["SubIFD:BlackLevel"] == 0
    assert len(str(tags["IFD0:ColorMatrix1"]).split()) == 9
    assert tags["IFD0:CalibrationIlluminant1"] == 21
    assert len(str(tags["IFD0:AsShotNeutral"]).split()) == 3


@_needs("darktable-cli")
def test_darktable_develops_the_linear_dng_like_the_source(chart_dng: Path,
                                                           outputs: dict[str, Path],
                                                           tmp_path: Path) -> None:
    """Same darktable settings (display-referred workflow, fresh configuration): mean
    CIEDE2000 over the 24 ColorChecker patches <= 2.0, and less false colour on the neutral
    detail than darktable's own demosaic of the source."""
    chart = colour_chart()
    a = read_image(darktable_render(chart_dng, tmp_path / "source.tif"))
    b = read_image(darktable_render(outputs["linear.dng"], tmp_path / "ours.tif"))
    assert a.shape == b.shape == (*chart.rgb.shape[1:], 3)
    de = np.array(list(patch_delta_e(a, b, chart.patches).values()))
    assert de.mean() <= 2.0, de
    assert false_colour(b, chart) < false_colour(a, chart)


@_needs("rawtherapee-cli")
def test_rawtherapee_develops_the_linear_dng_with_neutral_greys(outputs: dict[str, Path],
                                                                tmp_path: Path) -> None:
    """RawTherapee (default raw profile) reads our linear DNG's white balance and colour
    matrix: the six grey patches come out neutral (CIE Lab chroma <= 3). (It cannot render the
    X-Trans CFA source for a side-by-side: RawTherapee 5.9 misreads X-Trans DNGs.)"""
    import colour

    from demosaic.color import D65_XY, SRGB_TO_XYZ, srgb_to_linear

    chart = colour_chart()
    render = read_image(rawtherapee_render(outputs["linear.dng"], tmp_path / "rt.tif"))
    assert render.shape == (*chart.rgb.shape[1:], 3)
    greys = list(chart.patches.values())[18:]
    for y0, x0, y1, x1 in greys:
        mean = srgb_to_linear(render[y0:y1, x0:x1].astype(np.float64)).reshape(-1, 3).mean(0)
        lab = colour.XYZ_to_Lab(SRGB_TO_XYZ @ mean, D65_XY)
        assert np.hypot(lab[1], lab[2]) <= 3.0, lab
