"""Mixtures sample by ratio (not by size), deterministically per epoch."""

import numpy as np
import pytest
import torch

from demosaic.data import build_dataset
from demosaic.data.mixture import split_counts
from demosaic.errors import ConfigError

#: These tests check the clean (camera-free) pipeline; tests/sim/test_camera.py covers the camera.
NO_CAMERA = {"enabled": False}


def _cfg(n=1000, ratios=(0.8, 0.15, 0.05)):
    return {
        "name": "mixture", "samples_per_epoch": n,
        "components": [
            {"ratio": ratios[0], "dataset": {"name": "synthetic", "camera": NO_CAMERA, "patch_size": 24,
                                             "samples_per_epoch": 5000}},
            {"ratio": ratios[1], "dataset": {"name": "torture", "camera": NO_CAMERA, "patch_size": 24, "count": 13}},
            {"ratio": ratios[2], "dataset": {"name": "torture", "camera": NO_CAMERA, "patch_size": 24, "count": 4,
                                             "types": [3, 12]}},
        ],
    }


def test_split_counts_sum_and_ratios():
    assert split_counts([0.8, 0.15, 0.05], 1000) == [800, 150, 50]
    assert sum(split_counts([1, 1, 1], 10)) == 10
    assert split_counts([2, 1], 3) == [2, 1]


def test_ratios_hold_regardless_of_component_sizes():
    ds = build_dataset(_cfg(), pattern="xtrans", split="train", seed=0)
    comp, item = ds.table()
    assert np.bincount(comp, minlength=3).tolist() == [800, 150, 50]
    # items are indices into each component, covering the small ones
    assert item[comp == 2].max() < 4 and set(item[comp == 1].tolist()) == set(range(13))
    # shuffled, not blocks
    assert 0 < np.argmax(comp == 2) < 200


def test_deterministic_per_epoch_and_items_come_from_components():
    ds = build_dataset(_cfg(200), pattern="xtrans", split="train", seed=4)
    c0 = ds.table()[0].copy()
    s = ds[int(np.argmax(c0 == 1))]
    assert s["target"].shape == (3, 24, 24)
    assert torch.equal(s["cfa"][0], (s["target"] * s["mask"]).sum(0))
    ds.set_epoch(1)
    c1 = ds.table()[0].copy()
    assert not np.array_equal(c0, c1)
    assert np.bincount(c1).tolist() == np.bincount(c0).tolist()
    ds.set_epoch(0)
    np.testing.assert_array_equal(ds.table()[0], c0)
    again = build_dataset(_cfg(200), pattern="xtrans", split="train", seed=4)
    np.testing.assert_array_equal(again.table()[0], c0)
    for i in (0, 7, 199):
        assert torch.equal(again[i]["target"], ds[i]["target"])
    # a component follows the mixture's epoch
    ds.set_epoch(3)
    assert ds.datasets[0].epoch == 3


def test_every_item_is_an_exact_mosaic():
    ds = build_dataset(_cfg(40), pattern="bayer_rggb", split="train", seed=1)
    for i in range(40):
        s = ds[i]
        assert torch.equal(s["cfa"][0], (s["target"] * s["mask"]).sum(0))


def test_errors():
    bad = _cfg()
    bad["components"][1]["dataset"]["patch_size"] = 36
    with pytest.raises(ConfigError, match="patch sizes differ"):
        build_dataset(bad, pattern="xtrans", split="train", seed=0)
    with pytest.raises(ConfigError, match="ratio"):
        build_dataset(_cfg(ratios=(0.5, 0.0, 0.5)), pattern="xtrans", split="train", seed=0)
    with pytest.raises(ConfigError, match=r"components\[0\]"):
        build_dataset({"name": "mixture", "components": [
            {"ratio": 1, "dataset": {"name": "synthetic", "camera": NO_CAMERA, "patch_sise": 3}}]},
            pattern="xtrans", split="train", seed=0)
    with pytest.raises(ConfigError, match="weight"):
        build_dataset({"name": "mixture", "components": [{"weight": 1, "dataset": {}}]},
                      pattern="xtrans", split="train", seed=0)
