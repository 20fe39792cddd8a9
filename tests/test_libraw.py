"""LibRaw's settings live in one function (issue "One place for each concern"): the raw
teacher, the LibRaw baselines and the camera protocol develop with the same parameters, apart
from the white balance each of them asks for."""

from __future__ import annotations

import numpy as np
import pytest
import rawpy
import threadpoolctl

from demosaic.data import teacher
from demosaic.errors import ConfigError
from demosaic.io.libraw import libraw_params, libraw_single_thread
from demosaic.models.baselines import build_method

FIELDS = ("adjust_maximum_thr", "no_auto_bright", "bright", "gamm", "output_bps", "highlight",
          "user_flip", "half_size", "four_color_rgb", "med_passes", "output_color",
          "use_auto_wb")


def _settings(params: rawpy.Params) -> dict[str, object]:
    return {f: getattr(params, f) for f in FIELDS}


def test_teacher_and_baseline_share_every_setting_but_the_white_balance() -> None:
    baseline = build_method("markesteijn3", "xtrans")._params()
    taught = teacher._params("dht", np.array([2.0, 1.0, 1.5]))
    assert _settings(baseline) == _settings(taught)
    assert list(baseline.user_mul) == [1.0, 1.0, 1.0, 1.0]
    assert list(taught.user_mul) == [2.0, 1.0, 1.5, 1.0]
    assert baseline.adjust_maximum_thr == 0.0 and baseline.no_auto_bright
    assert tuple(baseline.gamm[:2]) == (1.0, 1.0) and baseline.output_bps == 16


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
