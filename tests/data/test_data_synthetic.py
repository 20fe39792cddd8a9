"""Synthetic mosaics and folder evaluation sets: exact mosaics, aligned crops, CFA-safe
transforms, exact sRGB decoding, determinism, options, errors."""

import numpy as np
import pytest
import tifffile
import torch
from PIL import Image

from demosaic import cfa
from demosaic.color import linear_to_srgb, srgb_to_linear
from demosaic.data import build_dataset
from demosaic.data.common import SAMPLES_DIR
from demosaic.errors import ConfigError

STEP = 97  # 16-bit code step per pixel in the coordinate images

#: These tests check the clean (camera-free) pipeline; tests/sim/test_camera.py covers the camera.
NO_CAMERA = {"enabled": False}


def _coord_image(path, h, w, blue=30000):
    """16-bit TIFF whose R code encodes x and G code encodes y (B constant per image)."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * STEP + 1000, yy * STEP + 1000, np.full_like(xx, blue)], -1)
    tifffile.imwrite(path, img.astype(np.uint16))


def _decode_coords(target):
    """(y, x) grids from a linear coordinate-image crop (3, h, w)."""
    codes = np.rint(np.asarray(linear_to_srgb(target.numpy().astype(np.float64))) * 65535)
    return (codes[1] - 1000) / STEP, (codes[0] - 1000) / STEP


@pytest.fixture()
def coord_dir(tmp_path):
    d = tmp_path / "coords"
    d.mkdir()
    _coord_image(d / "a.tif", 150, 200)
    _coord_image(d / "b.tif", 130, 170, blue=20000)
    return d


def _exact(sample, pattern):
    m = torch.from_numpy(cfa.mask(pattern, *sample["target"].shape[1:]))
    assert torch.equal(sample["mask"], m)
    assert torch.equal(sample["cfa"][0], (sample["target"] * m).sum(0))


@pytest.mark.parametrize("pattern", ["xtrans", "bayer_rggb"])
def test_bundled_default_samples_follow_the_contract(pattern):
    ds = build_dataset({"name": "synthetic", "camera": NO_CAMERA, "patch_size": 48, "samples_per_epoch": 12,
                        "highlight_prob": 0.5}, pattern=pattern, split="train", seed=0)
    assert len(ds) == 12 and len(ds.files) == 8
    for i in range(len(ds)):
        s = ds[i]
        assert set(s) == {"cfa", "mask", "target", "noise"}
        assert s["cfa"].shape == (1, 48, 48) and s["target"].shape == (3, 48, 48)
        assert s["noise"].shape == (2, 3) and not s["noise"].any()  # clean: level zero
        assert all(v.dtype == torch.float32 for v in s.values())
        _exact(s, pattern)


def test_crops_are_aligned_to_the_period(coord_dir):
    ds = build_dataset({"name": "synthetic", "camera": NO_CAMERA, "root": str(coord_dir), "patch_size": 36,
                        "samples_per_epoch": 40, "augment": False, "exposure_range": [1, 1]},
                       pattern="xtrans", split="train", seed=1)
    origins = set()
    for i in range(len(ds)):
        y, x = _decode_coords(ds[i]["target"])
        np.testing.assert_allclose(y - y[0, 0], np.mgrid[0:36, 0:36][0], atol=1e-6)
        np.testing.assert_allclose(x - x[0, 0], np.mgrid[0:36, 0:36][1], atol=1e-6)
        assert y[0, 0] % 6 == 0 and x[0, 0] % 6 == 0
        origins.add((y[0, 0], x[0, 0]))
    assert len(origins) > 20  # crops really move


def test_all_8_transforms_happen_and_keep_the_canonical_pattern(coord_dir):
    ds = build_dataset({"name": "synthetic", "camera": NO_CAMERA, "root": str(coord_dir), "patch_size": 24,
                        "samples_per_epoch": 80, "exposure_range": [1, 1]},
                       pattern="xtrans", split="train", seed=2)
    kinds = set()
    for i in range(len(ds)):
        s = ds[i]
        _exact(s, "xtrans")  # the mosaic after the RGB transform is canonical X-Trans
        y, x = _decode_coords(s["target"])
        dy = (np.sign(y[1, 0] - y[0, 0]), np.sign(x[1, 0] - x[0, 0]))
        dx = (np.sign(y[0, 1] - y[0, 0]), np.sign(x[0, 1] - x[0, 0]))
        kinds.add((dy, dx))
    assert len(kinds) == 8


def test_srgb_decoding_is_exact_and_deterministic(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, size=(60, 60, 3), dtype=np.uint8)
    d = tmp_path / "png"
    d.mkdir()
    Image.fromarray(img).save(d / "x.png")
    cfg = {"name": "synthetic", "camera": NO_CAMERA, "root": [str(d)], "patch_size": 60, "samples_per_epoch": 4,
           "augment": False, "exposure_range": [1, 1]}
    ds = build_dataset(cfg, pattern="xtrans", split="train", seed=5)
    expect = np.asarray(srgb_to_linear(img.astype(np.float64) / 255), dtype=np.float32)
    np.testing.assert_allclose(ds[0]["target"].numpy(), expect.transpose(2, 0, 1),
                               rtol=1e-6, atol=1e-7)
    again = build_dataset(cfg, pattern="xtrans", split="train", seed=5)
    assert torch.equal(ds[3]["target"], again[3]["target"])


def test_epochs_and_seeds_change_the_crops(coord_dir):
    cfg = {"name": "synthetic", "camera": NO_CAMERA, "root": str(coord_dir), "patch_size": 24, "samples_per_epoch": 8}
    ds = build_dataset(cfg, pattern="xtrans", split="train", seed=3)
    e0 = [ds[i]["target"] for i in range(8)]
    ds.set_epoch(1)
    e1 = [ds[i]["target"] for i in range(8)]
    ds.set_epoch(0)
    assert all(torch.equal(a, ds[i]["target"]) for i, a in enumerate(e0))
    assert not all(torch.equal(a, b) for a, b in zip(e0, e1))
    other = build_dataset(cfg, pattern="xtrans", split="train", seed=4)
    assert not torch.equal(other[0]["target"], e0[0])


def test_exposure_downsample_highlights_noise_and_srgb(coord_dir, tmp_path):
    base = {"name": "synthetic", "camera": NO_CAMERA, "root": str(coord_dir), "patch_size": 24, "samples_per_epoch": 6,
            "augment": False}
    plain = build_dataset({**base, "exposure_range": [1, 1]}, pattern="xtrans", split="train",
                          seed=0)
    bright = build_dataset({**base, "exposure_range": [3, 3]}, pattern="xtrans", split="train",
                           seed=0)
    torch.testing.assert_close(bright[0]["target"], plain[0]["target"] * 3)

    # downsample 2: the box average of the linear image (coordinate image: linear in codes,
    # not in light, so compare against an explicit box filter of the decoded image).
    d2 = build_dataset({**base, "downsample": 2, "exposure_range": [1, 1], "root": str(coord_dir)},
                       pattern="xtrans", split="train", seed=0)
    src = tifffile.imread(coord_dir / "a.tif").astype(np.float64) / 65535
    lin = np.asarray(srgb_to_linear(src), dtype=np.float32)
    box = lin[:150, :200].reshape(75, 2, 100, 2, 3).mean(axis=(1, 3))
    t = d2[0]["target"].numpy().transpose(1, 2, 0)
    hits = [np.allclose(box[y:y + 24, x:x + 24], t, atol=1e-6)
            for y in range(0, 75 - 23, 6) for x in range(0, 100 - 23, 6)]
    b = tifffile.imread(coord_dir / "b.tif").astype(np.float64) / 65535
    boxb = np.asarray(srgb_to_linear(b), dtype=np.float32)[:130, :170].reshape(65, 2, 85, 2, 3).mean(axis=(1, 3))
    hits += [np.allclose(boxb[y:y + 24, x:x + 24], t, atol=1e-6)
             for y in range(0, 65 - 23, 6) for x in range(0, 85 - 23, 6)]
    assert sum(hits) == 1

    hl = build_dataset({**base, "highlight_prob": 1.0, "highlight_gain": [2, 4]},
                       pattern="xtrans", split="train", seed=0)
    for i in range(len(hl)):
        assert hl[i]["target"].max() > 1.0
        _exact(hl[i], "xtrans")

    noisy = build_dataset({**base, "noise": True, "exposure_range": [1, 1]}, pattern="xtrans",
                          split="train", seed=0)
    s, c = noisy[0], plain[0]
    assert torch.equal(s["target"], c["target"])  # clean target
    diff = s["cfa"] - c["cfa"]
    assert 0 < diff.abs().mean() < 0.2

    srgb = build_dataset({**base, "space": "srgb", "exposure_range": [4, 4],
                          "highlight_prob": 1.0}, pattern="xtrans", split="train", seed=0)
    t = srgb[0]["target"]
    assert t.min() >= 0 and t.max() <= 1.0 and (t == 1.0).any()
    _exact(srgb[0], "xtrans")


def test_no_cache_gives_the_same_samples(coord_dir):
    cfg = {"name": "synthetic", "camera": NO_CAMERA, "root": str(coord_dir), "patch_size": 24, "samples_per_epoch": 4}
    a = build_dataset(cfg, pattern="xtrans", split="train", seed=9)
    b = build_dataset({**cfg, "cache": False}, pattern="xtrans", split="train", seed=9)
    assert all(torch.equal(a[i]["target"], b[i]["target"]) for i in range(4))
    assert b._sources._items == {}


def test_config_errors_name_the_key(tmp_path, coord_dir):
    with pytest.raises(ConfigError, match=r"dataset\.train\.patch_size"):
        build_dataset({"name": "synthetic", "camera": NO_CAMERA, "patch_size": 50}, pattern="xtrans", split="train",
                      seed=0)
    with pytest.raises(ConfigError, match=r"dataset\.train.*patch_sise"):
        build_dataset({"name": "synthetic", "camera": NO_CAMERA, "patch_sise": 48}, pattern="xtrans", split="train",
                      seed=0)
    with pytest.raises(ConfigError, match=r"dataset\.train\.root.*DEMOSAIC_DATA"):
        build_dataset({"name": "synthetic", "camera": NO_CAMERA, "root": str(tmp_path / "missing")}, pattern="xtrans",
                      split="train", seed=0)
    with pytest.raises(ConfigError, match=r"no image"):
        build_dataset({"name": "synthetic", "camera": NO_CAMERA, "root": str(coord_dir), "patch_size": 132,
                       "downsample": 2}, pattern="xtrans", split="train", seed=0)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"no images"):
        build_dataset({"name": "synthetic", "camera": NO_CAMERA, "root": str(empty)}, pattern="xtrans", split="train",
                      seed=0)
    with pytest.raises(ConfigError, match="space"):
        build_dataset({"name": "synthetic", "camera": NO_CAMERA, "space": "log"}, pattern="xtrans", split="train",
                      seed=0)


def test_relative_roots_resolve_against_the_working_directory(coord_dir, monkeypatch):
    monkeypatch.chdir(coord_dir.parent)
    ds = build_dataset({"name": "synthetic", "camera": NO_CAMERA, "root": ["coords"], "patch_size": 24,
                        "samples_per_epoch": 2}, pattern="xtrans", split="train", seed=0)
    assert ds.files[0] == coord_dir / "a.tif"


# --------------------------------------------------------------------------------------
# folder (evaluation sets)
# --------------------------------------------------------------------------------------


def test_bundled_val_folder_whole_images():
    ds = build_dataset({"name": "folder"}, pattern="xtrans", split="val", seed=None)
    assert len(ds) == 2 and all(p.parent == SAMPLES_DIR / "val" for p in ds.files)
    for i in range(2):
        s = ds[i]
        h, w = s["target"].shape[1:]
        assert {h, w} == {318, 480}  # 321x481 centre-cropped to multiples of 6
        _exact(s, "xtrans")
        assert isinstance(s["name"], str)
        # centre crop: same as decoding the file and cropping the middle
        img = np.asarray(Image.open(ds.files[i]).convert("RGB"), dtype=np.float64) / 255
        y0, x0 = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        ref = np.asarray(srgb_to_linear(img[y0:y0 + h, x0:x0 + w]), dtype=np.float32)
        np.testing.assert_allclose(s["target"].numpy().transpose(1, 2, 0), ref, atol=1e-6)


def test_folder_pad_max_size_max_images(coord_dir):
    pad = build_dataset({"name": "folder", "root": str(coord_dir), "mode": "pad"},
                        pattern="xtrans", split="val")
    s = pad[1]  # b.tif: 130x170 -> padded to 132x174
    assert s["target"].shape == (3, 132, 174)
    assert torch.equal(s["target"][:, 130], s["target"][:, 129])
    _exact(s, "xtrans")
    small = build_dataset({"name": "folder", "root": str(coord_dir), "max_size": 64,
                           "max_images": 1}, pattern="bayer_rggb", split="val")
    assert len(small) == 1
    t = small[0]["target"]
    assert t.shape == (3, 64, 64)
    y, x = _decode_coords(t)
    assert (y[0, 0], x[0, 0]) == ((150 - 64) // 2, (200 - 64) // 2)
    with pytest.raises(ConfigError, match="mode"):
        build_dataset({"name": "folder", "mode": "stretch"}, pattern="xtrans", split="val")


def test_saturation_augmentation_scales_chroma_keeps_luma_and_errors(coord_dir):
    from demosaic.data.transforms import LUMA_709, adjust_saturation

    rng = np.random.default_rng(0)
    rgb = rng.uniform(0.2, 0.4, size=(3, 8, 8)).astype(np.float32)
    rgb[:, 0, 0] = 0.3  # a grey pixel stays grey at any factor
    assert np.array_equal(adjust_saturation(rgb, 1.0), rgb)
    out = adjust_saturation(rgb, 1.5)
    luma = np.tensordot(LUMA_709, rgb, axes=1)
    np.testing.assert_allclose(out - luma, 1.5 * (rgb - luma), atol=1e-6)  # no channel clipped
    np.testing.assert_allclose(np.tensordot(LUMA_709, out, axes=1), luma, atol=1e-6)
    np.testing.assert_allclose(out[:, 0, 0], 0.3, atol=1e-6)
    strong = adjust_saturation(rgb * 4, 10.0)  # would go negative: floored at 0, not clamped above
    assert strong.min() == 0.0 and strong.max() > 1.0

    base = {"name": "synthetic", "camera": NO_CAMERA, "root": str(coord_dir), "patch_size": 24, "samples_per_epoch": 4,
            "augment": False, "exposure_range": [1, 1]}
    plain = build_dataset(base, pattern="xtrans", split="train", seed=0)
    sat = build_dataset({**base, "saturation_prob": 1.0, "saturation_range": [2, 2]},
                        pattern="xtrans", split="train", seed=0)
    p, s = plain[0]["target"].numpy(), sat[0]["target"]
    np.testing.assert_allclose(s.numpy(), adjust_saturation(p, 2.0), atol=1e-6)
    _exact(sat[0], "xtrans")
    for bad, key in (({"saturation_prob": 1.5}, "saturation_prob"),
                     ({"saturation_range": [0, 2]}, "saturation_range")):
        with pytest.raises(ConfigError, match=key):
            build_dataset({**base, **bad}, pattern="xtrans", split="train", seed=0)
