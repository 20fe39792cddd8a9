"""Real-camera behaviour: the camera simulation (matrices, noise, white balance), white balance
before the network, clipped highlights, and raw-teacher shards in balanced camera RGB."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from demosaic import cfa as C
from demosaic.sim.camera import (
    CameraSimConfig,
    NoiseModel,
    body_by_name,
    camera_neutral,
    load_bodies,
    simulate_capture,
    srgb_to_camera,
)
from demosaic.color import camera_to_output_matrix, linear_to_srgb
from demosaic.data import build_dataset
from demosaic.data.shards import build_raw_teacher
from demosaic.models.checkpoint import make_checkpoint, save_checkpoint
from demosaic.sim.scenes import synthetic_scene
from demosaic.inference.highlights import apply_highlights
from demosaic.inference.run import infer_file
from demosaic.errors import ConfigError
from demosaic.io.dng import write_dng
from demosaic.io.images import read_exr
from demosaic.io.raw import read_raw
from demosaic.models import create_model

XT3 = body_by_name("X-T3", "xtrans")


def _mosaic(rgb: np.ndarray, layout: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[1:]
    p = layout.shape[0]
    idx = np.tile(layout, (-(-h // p), -(-w // p)))[:h, :w]
    return np.take_along_axis(rgb, idx[None], axis=0)[0]


# --------------------------------------------------------------------------------------
# Camera data and noise
# --------------------------------------------------------------------------------------


def test_bundled_table_has_both_families_and_real_multipliers():
    xt, bayer = load_bodies("xtrans"), load_bodies("bayer")
    assert len(xt) == 27 and len(bayer) == 21
    for body in xt + bayer:
        mult = 1.0 / body.neutral
        # a real raw file: red and blue read well below green for a grey
        assert mult[1] == 1.0 and 1.5 < mult[0] < 3.0 and 1.0 < mult[2] < 2.5, body
    np.testing.assert_allclose(1.0 / XT3.neutral, [2.077, 1.0, 1.471], atol=2e-3)
    with pytest.raises(ConfigError, match="X-T99"):
        load_bodies("xtrans", models=["X-T99"])


def test_camera_matrix_round_trip_through_a_dng(tmp_path, rng):
    """sRGB -> camera (simulation) and camera -> sRGB (inference's colour step) invert each
    other once balanced, also after LibRaw has read the matrix back from a DNG."""
    truth = rng.uniform(0.05, 0.6, size=(3, 24, 30)).astype(np.float32)
    cam = np.einsum("ck,khw->chw", srgb_to_camera(XT3.xyz_to_cam), truth)
    mult = 1.0 / camera_neutral(XT3.xyz_to_cam)
    balanced = cam * mult[:, None, None]
    back = np.einsum("ck,khw->chw", camera_to_output_matrix(XT3.xyz_to_cam, "srgb"), balanced)
    np.testing.assert_allclose(back, truth, atol=1e-6)
    path = write_dng(tmp_path / "m.dng", np.full((36, 36), 0.3, np.float32), C.XTRANS,
                     color_matrix=XT3.xyz_to_cam, as_shot_neutral=XT3.neutral)
    raw = read_raw(path)
    np.testing.assert_allclose(raw.wb_multipliers, mult, rtol=1e-5)
    np.testing.assert_allclose(camera_to_output_matrix(raw.xyz_to_cam, "srgb"),
                               camera_to_output_matrix(XT3.xyz_to_cam, "srgb"), atol=1e-4)


@pytest.mark.parametrize("iso", [100, 800, 6400])
def test_noise_model_mean_and_variance_match_the_formula(iso):
    model = NoiseModel()
    a, b = model.params(iso)
    gen = np.random.default_rng(iso)
    for level in (0.02, 0.3):
        x = np.full(400_000, level, np.float32)
        y = model.sample(x, iso, gen).astype(np.float64)
        assert abs(y.mean() - level) < 4 * np.sqrt((a * level + b * b) / x.size)
        assert y.var() == pytest.approx(a * level + b * b, rel=0.02)
    # more ISO, more noise; the read noise dominates in the deep shadows at base ISO
    assert model.params(3200)[0] > model.params(800)[0] > model.params(100)[0]


def test_capture_is_balanced_camera_rgb_with_raw_noise_and_clipping():
    cfg = CameraSimConfig(illuminant_sigma=0.0, wb_error=0.0, bits=[14])
    grey = np.full((3, 60, 60), 0.3, np.float32)
    grey[:, :, 30:] = 3.0  # far above the white level: every raw channel clips
    cap = simulate_capture(grey, C.XTRANS.array, np.random.default_rng(0), cfg, body=XT3, iso=3200)
    mult = cap.multipliers
    np.testing.assert_allclose(mult, 1.0 / XT3.neutral, rtol=1e-9)
    # target: a grey is neutral once balanced; the clipped half sits at each channel's bound
    np.testing.assert_allclose(cap.target[:, :, :30], 0.3 * 0.7, rtol=1e-5)
    np.testing.assert_allclose(cap.target[:, 0, 40], mult, rtol=1e-6)
    # raw: black level, 14 bits, clipped at white; red reads about half of green
    assert cap.raw.dtype == np.uint16 and cap.raw.max() == cap.white == 16383
    lay = np.tile(C.XTRANS.array, (10, 10))
    raw = (cap.raw.astype(np.float64) - cap.black) / (cap.white - cap.black)
    left = raw[:, :30]
    r_over_g = left[lay[:, :30] == 0].mean() / left[lay[:, :30] == 1].mean()
    assert r_over_g == pytest.approx(XT3.neutral[0], rel=0.03)
    # noise is in raw units: after white balance red is noisier than green, by the formula
    bal, sel = cap.cfa[:, :30], lay[:, :30]
    a, b = cap.noise
    x_r, x_g = 0.3 * 0.7 * XT3.neutral[0], 0.3 * 0.7
    expect = mult[0] * np.sqrt(a * x_r + b * b) / np.sqrt(a * x_g + b * b)
    assert bal[sel == 0].std() / bal[sel == 1].std() == pytest.approx(expect, rel=0.15)
    assert expect > 1.3


def test_synthetic_dataset_simulates_a_camera_by_default_and_refuses_bad_keys():
    ds = build_dataset({"name": "synthetic", "patch_size": 48, "samples_per_epoch": 4},
                       pattern="xtrans", split="train", seed=0)
    assert ds.camera is not None and ds.camera.iso_range == [100.0, 6400.0]
    s = ds[0]
    assert s["cfa"].shape == (1, 48, 48) and s["target"].shape == (3, 48, 48)
    assert torch.isfinite(s["cfa"]).all()
    again = build_dataset({"name": "synthetic", "patch_size": 48, "samples_per_epoch": 4},
                          pattern="xtrans", split="train", seed=0)
    assert torch.equal(again[0]["cfa"], s["cfa"])  # noise is seeded per item
    # clean_prob: that share of the items are clean linear-sRGB mosaics (exact samples)
    mixed = build_dataset({"name": "synthetic", "patch_size": 24, "samples_per_epoch": 40,
                           "camera": {"clean_prob": 0.5}}, pattern="xtrans", split="train", seed=1)
    m = torch.from_numpy(C.mask(C.XTRANS, 24, 24))
    exact = [torch.equal(it["cfa"][0], (it["target"] * m).sum(0)) for it in mixed]
    assert 8 <= sum(exact) <= 32
    with pytest.raises(ConfigError, match=r"camera.*iso_range"):
        build_dataset({"name": "synthetic", "camera": {"iso_range": [800, 100]}},
                      pattern="xtrans", split="train", seed=0)
    with pytest.raises(ConfigError, match=r"noise"):
        build_dataset({"name": "synthetic", "noise": True}, pattern="xtrans", split="train", seed=0)
    with pytest.raises(ConfigError, match="space"):
        build_dataset({"name": "synthetic", "space": "srgb"}, pattern="xtrans", split="train", seed=0)


# --------------------------------------------------------------------------------------
# Inference: white balance before the network
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def unet_ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model("unet", cfa="xtrans", width=8, depth=1)
    ckpt = make_checkpoint(model, "unet", model.spec["kwargs"], cfa="xtrans", step=1,
                           run_name="random-init")
    return save_checkpoint(ckpt, tmp_path_factory.mktemp("ckpt") / "best.pt")


def test_balanced_and_unbalanced_files_of_one_scene_give_the_same_output(tmp_path, unet_ckpt):
    """A non-linear network sees the same balanced mosaic whichever way the file stores it:
    the white balance is applied to the mosaic before the network."""
    scene = synthetic_scene(72, 96, seed=5) * np.float32(0.45)
    layout = C.XTRANS.shifted(1, 4)
    balanced = _mosaic(scene, layout)
    mult = 1.0 / XT3.neutral
    idx = np.tile(layout, (12, 16))
    kw = dict(black_level=0, white_level=65535, color_matrix=XT3.xyz_to_cam)
    a = write_dng(tmp_path / "balanced.dng", balanced, layout, as_shot_neutral=(1, 1, 1), **kw)
    b = write_dng(tmp_path / "raw.dng", balanced / mult[idx], layout,
                  as_shot_neutral=XT3.neutral, **kw)
    outs = []
    for path in (a, b):
        out = tmp_path / (path.stem + ".exr")
        infer_file(path, out, checkpoint=unet_ckpt, device="cpu", color_space="camera", float32=True)
        outs.append(read_exr(out)[0])
    np.testing.assert_allclose(outs[0], outs[1], atol=2e-4)
    # --white-balance none divides the multipliers out again: unbalanced camera RGB
    none = tmp_path / "none.exr"
    infer_file(b, none, checkpoint=unet_ckpt, device="cpu", color_space="camera", float32=True, white_balance="none")
    img, meta = read_exr(none)
    np.testing.assert_allclose(img * mult[:, None, None].astype(np.float32), outs[1], atol=2e-4)
    assert "before demosaicking" in meta["demosaic:whiteBalance"]
    assert "divided out" in meta["demosaic:whiteBalance"]


# --------------------------------------------------------------------------------------
# Clipped highlights
# --------------------------------------------------------------------------------------


def _lamp_scene() -> np.ndarray:
    """(3, 96, 240) raw camera RGB: a lamp clipping every channel (left), a red surface
    whose unclipped red reads 0.8 (right, far enough that ``reconstruct`` does not borrow its
    colour), a grey wall (neutral once balanced) elsewhere."""
    raw = np.ones((3, 96, 240), np.float32) * (0.1 * XT3.neutral[:, None, None]).astype(np.float32)
    raw[:, 24:72, 12:48] = 1.0
    raw[0, 24:72, 180:216] = 0.8
    raw[1:, 24:72, 180:216] = 0.15
    return raw


@pytest.fixture(scope="module")
def lamp_dng(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("lamp")
    return write_dng(folder / "lamp.dng", _mosaic(_lamp_scene(), C.XTRANS.array), C.XTRANS,
                     black_level=1024, white_level=16383, color_matrix=XT3.xyz_to_cam,
                     as_shot_neutral=XT3.neutral)


def _ratio(px: np.ndarray) -> float:
    return float(px.max() / px.min())


@pytest.mark.parametrize("mode", ["clip", "reconstruct"])
def test_clipped_lamp_is_neutral_and_unclipped_values_above_one_survive(lamp_dng, tmp_path, mode):
    mult = 1.0 / XT3.neutral
    cam, srgb = tmp_path / "cam.exr", tmp_path / "srgb.exr"
    infer_file(lamp_dng, cam, model="bilinear", device="cpu", color_space="camera", float32=True, highlights=mode)
    infer_file(lamp_dng, srgb, model="bilinear", device="cpu", float32=True, highlights=mode,
               color_space="srgb")
    img, meta = read_exr(cam)
    assert meta["demosaic:highlights"] == mode
    lamp = img[:, 36:60, 20:40].reshape(3, -1).mean(axis=1)
    assert _ratio(lamp) <= 1.10, lamp
    assert _ratio(read_exr(srgb)[0][:, 36:60, 20:40].reshape(3, -1).mean(axis=1)) <= 1.10
    if mode == "reconstruct":
        assert lamp.min() >= 0.99 * mult.max()  # the lamp keeps its brightest bound
    # the red surface: 0.8 raw x 2.08 = 1.66, unclipped in the raw data, stays above 1.0
    red = img[0, 36:60, 188:208]
    np.testing.assert_allclose(red.mean(), 0.8 * mult[0], rtol=0.01)


def test_other_white_balances_rescale_the_output_and_keep_the_lamp_neutral(lamp_dng, tmp_path):
    """--white-balance R,G,B: away from clipping the output is the as-shot output times
    t / w per channel (exact for linear data); the clipped lamp stays neutral with clip; the
    EXR header records both balances; camera-space primaries keep a grey at D65."""
    from demosaic.inference.colour import output_multipliers, output_rgb_to_xyz

    raw = read_raw(lamp_dng)
    mult = np.asarray(raw.wb_multipliers, dtype=np.float64)  # about 1 / XT3.neutral
    target = np.array([1.3, 1.0, 2.7])
    outs = {}
    for wb in ("as_shot", "1.3,1,2.7"):
        outs[wb] = tmp_path / f"{wb}.exr"
        infer_file(lamp_dng, outs[wb], model="bilinear", device="cpu", color_space="camera",
                   float32=True, white_balance=wb)
    base, custom = read_exr(outs["as_shot"])[0], read_exr(outs["1.3,1,2.7"])
    wall = (slice(None), slice(80, 92), slice(100, 170))  # far from the lamp and the red
    np.testing.assert_allclose(custom[0][wall], base[wall] * (target / mult)[:, None, None],
                               rtol=1e-5)
    lamp = custom[0][:, 36:60, 20:40].reshape(3, -1).mean(axis=1)
    assert _ratio(lamp) <= 1.02, lamp
    assert "[1.3, 1.0, 2.7]" in custom[1]["demosaic:whiteBalance"]
    np.testing.assert_allclose(output_multipliers(raw, "1.3,1,2.7"), target)
    grey_xyz = output_rgb_to_xyz(raw, "camera", "1.3,1,2.7") @ (target / mult)
    np.testing.assert_allclose(grey_xyz / grey_xyz[1],
                               output_rgb_to_xyz(raw, "camera", "as_shot").sum(1)
                               / output_rgb_to_xyz(raw, "camera", "as_shot").sum(1)[1], rtol=1e-9)


@pytest.mark.parametrize("bad", ["tungsten", "2,0,1", "1,1", "a,b,c"])
def test_a_bad_white_balance_is_refused_before_any_work(lamp_dng, tmp_path, bad):
    out = tmp_path / "x.exr"
    with pytest.raises(ConfigError, match="white_balance"):
        infer_file(lamp_dng, out, model="bilinear", device="cpu", white_balance=bad)
    assert not out.exists()


def test_a_linear_dng_carries_the_white_balance_asked_for(lamp_dng, tmp_path):
    """A LinearRaw DNG keeps unbalanced camera RGB; its AsShotNeutral is the balance asked
    for, so a raw converter opens it with that balance (LibRaw reads it back)."""
    import rawpy

    out = tmp_path / "wb.dng"
    infer_file(lamp_dng, out, model="bilinear", device="cpu", white_balance="1.3,1,2.7")
    with rawpy.imread(str(out)) as raw:
        cam = np.asarray(raw.camera_whitebalance[:3], dtype=np.float64)
    np.testing.assert_allclose(cam / cam[1], (1.3, 1.0, 2.7), rtol=1e-3)


def test_without_highlight_handling_the_lamp_is_magenta(lamp_dng, tmp_path):
    out = tmp_path / "none.exr"
    infer_file(lamp_dng, out, model="bilinear", device="cpu", color_space="camera", float32=True, highlights="none")
    lamp = read_exr(out)[0][:, 36:60, 20:40].reshape(3, -1).mean(axis=1)
    mult = 1.0 / XT3.neutral
    np.testing.assert_allclose(lamp, mult, rtol=0.01)  # (2.08, 1, 1.47): the cast to remove
    assert _ratio(lamp) > 2.0
    srgb = linear_to_srgb(camera_to_output_matrix(XT3.xyz_to_cam, "srgb") @ lamp)
    assert srgb[1] < srgb[0] and srgb[1] < srgb[2]  # magenta


def test_highlight_modes_leave_unclipped_images_alone_and_reject_bad_names():
    rgb = torch.rand(3, 36, 36) * 2.5
    none = torch.zeros(36, 36, dtype=torch.bool)
    for mode in ("clip", "reconstruct", "none"):
        assert torch.equal(apply_highlights(rgb, none, C.XTRANS.array, np.array([2.0, 1, 1.5]),
                                            mode), rgb)
    with pytest.raises(ConfigError, match="highlights"):
        apply_highlights(rgb, none, C.XTRANS.array, np.ones(3), "inpaint")


# --------------------------------------------------------------------------------------
# Raw teacher in balanced camera RGB
# --------------------------------------------------------------------------------------


def test_raw_teacher_shards_carry_white_balance_and_matrix(tmp_path):
    raws = tmp_path / "raws"
    raws.mkdir()
    yy, xx = np.mgrid[0:120, 0:132]
    grey = (0.2 + 0.1 * np.sin(xx / 6.0) * np.cos(yy / 9.0)).astype(np.float32)
    cam = grey[None] * XT3.neutral[:, None, None].astype(np.float32)  # a grey scene, raw
    write_dng(raws / "a.dng", _mosaic(cam, C.XTRANS.array), C.XTRANS, black_level=256,
              white_level=4095, color_matrix=XT3.xyz_to_cam, as_shot_neutral=XT3.neutral)
    out = tmp_path / "shards"
    build_raw_teacher(raws, out, pairing="native", algorithm="linear", progress=False)
    record = json.loads(next((out / "items").glob("*.json")).read_text())
    np.testing.assert_allclose(record["wb"], 1.0 / XT3.neutral, rtol=1e-4)
    np.testing.assert_allclose(record["xyz_to_cam"], read_raw(raws / "a.dng").xyz_to_cam, atol=1e-5)
    assert record["space"] == "balanced camera RGB"
    target = np.load(out / record["files"]["target"]).astype(np.float32)
    mosaic = np.load(out / record["files"]["cfa"]).astype(np.float32)
    inner = target[:, 12:-12, 12:-12]
    # balanced: the grey scene is grey in the teacher and in the mosaic
    assert np.abs(inner[0] - inner[1]).mean() < 0.01 and np.abs(inner[2] - inner[1]).mean() < 0.01
    lay = np.tile(C.XTRANS.array, (record["shape"][0] // 6, record["shape"][1] // 6))
    m = mosaic[0]
    assert abs(m[lay == 0].mean() / m[lay == 1].mean() - 1.0) < 0.02
    ds = build_dataset({"name": "raw_teacher", "root": str(out), "patch_size": 48, "samples_per_epoch": 2}, pattern="xtrans",
                       split="train", seed=0)
    assert ds[0]["cfa"].shape == (1, 48, 48)


def test_version_one_shards_are_refused_with_a_rebuild_hint(tmp_path):
    from demosaic.data.shards import load_manifest

    (tmp_path / "manifest.json").write_text(json.dumps({"format": "demosaic-raw-teacher/1"}))
    with pytest.raises(ConfigError, match="rebuild"):
        load_manifest(tmp_path)


def test_clip_in_row_chunks_equals_the_whole_image_result():
    from demosaic.inference.highlights import clip_in_place, clip_weight

    gen = torch.Generator().manual_seed(0)
    rgb = torch.rand(3, 200, 90, generator=gen) * 2.5
    clipped = torch.rand(200, 90, generator=gen) > 0.995
    clipped[150:] = False  # a clipped-free band: its chunks are skipped
    whole = rgb - clip_weight(clipped, 6)[None] * torch.relu(rgb - 1.0)
    chunked = clip_in_place(rgb.clone(), clipped, 1.0, 6, rows=16)
    torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
    # a wide frame with two small highlights: the chunks work on their columns only
    rgb = torch.rand(3, 120, 700, generator=gen) * 2.5
    clipped = torch.zeros(120, 700, dtype=torch.bool)
    clipped[30:34, 100:104] = True
    clipped[70:72, 640:699] = True
    whole = rgb - clip_weight(clipped, 6)[None] * torch.relu(rgb - 1.0)
    for rows in (16, 32, 200):
        chunked = clip_in_place(rgb.clone(), clipped, 1.0, 6, rows=rows)
        torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-6)
    assert not torch.equal(whole, rgb)  # the highlights did change something


@pytest.mark.parametrize("shape,radius", [((37, 53), 1), ((2, 64, 40), 10), ((30, 9), 12)])
def test_mask_dilation_equals_a_max_filter(shape, radius):
    """The running-sum dilation of the highlight masks equals the square max filter (the
    reference: torch's max_pool2d) bit for bit, at the borders and for radii past the image."""
    import torch.nn.functional as F

    from demosaic.inference.highlights import _dilate

    gen = torch.Generator().manual_seed(radius)
    mask = (torch.rand(shape, generator=gen) > 0.97).float()
    mask[..., 0, -1] = 1.0  # a corner pixel
    k = 2 * radius + 1
    x = mask.reshape(-1, 1, *shape[-2:])
    ref = F.max_pool2d(F.max_pool2d(x, (1, k), 1, (0, radius)), (k, 1), 1, (radius, 0))
    got = _dilate(mask, radius)
    assert torch.equal(got, ref.reshape(shape))
    assert set(got.unique().tolist()) <= {0.0, 1.0}


def test_exr_carries_chromaticities_that_convert_camera_rgb_exactly(lamp_dng, tmp_path):
    """Every EXR carries the standard chromaticities; for camera RGB they are the camera's own
    primaries, so a reader that builds RGB -> XYZ from them gets the same colours as the
    linear-sRGB output."""
    import OpenEXR

    from demosaic.color import SRGB_TO_XYZ, rgb_to_xyz_matrix

    out = {}
    for cs, wb in (("camera", "as_shot"), ("srgb", "as_shot"), ("camera", "none")):
        path = tmp_path / f"{cs}_{wb}.exr"
        infer_file(lamp_dng, path, model="bilinear", device="cpu", float32=True, color_space=cs,
                   white_balance=wb, highlights="none")
        with OpenEXR.File(str(path)) as f:
            chroma = tuple(f.header()["chromaticities"])
        out[cs, wb] = (read_exr(path)[0], chroma)
    srgb_img, srgb_chroma = out["srgb", "as_shot"]
    np.testing.assert_allclose(srgb_chroma, [0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290],
                               atol=1e-6)
    for key in (("camera", "as_shot"), ("camera", "none")):
        img, ch = out[key]
        to_xyz = rgb_to_xyz_matrix([(ch[0], ch[1]), (ch[2], ch[3]), (ch[4], ch[5])], (ch[6], ch[7]))
        # chromaticities fix the matrix up to the white's luminance: compare in xyY-free form
        xyz = np.einsum("ck,khw->chw", to_xyz, img)
        ref = np.einsum("ck,khw->chw", SRGB_TO_XYZ, srgb_img)
        scale = ref[1].mean() / xyz[1].mean()
        np.testing.assert_allclose(xyz * scale, ref, rtol=2e-3, atol=2e-3)
    assert out["camera", "none"][1][6:] != out["camera", "as_shot"][1][6:]  # camera's own white


def test_a_sensor_that_saturates_below_the_stated_white_level_is_still_caught(tmp_path):
    """The lamp clips at 96 % of the white level the file states (as many sensors do): the
    plateau is found and the lamp still comes out neutral; without the plateau rule it would
    keep the (2.1, 1, 1.5) magenta bounds."""
    from demosaic.inference.highlights import clip_threshold

    raw = _lamp_scene() * np.float32(0.96)
    path = write_dng(tmp_path / "sat.dng", _mosaic(raw, C.XTRANS.array), C.XTRANS,
                     black_level=1024, white_level=16383, color_matrix=XT3.xyz_to_cam,
                     as_shot_neutral=XT3.neutral)
    assert clip_threshold(read_raw(path).cfa) == pytest.approx(0.99 * 0.96, rel=1e-3)
    out = tmp_path / "sat.exr"
    infer_file(path, out, model="bilinear", device="cpu", color_space="camera", float32=True)
    lamp = read_exr(out)[0][:, 36:60, 20:40].reshape(3, -1).mean(axis=1)
    assert _ratio(lamp) <= 1.10, lamp
    # a picture that simply has no highlights keeps the nominal threshold
    assert clip_threshold(np.linspace(0.0, 0.8, 10_000, dtype=np.float32)) == 0.99


def _noisy_plateau_scene(iso: float, rng: np.random.Generator,
                         layout: np.ndarray = C.XTRANS.array) -> tuple[np.ndarray, np.ndarray]:
    """(H, W) normalised raw X-Trans mosaic: a lamp clipping every channel with the noise
    added after saturation (cut at white: many lamp pixels read below the threshold), an
    unclipped area at 0.9 of white, a grey wall; and the lamp's ``(H, W)`` bool mask."""
    raw = _lamp_scene()
    raw[:, 24:72, 100:140] = 0.9  # bright but unclipped
    raw[:, 76:, :] = 0.5  # mid-grey: where the noise level is estimated
    clean = _mosaic(raw, layout)
    noisy = np.minimum(NoiseModel().sample(clean, iso, rng), 1.0)
    lamp = np.zeros(clean.shape, bool)
    lamp[24:72, 12:48] = True
    return noisy, lamp


@pytest.mark.parametrize("cfa, iso, covered", [("xtrans", 800.0, 0.995), ("xtrans", 3200.0, 0.995),
                                                ("xtrans", 12800.0, 0.97),
                                                ("bayer_rggb", 3200.0, 0.99)])
def test_noisy_clipped_plateaus_join_the_clip_mask_and_nothing_else_does(cfa, iso, covered, rng):
    from demosaic.inference.highlights import CLIP_THRESHOLD, clip_mask, raw_clip_mask

    layout = C.get_pattern(cfa).array
    noisy, lamp = _noisy_plateau_scene(iso, rng, layout)
    plain = raw_clip_mask(noisy, CLIP_THRESHOLD).numpy()
    mask = clip_mask(noisy, layout).numpy()
    inner = np.zeros_like(lamp)
    inner[28:68, 16:44] = True  # the lamp less the rule's window
    assert plain[inner].mean() < 0.9  # the noise takes many lamp pixels below the threshold
    assert mask[inner].mean() > covered
    # outside the lamp (the 0.9 area included) the mask is the plain threshold's
    np.testing.assert_array_equal(mask[~lamp], plain[~lamp])
    # the listed and the dilated candidate searches agree
    from demosaic.inference.highlights import PLATEAU_MAX_DEPTH, PLATEAU_RADIUS, PLATEAU_SPAN, _candidates

    low = CLIP_THRESHOLD - PLATEAU_SPAN * PLATEAU_MAX_DEPTH
    sat = torch.from_numpy(plain)
    listed = _candidates(noisy, sat, low, PLATEAU_RADIUS)
    dense = _candidates(noisy, sat, low, PLATEAU_RADIUS, sparse_limit=0)
    for a, b in zip(listed, dense):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("iso", [100.0, 3200.0, 12800.0])
def test_noise_at_white_is_estimated_from_the_data(iso, rng):
    """Flat grey under the noise model: the estimate is within 10 % of the model's sigma at
    white; a noise-free gradient gives almost nothing; too few mid-tones give None."""
    from demosaic.inference.highlights import noise_at_white

    a, b = NoiseModel().params(iso)
    flat = NoiseModel().sample(np.full((300, 300), 0.5, np.float32), iso, rng)
    assert noise_at_white(flat, 6) == pytest.approx(float(np.sqrt(a + b * b)), rel=0.1)
    ramp = np.tile(np.linspace(0.3, 0.9, 300, dtype=np.float32), (300, 1))
    assert noise_at_white(ramp, 6) < 1e-4
    assert noise_at_white(np.full((300, 300), 0.05, np.float32), 6) is None


def test_noise_free_near_white_texture_is_not_taken_for_a_noisy_plateau():
    """Clipped and 3 %-below-white pixels interleaved like noise, in a file with no noise
    (a mid-grey ramp shows it): the file's noise level vetoes the plateau rule."""
    from demosaic.inference.highlights import CLIP_THRESHOLD, clip_mask, raw_clip_mask

    raw = np.tile(np.linspace(0.3, 0.9, 240, dtype=np.float32), (3, 96, 1))
    texture = np.where(np.random.default_rng(1).random((48, 48)) < 0.5, 1.0, 0.96)
    raw[:, 24:72, 12:60] = texture.astype(np.float32)
    mosaic = _mosaic(raw, C.XTRANS.array)
    plain = raw_clip_mask(mosaic, CLIP_THRESHOLD)
    assert torch.equal(clip_mask(mosaic, C.XTRANS.array), plain)
    noisy = mosaic + np.random.default_rng(2).normal(0.0, 0.02, mosaic.shape).astype(np.float32)
    noisy = np.minimum(noisy, 1.0)  # the same texture with noise: now the rule may act
    assert clip_mask(noisy, C.XTRANS.array).sum() > raw_clip_mask(noisy, CLIP_THRESHOLD).sum()


def test_a_flat_clipped_lamp_keeps_the_plain_mask_and_its_rim():
    """Clipped areas that read exactly at white (most cameras): the rule adds nothing, even
    next to an area 5 % below white whose pixels are not clipped."""
    from demosaic.inference.highlights import CLIP_THRESHOLD, clip_mask, raw_clip_mask

    raw = _lamp_scene()
    raw[:, 24:72, 48:60] = 0.85  # a rim just outside the lamp
    mosaic = _mosaic(raw, C.XTRANS.array)
    assert torch.equal(clip_mask(mosaic, C.XTRANS.array), raw_clip_mask(mosaic, CLIP_THRESHOLD))


def test_a_noisy_lamp_at_high_iso_comes_out_neutral(tmp_path, rng):
    """Through infer_file: the noisy lamp at ISO 3200 is neutral (channel ratio <= 1.02) with
    ``clip``; the plain threshold mask left its green dark and its colour speckled."""
    noisy, _ = _noisy_plateau_scene(3200.0, rng)
    dn = np.rint(1024 + np.clip(noisy, 0.0, 1.0) * (16383 - 1024)).astype(np.uint16)
    path = write_dng(tmp_path / "noisy_lamp.dng", dn, C.XTRANS, black_level=1024,
                     white_level=16383, color_matrix=XT3.xyz_to_cam, as_shot_neutral=XT3.neutral)
    out = tmp_path / "noisy_lamp.exr"
    infer_file(path, out, model="bilinear", device="cpu", color_space="camera", float32=True)
    lamp = read_exr(out)[0][:, 36:60, 20:40].reshape(3, -1)
    assert _ratio(lamp.mean(axis=1)) <= 1.02, lamp.mean(axis=1)
    assert float((lamp.max(axis=0) - lamp.min(axis=0)).max()) < 0.05


def test_linear_dng_output_develops_in_libraw_like_our_srgb_exr(tmp_path):
    """`demosaic-infer in.dng out.dng` writes a LinearRaw DNG that LibRaw reads as a
    demosaicked raw (white balance and colour matrix still to apply) and develops to the same
    colours as our own linear-sRGB EXR."""
    import rawpy

    from demosaic.cli.infer import main as infer_main
    from demosaic.io.dng import FLIP_TO_TIFF_ORIENTATION

    scene = synthetic_scene(72, 96, seed=2) * np.float32(0.3)
    cam = np.einsum("ck,khw->chw", srgb_to_camera(XT3.xyz_to_cam).astype(np.float32), scene)
    src = write_dng(tmp_path / "src.dng", _mosaic(cam, C.XTRANS.shifted(2, 1)), C.XTRANS.shifted(2, 1),
                    black_level=1024, white_level=16383, color_matrix=XT3.xyz_to_cam,
                    as_shot_neutral=XT3.neutral, orientation=6, margins=(4, 8, 0, 0))
    out_dng, out_exr = tmp_path / "out.dng", tmp_path / "out.exr"
    assert infer_main([str(src), str(out_dng), "--model", "bilinear", "--device", "cpu"]) in (0, None)
    infer_file(src, out_exr, model="bilinear", device="cpu", float32=True, color_space="srgb")
    ours = read_exr(out_exr)[0]
    with rawpy.imread(str(out_dng)) as raw:
        assert raw.raw_type == rawpy.RawType.Stack  # demosaicked data, not a mosaic
        np.testing.assert_allclose(np.asarray(raw.camera_whitebalance)[:3] /
                                   raw.camera_whitebalance[1], 1.0 / XT3.neutral, rtol=1e-4)
        assert raw.sizes.flip == 6  # the source's orientation, pixels as stored
        lib = raw.postprocess(rawpy.Params(
            use_camera_wb=True, output_color=rawpy.ColorSpace.sRGB, gamma=(1.0, 1.0),
            no_auto_bright=True, output_bps=16, adjust_maximum_thr=0.0))
    lib = lib.astype(np.float32).transpose(2, 0, 1) / 65535.0
    assert lib.shape == ours.shape
    inner = (slice(None), slice(8, -8), slice(8, -8))
    np.testing.assert_allclose(lib[inner], np.clip(ours[inner], 0, 1), atol=0.01)
    assert FLIP_TO_TIFF_ORIENTATION[6] == 6
