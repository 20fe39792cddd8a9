"""LibRaw's development lives in one place (demosaic.io.libraw): the raw teacher, the LibRaw
baselines and the camera protocol develop through it with the same parameters, apart from the
white balance each of them asks for, and small X-Trans mosaics are padded there."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rawpy
import threadpoolctl
import torch

from demosaic.data import teacher
from demosaic.errors import ConfigError
from demosaic.io.libraw import libraw_params, libraw_single_thread
from demosaic.models.baselines import build_method

FIELDS = ("adjust_maximum_thr", "no_auto_bright", "bright", "gamm", "output_bps", "highlight",
          "user_flip", "half_size", "four_color_rgb", "med_passes", "output_color",
          "use_auto_wb")


def _settings(params: rawpy.Params) -> dict[str, object]:
    return {f: getattr(params, f) for f in FIELDS}


def test_teacher_and_baseline_share_every_setting_but_the_white_balance(tmp_path, monkeypatch) -> None:
    """Both develop through demosaic.io.libraw.develop: record the rawpy Params each one asks for."""
    from demosaic import cfa
    from demosaic.io import libraw
    from demosaic.io.raw import read_raw
    from demosaic.sim.raw_files import write_camera_raw

    asked: list[rawpy.Params] = []

    def spy(*args, **kwargs):
        asked.append(libraw_params(*args, **kwargs))
        return asked[-1]

    monkeypatch.setattr(libraw, "libraw_params", spy)
    rgb = np.full((3, 48, 60), 0.3, np.float32)
    build_method("markesteijn3", "xtrans").demosaic(cfa.mosaic(torch.from_numpy(rgb), cfa.XTRANS))
    dng, _ = write_camera_raw(tmp_path / "t.dng", rgb, "xtrans", iso=100)
    teacher.compute_teacher(dng, read_raw(dng), "dht")
    baseline, taught = asked
    assert _settings(baseline) == _settings(taught)
    assert list(baseline.user_mul) == [1.0, 1.0, 1.0, 1.0]
    assert list(taught.user_mul)[1] == 1.0 and list(taught.user_mul)[0] != 1.0
    assert baseline.adjust_maximum_thr == 0.0 and baseline.no_auto_bright
    assert tuple(baseline.gamm[:2]) == (1.0, 1.0) and baseline.output_bps == 16


def test_libraw_develops_in_one_place() -> None:
    """rawpy's postprocess is called by demosaic.io.libraw only (the one LibRaw development)."""
    src = Path(libraw_params.__code__.co_filename).parents[1]
    callers = sorted(str(p.relative_to(src)) for p in src.rglob("*.py")
                     if ".postprocess(" in p.read_text(encoding="utf-8"))
    assert callers == [str(Path("io") / "libraw.py")]


def test_small_xtrans_mosaics_are_padded_to_the_markesteijn_minimum() -> None:
    """develop_mosaic pads under MIN_SIDE (Markesteijn fails there) and crops back."""
    from demosaic import cfa
    from demosaic.io.libraw import MIN_SIDE, develop_mosaic

    rgb = torch.rand(3, 60, 72, generator=torch.Generator().manual_seed(0)) * 0.8 + 0.1
    mosaic = cfa.mosaic(rgb, cfa.XTRANS)[0].numpy()
    out = develop_mosaic(mosaic, cfa.XTRANS, "AHD")
    assert MIN_SIDE == 512 and out.shape == (3, 60, 72) and out.dtype == np.float32
    sampled = (out * cfa.mask(cfa.XTRANS, 60, 72)).sum(0)[6:-6, 6:-6]
    np.testing.assert_allclose(sampled, mosaic[6:-6, 6:-6], atol=2e-5)  # measured samples kept


def test_camera_white_balance_and_srgb_output() -> None:
    p = libraw_params("AHD", white_balance="camera", output="srgb")
    assert p.use_camera_wb and p.output_color == rawpy.ColorSpace.sRGB.value
    assert _settings(p) | {"output_color": 0} == _settings(libraw_params("AHD")) | {"output_color": 0}
    with pytest.raises(ConfigError, match="unknown LibRaw demosaic algorithm"):
        libraw_params("AMAZE_PLUS")
    with pytest.raises(ConfigError, match="3 multipliers"):
        libraw_params("AHD", white_balance=(1.0, 2.0))


def test_single_thread_block_limits_libraw_openmp_and_restores_it() -> None:
    def libraw_threads() -> list[int]:
        return [i["num_threads"] for i in threadpoolctl.threadpool_info()
                if i["user_api"] == "openmp" and "rawpy" in i["filepath"]]

    before = libraw_threads()
    assert before, "rawpy's OpenMP runtime was not found by threadpoolctl"
    with libraw_single_thread():
        assert libraw_threads() == [1] * len(before)
    assert libraw_threads() == before
