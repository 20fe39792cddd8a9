"""The noise level every training sample carries (``sample["noise"]``): the simulation's own,
balanced like the mosaic, with a drawn estimation error; zeros for clean crops; the raw
teacher's recorded level."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from demosaic import cfa
from demosaic.data import build_dataset
from demosaic.data.device_batches import DeviceSyntheticBatches
from demosaic.data.shards import build_raw_teacher
from demosaic.errors import ConfigError
from demosaic.io.raw import read_raw
from demosaic.noise.source import file_profile
from demosaic.sim.camera import NoiseModel
from demosaic.sim.noise_level import batch_coefficients, sample_coefficients
from demosaic.sim.raw_files import write_camera_raw

CAMERA = {"enabled": True, "iso_range": [3200, 3200], "level_error": 0.0}


def test_sample_coefficients_are_the_balanced_level_with_a_log_normal_error():
    rng = np.random.default_rng(0)
    exact = sample_coefficients(1e-3, 1e-2, [2.0, 1.0, 1.5], rng, error=0.0)
    np.testing.assert_allclose(exact, [[2e-3, 1e-3, 1.5e-3], [4e-4, 1e-4, 2.25e-4]], rtol=1e-6)
    draws = np.stack([sample_coefficients(1e-3, 1e-2, [1, 1, 1], rng, 0.1) for _ in range(4000)])
    log_std = np.log(draws[:, :, 1] / np.array([1e-3, 1e-4])).std(axis=0) / 2  # of the std
    np.testing.assert_allclose(log_std, [0.1, 0.1], rtol=0.08)
    # the batched twin is the same formula
    normal = torch.zeros(2, 2)
    batch = batch_coefficients(torch.tensor([1e-3, 2e-3]), torch.tensor([1e-2, 0.0]),
                               torch.tensor([[2.0, 1.0, 1.5]] * 2), normal)
    np.testing.assert_allclose(batch[0].numpy(), exact, rtol=1e-6)
    assert float(batch[1, 1].abs().max()) == 0.0


@pytest.mark.parametrize("pattern", ["xtrans", "bayer_rggb"])
def test_camera_samples_carry_their_capture_level_and_clean_ones_zero(pattern):
    ds = build_dataset({"name": "synthetic", "camera": CAMERA, "patch_size": 48,
                        "samples_per_epoch": 4}, pattern=pattern, split="train", seed=0)
    a, b = NoiseModel().params(3200.0)
    for i in range(len(ds)):
        level = ds[i]["noise"].numpy()
        green = level[:, 1]  # multiplier 1: the raw level itself
        np.testing.assert_allclose(green, [a, b * b], rtol=1e-5)
        assert np.all(level[0] >= green[0] * 0.99)  # R, B amplified by their multipliers
    clean = build_dataset({"name": "synthetic", "camera": {**CAMERA, "clean_prob": 0.999},
                           "patch_size": 48, "samples_per_epoch": 3},
                          pattern=pattern, split="train", seed=0)
    assert not any(clean[i]["noise"].any() for i in range(len(clean)))


def test_device_batches_carry_the_level_and_zeros_for_clean_crops():
    ds = build_dataset({"name": "synthetic", "camera": {**CAMERA, "clean_prob": 0.5},
                        "patch_size": 48, "samples_per_epoch": 4}, pattern="xtrans",
                       split="train", seed=0)
    batch = DeviceSyntheticBatches(ds, 16, "cpu", seed=0).batch()
    level = batch["noise"]
    assert level.shape == (16, 2, 3)
    a, b = NoiseModel().params(3200.0)
    noisy = level[:, 0, 1] > 0
    assert 0 < int(noisy.sum()) < 16  # clean crops carry zeros, captures their level
    torch.testing.assert_close(level[noisy][:, :, 1], torch.tensor([[a, b * b]]).expand(
        int(noisy.sum()), 2), rtol=1e-5, atol=0)
    plain = build_dataset({"name": "synthetic", "camera": {"enabled": False}, "noise": True,
                           "patch_size": 48, "samples_per_epoch": 2}, pattern="xtrans",
                          split="train", seed=0)
    assert DeviceSyntheticBatches(plain, 4, "cpu", seed=0).batch()["noise"][:, 0].gt(0).all()
    assert plain[0]["noise"][0].gt(0).all()  # the DataLoader path too


def test_the_raw_teacher_records_each_file_level_and_passes_it_on_request(tmp_path):
    rng = np.random.default_rng(0)
    scene = (0.2 + 0.3 * rng.random((3, 132, 138))).astype(np.float32)
    raws = tmp_path / "raws"
    raws.mkdir()
    write_camera_raw(raws / "a.dng", scene, cfa.XTRANS.shifted(1, 2), iso=1600, noise_profile=True)
    build_raw_teacher(raws, tmp_path / "shards", pairing="native", algorithm="linear",
                      progress=False)
    item = json.loads(next((tmp_path / "shards" / "items").glob("*.json")).read_text())
    want = file_profile(read_raw(raws / "a.dng"))
    assert item["noise"]["source"] == "dng"
    np.testing.assert_allclose(item["noise"]["profile"], want.as_list(), rtol=1e-5)
    spec = {"name": "raw_teacher", "root": str(tmp_path / "shards"), "patch_size": 48,
            "samples_per_epoch": 2, "augment": False}
    zero = build_dataset(spec, pattern="xtrans", split="train", seed=0)
    assert not zero[0]["noise"].any()  # the teacher keeps the noise: demosaic only
    given = build_dataset({**spec, "noise_level": "file"}, pattern="xtrans", split="train", seed=0)
    green = given[0]["noise"][:, 1].numpy()
    np.testing.assert_allclose(green, [want.scale[1], want.offset[1]], rtol=1e-4)
    with pytest.raises(ConfigError, match="noise_level"):
        build_dataset({**spec, "noise_level": "estimated"}, pattern="xtrans", split="train", seed=0)
