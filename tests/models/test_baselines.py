"""Baselines: LibRaw through a DNG (padding path, scale, HDR), demosaicnet, colour-demosaicing."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from demosaic import cfa as cfa_mod
from demosaic.errors import ConfigError
from demosaic.io.images import read_image_linear
from demosaic.models import baselines as B

SAMPLE = Path(__file__).resolve().parents[2] / "src" / "demosaic" / "assets" / "samples" / "val" / "102061.png"


def psnr(pred: np.ndarray, truth: np.ndarray, border: int = 12) -> float:
    a = pred[:, border:-border, border:-border]
    b = truth[:, border:-border, border:-border]
    return float(10 * np.log10(1.0 / np.mean((a - b) ** 2)))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A 300x300 linear crop of a bundled photograph (multiple of 6 and 2)."""
    rgb = read_image_linear(SAMPLE)
    return np.ascontiguousarray(rgb[:, :300, :300]).astype(np.float32)


def test_phase_extend_keeps_the_cfa_valid():
    layout = np.tile(cfa_mod.XTRANS.array, (3, 4))[:17, :20]  # 17x20 mosaic of channel ids
    ext = B.phase_extend(layout, 6, top=8, bottom=13, left=3, right=7)
    assert ext.shape == (17 + 21, 20 + 10)
    # the extended array is the X-Trans layout shifted by (-8, -3): still a valid mosaic
    expected = np.tile(cfa_mod.XTRANS.shifted(-8 % 6, -3 % 6), (7, 5))[: ext.shape[0], : ext.shape[1]]
    np.testing.assert_array_equal(ext, expected)
    np.testing.assert_array_equal(ext[8:25, 3:23], layout)


@pytest.mark.parametrize("name", ["markesteijn3", "markesteijn1", "vng"])
def test_libraw_xtrans_on_300px_image(photo, name):
    truth = torch.from_numpy(photo)
    cfa = cfa_mod.mosaic(truth, "xtrans")
    method = B.build_method(name, "xtrans")
    out = method.demosaic(cfa)  # 300 < 512 px: the padding path
    assert out.shape == (3, 300, 300) and out.dtype == torch.float32
    out_np = out.numpy()
    # measured samples are kept at the right scale (LibRaw output == mosaic there)
    assert B.check_sampled_scale(out_np, cfa[0].numpy(), cfa_mod.XTRANS, name) == pytest.approx(1.0, abs=2e-3)
    lin = B.build_method("libraw_linear", "xtrans").demosaic(cfa).numpy()
    p, p_lin = psnr(out_np, photo), psnr(lin, photo)
    # a textured photograph: bilinear gets ~22.6 dB, Markesteijn ~28.4 dB, VNG ~27.4 dB
    assert p > 25.0, p
    assert p > p_lin + (4.0 if name.startswith("markesteijn") else 3.0), (p, p_lin)


def test_libraw_linear_matches_own_bilinear_and_keeps_hdr(photo):
    truth = torch.from_numpy(photo[:, :120, :120])
    cfa = cfa_mod.mosaic(truth, "xtrans")
    libraw = B.build_method("libraw_linear", "xtrans")
    own = B.build_method("bilinear", "xtrans")
    a, b = libraw.demosaic(cfa).numpy(), own.demosaic(cfa).numpy()
    # both are bilinear-type interpolations of the same samples: nearly the same image
    assert psnr(a, b, border=6) > 45.0
    hdr = libraw.demosaic(cfa * 3.0).numpy()  # highlights above 1.0 survive (exposure scaling)
    assert hdr.max() > 1.5
    np.testing.assert_allclose(hdr / 3.0, a, atol=1e-4)


def test_libraw_bayer_and_wrong_family():
    rgb = torch.rand(3, 64, 64) * 0.1 + 0.45
    cfa = cfa_mod.mosaic(rgb, "bayer_rggb")
    out = B.build_method("ahd", "bayer_rggb").demosaic(cfa[None])  # batched input
    assert out.shape == (1, 3, 64, 64)
    with pytest.raises(ConfigError, match="xtrans"):
        B.build_method("markesteijn3", "bayer_rggb")
    with pytest.raises(ConfigError, match="bayer"):
        B.build_method("menon2007", "xtrans")
    with pytest.raises(ConfigError, match="unknown baseline"):
        B.build_method("nope")
    with pytest.raises(ConfigError, match="trainable"):
        B.build_method("unet", "xtrans")


def test_colour_demosaicing_bayer(photo):
    truth = np.ascontiguousarray(photo[:, 200:296, 100:196])  # textured region
    cfa = cfa_mod.mosaic(torch.from_numpy(truth), "bayer_rggb")
    scores = {n: psnr(B.build_method(n, "bayer_rggb").demosaic(cfa).numpy(), truth)
              for n in ("cd_bilinear", "malvar2004", "menon2007", "bilinear")}
    assert abs(scores["cd_bilinear"] - scores["bilinear"]) < 0.05  # same algorithm
    assert scores["menon2007"] > scores["cd_bilinear"] + 1.0
    assert scores["malvar2004"] > scores["cd_bilinear"] + 1.0


@pytest.mark.parametrize("pattern", ["xtrans", "bayer_rggb"])
def test_demosaicnet_protocol(photo, pattern):
    pytest.importorskip("demosaicnet", reason="the baselines extra (demosaicnet) is not installed")
    truth = np.ascontiguousarray(photo[:, 204:264, 108:168])  # small: the network is slow on CPU
    cfa = cfa_mod.mosaic(torch.from_numpy(truth), pattern)
    net = B.build_method("demosaicnet", pattern)
    out = net.demosaic(cfa).numpy()
    assert out.shape == (3, 60, 60)
    lin = B.build_method("bilinear", pattern).demosaic(cfa).numpy()
    assert psnr(out, truth) > psnr(lin, truth) + 2.0  # right phase + sRGB protocol: far better
    tiled = B.DemosaicNetBaseline(pattern, tile=30).run(cfa[0].numpy())
    np.testing.assert_allclose(tiled, out, atol=1e-4)  # tiling is exact (valid convolutions)


def test_demosaicnet_missing_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "demosaicnet", None)  # import raises ImportError
    with pytest.raises(B.BaselineError, match="baselines"):
        B.build_method("demosaicnet", "xtrans")
