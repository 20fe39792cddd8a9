"""Crop choice of demosaic-compare: where the methods disagree and fine colour detail is."""

from __future__ import annotations

import numpy as np
import pytest

from demosaic.compare.crops import Crop, check_crop, choose_crops, parse_crop
from demosaic.compare.methods import parse_methods, run_method
from demosaic.errors import ConfigError
from demosaic.io.raw import read_raw
from demosaic.sim.raw_files import write_camera_raw

PATCH = (150, 220, 48)  # y, x, side of the hard region


def _grating_scene(h: int = 240, w: int = 320) -> np.ndarray:
    """A flat grey frame with one fine colour grating (1 px red/blue stripes) patch."""
    rgb = np.full((3, h, w), 0.18, np.float32)
    y, x, s = PATCH
    stripes = (np.arange(s) % 2).astype(np.float32)
    rgb[0, y:y + s, x:x + s] = 0.05 + 0.5 * stripes[None, :]
    rgb[1, y:y + s, x:x + s] = 0.12
    rgb[2, y:y + s, x:x + s] = 0.05 + 0.5 * (1 - stripes)[None, :]
    return rgb


def _covers_patch(crop: Crop) -> bool:
    y, x, s = PATCH
    return (crop.x <= x + s // 2 <= crop.x + crop.w) and (crop.y <= y + s // 2 <= crop.y + crop.h)


def test_a_known_hard_region_of_a_raw_file_gets_the_first_crop(tmp_path):
    path, _ = write_camera_raw(tmp_path / "grating.dng", _grating_scene(), "xtrans", iso=200)
    raw = read_raw(path)
    images = [run_method(s, raw).rgb for s in parse_methods(["bilinear", "markesteijn1"], "cpu")]
    crops = choose_crops(images, count=3, size=64)
    assert len(crops) == 3
    assert _covers_patch(crops[0]), crops
    assert not any(_covers_patch(c) for c in crops[1:])  # spread: the patch is taken once


def test_colour_detail_alone_finds_the_region_with_one_method():
    crops = choose_crops([_grating_scene()], count=2, size=64)
    assert _covers_patch(crops[0])


def test_crops_never_overlap_and_user_crops_come_first():
    rng = np.random.default_rng(0)
    images = [rng.random((3, 200, 300), dtype=np.float32) for _ in range(3)]
    user = parse_crop("10,20,50,40")
    crops = choose_crops(images, count=5, size=48, keep=[user])
    assert crops[0] == user and len(crops) == 6
    for i, a in enumerate(crops):
        assert all(not a.overlaps(b) for b in crops[i + 1:])
        assert a.x + a.w <= 300 and a.y + a.h <= 200


def test_crop_size_is_limited_by_a_small_frame():
    crops = choose_crops([np.zeros((3, 40, 90), np.float32)], count=1, size=192)
    assert (crops[0].w, crops[0].h) == (40, 40)


@pytest.mark.parametrize("text", ["1,2,3", "a,b,c,d", "-1,0,10,10", "0,0,0,10"])
def test_bad_crop_text_is_a_config_error_naming_it(text):
    with pytest.raises(ConfigError, match="crop"):
        parse_crop(text)


def test_a_crop_outside_the_frame_names_the_file():
    with pytest.raises(ConfigError, match="photo.raf.*leaves the 100x50"):
        check_crop(Crop(90, 0, 20, 20), (50, 100), "photo.raf")
