"""Torture v2: all 13 types render deterministically, within the documented value range,
as a dataset on the fly and from an export, selectable by type."""

import json

import numpy as np
import pytest
import torch

from demosaic import cfa
from demosaic.data import build_dataset
from demosaic.data import torture as T
from demosaic.errors import ConfigError

#: These tests check the clean (camera-free) pipeline; tests/sim/test_camera.py covers the camera.
NO_CAMERA = {"enabled": False}


def test_thirteen_types_named_as_in_the_log():
    assert T.NUM_TYPES == 13
    assert T.TYPE_NAMES[11] == "julia" and T.TYPE_NAMES[12] == "perlin_fbm"


@pytest.mark.parametrize("type_id", range(13), ids=lambda t: T.TYPE_NAMES[t])
def test_type_renders_deterministically_in_range(type_id):
    lo, hi = T.VALUE_RANGE
    seen = []
    for index in range(6):
        a, pol_a = T.render(type_id, 7, index, 48)
        b, pol_b = T.render(type_id, 7, index, 48)
        assert a.shape == (3, 48, 48) and a.dtype == np.float32
        np.testing.assert_array_equal(a, b)
        assert pol_a == pol_b and pol_a in T.POLICIES
        assert np.isfinite(a).all()
        assert a.min() >= lo and a.max() <= hi
        if pol_a != "bright":
            assert a.max() <= 1.0
        seen.append(a)
    # The pattern has structure (not a flat field) in most samples, and samples differ.
    assert sum(float(s.std(axis=(1, 2)).max()) > 1e-4 for s in seen) >= 4
    assert not np.array_equal(seen[0], seen[1])
    # Another seed gives another sample.
    assert not np.array_equal(T.render(type_id, 8, 0, 48)[0], seen[0])


def test_colour_policies_follow_their_definition():
    from demosaic.color import linear_to_srgb

    rng = np.random.default_rng(0)
    got = set()
    for _ in range(200):
        c0, c1, pol = T.pick_colours(rng)
        got.add(pol)
        enc = [np.asarray(linear_to_srgb(c.astype(np.float64))) for c in (c0, c1)]
        if pol == "near_neutral":  # S <= 0.12 in HSV of the encoded colour
            for e in enc:
                assert (e.max() - e.min()) <= 0.12 * e.max() + 1e-6
        elif pol == "dark":
            assert max(e.max() for e in enc) <= 0.25 + 1e-6
        elif pol == "complementary":
            for e in enc:
                assert (e.max() - e.min()) >= 0.7 * e.max() - 1e-6
        else:
            assert min(c.max() for c in (c0, c1)) >= float(np.asarray(
                T.srgb_to_linear(np.float64(0.85)))) - 1e-6
    assert got == set(T.POLICIES)


def test_bright_policy_reaches_above_one():
    assert any(T.render(12, 0, i, 24)[0].max() > 1.0 for i in range(60))


def test_dataset_on_the_fly_cycles_types_and_mosaics_exactly():
    ds = build_dataset({"name": "torture", "camera": NO_CAMERA, "count": 26, "patch_size": 36}, pattern="xtrans",
                       split="train", seed=123)
    assert len(ds) == 26 and ds.patch_size == 36
    assert [ds.type_of(i) for i in range(13)] == list(range(13))
    for i in range(26):
        s = ds[i]
        assert s["cfa"].shape == (1, 36, 36) and s["target"].shape == (3, 36, 36)
        m = torch.from_numpy(cfa.mask("xtrans", 36, 36))
        assert torch.equal(s["mask"], m)
        assert torch.equal(s["cfa"][0], (s["target"] * m).sum(0))
    # sample_seed 0 (default) fixes the set regardless of the run's seed
    other = build_dataset({"name": "torture", "camera": NO_CAMERA, "count": 26, "patch_size": 36}, pattern="xtrans",
                          split="train", seed=999)
    assert torch.equal(other[5]["target"], ds[5]["target"])
    np.testing.assert_array_equal(ds[5]["target"].numpy(), T.render(5, 0, 5, 36)[0])


def test_type_selection_and_bad_types():
    ds = build_dataset({"name": "torture", "camera": NO_CAMERA, "count": 10, "patch_size": 24, "types": [3, 12]},
                       pattern="bayer_rggb", split="train", seed=0)
    assert {ds.type_of(i) for i in range(10)} == {3, 12}
    with pytest.raises(ConfigError, match="types"):
        build_dataset({"name": "torture", "camera": NO_CAMERA, "types": [13]}, pattern="xtrans", split="train", seed=0)
    with pytest.raises(ConfigError, match="patch_size"):
        build_dataset({"name": "torture", "camera": NO_CAMERA, "patch_size": 32}, pattern="xtrans", split="train",
                      seed=0)


def test_export_records_types_and_reloads(tmp_path):
    out = tmp_path / "torture"
    manifest_path = T.export_torture(out, count=15, patch_size=24, seed=3, progress=False)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["count"] == 15 and len(manifest["items"]) == 15
    assert [it["type"] for it in manifest["items"]] == [i % 13 for i in range(15)]
    assert all(it["type_name"] == T.TYPE_NAMES[it["type"]] for it in manifest["items"])
    arr = np.load(out / "targets.npy")
    assert arr.shape == (15, 3, 24, 24) and arr.dtype == np.float16
    # No temporary files left behind.
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "targets.npy"]

    ds = build_dataset({"name": "torture", "camera": NO_CAMERA, "root": str(out), "patch_size": 24, "types": [0, 11]},
                       pattern="xtrans", split="train", seed=0)
    assert len(ds) == 3  # items 0, 11, 13
    assert [ds.type_of(i) for i in range(3)] == [0, 11, 0]
    s = ds[1]
    expect = T.render(11, 3, 11, 24)[0]
    np.testing.assert_allclose(s["target"].numpy(), expect, rtol=2e-3, atol=1e-4)
    assert torch.equal(s["cfa"][0], (s["target"] * s["mask"]).sum(0))

    with pytest.raises(ConfigError, match="patch_size"):
        build_dataset({"name": "torture", "camera": NO_CAMERA, "root": str(out), "patch_size": 36}, pattern="xtrans",
                      split="train", seed=0)
    with pytest.raises(ConfigError, match="not found|does not exist"):
        build_dataset({"name": "torture", "camera": NO_CAMERA, "root": str(tmp_path / "nope")}, pattern="xtrans",
                      split="train", seed=0)


def test_prepare_cli_exports_torture(tmp_path):
    from demosaic.cli import prepare

    out = tmp_path / "t"
    prepare.main(["torture", f"out={out}", "count=4", "patch_size=12", "types=[1,2]",
                  "progress=false"])
    manifest = json.loads((out / "manifest.json").read_text())
    assert [it["type"] for it in manifest["items"]] == [1, 2, 1, 2]
    # Same via the dataset=torture spelling.
    out2 = tmp_path / "t2"
    prepare.main(["dataset=torture", f"out={out2}", "count=2", "patch_size=12",
                  "progress=false"])
    assert json.loads((out2 / "manifest.json").read_text())["count"] == 2
