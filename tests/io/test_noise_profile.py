"""The DNG NoiseProfile tag (51041): written by write_dng / write_camera_raw, read back by
read_raw into RawImage.noise_profile (demosaic.io.dng.read_noise_profile)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tifffile

from demosaic.errors import DemosaicError
from demosaic.io import dng
from demosaic.io.dng import read_noise_profile
from demosaic.io.raw import read_raw
from demosaic.noise.profile import NoiseProfile
from demosaic.sim.raw_files import write_camera_raw
from demosaic.sim.scenes import synthetic_scene


@pytest.mark.parametrize("layout", ["xtrans", "bayer_grbg"])
def test_two_values_round_trip_as_a_uniform_profile(make_dng, layout) -> None:
    path, _ = make_dng(layout, noise_profile=(2.345678e-4, 1.2345e-7))
    profile = read_raw(path).noise_profile
    assert profile == NoiseProfile.uniform(2.345678e-4, 1.2345e-7, "dng")


def test_six_values_round_trip_per_channel(make_dng) -> None:
    values = [1.1e-4, 2.2e-8, 3.3e-4, 4.4e-8, 5.5e-4, 6.6e-8]  # S_R, O_R, S_G, O_G, S_B, O_B
    path, _ = make_dng("xtrans", noise_profile=values)
    profile = read_raw(path).noise_profile
    assert profile is not None and profile.source == "dng"
    assert profile.as_list() == pytest.approx(values, rel=1e-15)
    assert profile.scale == (1.1e-4, 3.3e-4, 5.5e-4)


def test_a_dng_without_the_tag_has_none(make_dng) -> None:
    path, _ = make_dng("bayer_rggb")
    assert read_raw(path).noise_profile is None


@pytest.mark.parametrize("family", ["xtrans", "bayer"])
def test_write_camera_raw_writes_the_true_noise(tmp_path, family) -> None:
    path, cap = write_camera_raw(tmp_path / "shot.dng", synthetic_scene(48, 48), family,
                                 iso=3200, noise_profile=True)
    a, b = cap.noise
    assert read_raw(path).noise_profile == NoiseProfile.uniform(a, b * b, "dng")
    plain, _ = write_camera_raw(tmp_path / "plain.dng", synthetic_scene(48, 48), family)
    assert read_raw(plain).noise_profile is None


@pytest.mark.parametrize("bad", [(1e-4,), (1e-4, 1e-8, 2e-4), (-1e-4, 1e-8), (np.nan, 0.0),
                                 ("a", "b")])
def test_write_dng_rejects_a_bad_noise_profile(make_dng, bad) -> None:
    with pytest.raises(DemosaicError, match="noise_profile"):
        make_dng("xtrans", noise_profile=bad)


def test_planes_follow_cfa_plane_color(tmp_path) -> None:
    """Pairs are per CFA plane in CFAPlaneColor order (here B, G, R)."""
    path = tmp_path / "planes.dng"
    tifffile.imwrite(path, np.zeros((8, 8), np.uint16), extratags=[
        (50710, "B", 3, (2, 1, 0), True),
        (51041, "d", 6, (3e-4, 3e-8, 2e-4, 2e-8, 1e-4, 1e-8), True)])
    profile = read_noise_profile(path)
    assert profile == NoiseProfile((1e-4, 2e-4, 3e-4), (1e-8, 2e-8, 3e-8), "dng")


def test_invalid_or_unreadable_tags_are_ignored(tmp_path, make_dng, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="demosaic.io.dng")
    monkeypatch.setattr(dng, "_noise_profile_tags",
                        lambda values: [(51041, "d", 4, (1e-4, -1e-8, 2e-4, 1e-8), True)])
    path, _ = make_dng("xtrans", noise_profile=(1e-4, 1e-8))
    assert read_raw(path).noise_profile is None
    assert "ignoring its DNG NoiseProfile" in caplog.text
    broken = tmp_path / "broken.dng"
    broken.write_bytes(b"II*\x00garbage")
    assert read_noise_profile(broken) is None
    assert read_noise_profile(tmp_path / "missing.dng") is None
    assert read_noise_profile(path.with_suffix(".tif")) is None  # only .dng files are read
