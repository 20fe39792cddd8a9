"""Device-side synthetic batches (trainer.device_batches): the same crops, transforms,
exposure, chroma, highlights and mosaics as the per-item dataset, made in batched tensors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from demosaic import cfa
from demosaic.data.device_batches import DeviceSyntheticBatches, transform_grids
from demosaic.data.synthetic import SyntheticDataset
from demosaic.data.transforms import LUMA_709
from demosaic.errors import ConfigError


def _sources(tmp_path: Path, rng: np.random.Generator, sizes=((30, 42), (36, 36))) -> list[Path]:
    """Small 8-bit PNGs of random content (every crop of them is distinguishable)."""
    files = []
    for i, (h, w) in enumerate(sizes):
        path = tmp_path / f"src{i}.png"
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3)).astype(np.uint8)).save(path)
        files.append(path)
    return files


def _dataset(files: list[Path], **kwargs) -> SyntheticDataset:
    args = dict(patch_size=12, samples_per_epoch=8, exposure_range=(1.0, 1.0))
    args.update(kwargs)
    return SyntheticDataset(files, cfa.XTRANS, **args)


def _candidates(ds: SyntheticDataset) -> list[torch.Tensor]:
    """Every aligned crop of every source under every transform, ``(3, P, P)`` each."""
    p, period = ds.patch_size, ds.pattern.period
    out = []
    for i in range(len(ds.files)):
        img = torch.from_numpy(ds.linear_source(i)).permute(2, 0, 1)
        h, w = img.shape[1:]
        for y0 in range(0, h - p + 1, period):
            for x0 in range(0, w - p + 1, period):
                crop = img[:, y0:y0 + p, x0:x0 + p]
                out.extend(cfa.transform_image(crop, k, f) for k, f in cfa.ALL_TRANSFORMS)
    return out


def test_transform_grids_realise_transform_image():
    img = torch.arange(2 * 5 * 5, dtype=torch.float32).reshape(2, 5, 5)
    grids = transform_grids(5)
    for t, (k, flip) in enumerate(cfa.ALL_TRANSFORMS):
        gathered = img[:, grids[t, 0], grids[t, 1]]
        torch.testing.assert_close(gathered, cfa.transform_image(img, k, flip), rtol=0, atol=0)


def test_every_crop_is_an_aligned_transformed_crop_and_a_valid_mosaic(tmp_path, rng):
    ds = _dataset(_sources(tmp_path, rng))
    batches = DeviceSyntheticBatches(ds, 24, "cpu", seed=3)
    batch = next(batches)
    assert batch["cfa"].shape == (24, 1, 12, 12) and batch["target"].shape == (24, 3, 12, 12)
    assert batch["mask"].shape == (24, 3, 12, 12)
    canonical = torch.from_numpy(cfa.mask(cfa.XTRANS, 12, 12))
    assert torch.equal(batch["mask"][5], canonical)  # top-left pixel at phase (0, 0)
    torch.testing.assert_close(batch["cfa"][:, 0], (batch["target"] * canonical).sum(1),
                               rtol=0, atol=0)
    candidates = torch.stack(_candidates(ds))
    used = set()
    for crop in batch["target"]:
        hits = torch.nonzero((candidates == crop).flatten(1).all(1)).flatten()
        assert len(hits) >= 1, "a crop that is no aligned, transformed crop of a source"
        used.add(int(hits[0]) % 8)
    assert len(used) >= 4  # the transforms are drawn, not fixed


def test_no_augmentation_draws_only_unrotated_crops(tmp_path, rng):
    ds = _dataset(_sources(tmp_path, rng), augment=False)
    plain = torch.stack(_candidates(ds)[::8])  # transform 0 of every aligned crop
    for crop in next(DeviceSyntheticBatches(ds, 16, "cpu"))["target"]:
        assert (plain == crop).flatten(1).all(1).any()


def test_exposure_scales_the_crop(tmp_path, rng):
    files = _sources(tmp_path, rng)
    plain = torch.stack(_candidates(_dataset(files)))
    batch = next(DeviceSyntheticBatches(_dataset(files, exposure_range=(2.5, 2.5)), 8, "cpu"))
    for crop in batch["target"]:
        assert torch.isclose(plain, crop[None] / 2.5, rtol=1e-6, atol=1e-7).flatten(1).all(1).any()


def test_highlights_go_above_one_and_are_not_clamped(tmp_path, rng):
    files = _sources(tmp_path, rng)
    ds = _dataset(files, highlight_prob=1.0, highlight_gain=(1.5, 8.0), patch_size=24)
    batch = next(DeviceSyntheticBatches(ds, 32, "cpu", seed=1))
    peaks = batch["target"].amax(dim=(1, 2, 3))
    assert (peaks >= 1.05 - 1e-5).all()  # the brightest spot channel reaches >= 0.7 * 1.5
    assert peaks.max() > 3.0
    off = next(DeviceSyntheticBatches(_dataset(files, highlight_prob=0.0, patch_size=24), 32, "cpu"))
    assert off["target"].max() <= 1.0


def test_saturation_keeps_luminance_and_scales_chroma(tmp_path, rng):
    files = _sources(tmp_path, rng)
    ds = _dataset(files, saturation_prob=1.0, saturation_range=(0.5, 0.5))
    out = next(DeviceSyntheticBatches(ds, 8, "cpu", seed=2))["target"]
    luma = torch.einsum("c,nchw->nhw", torch.from_numpy(LUMA_709), out)
    plain = torch.stack(_candidates(_dataset(files)))
    for crop, y in zip(out, luma):
        # desaturating by 0.5 never clips: undo it and find the source crop
        restored = y[None] + 2.0 * (crop - y[None])
        assert torch.isclose(plain, restored[None], rtol=1e-4, atol=1e-5).flatten(1).all(1).any()


def test_noise_reaches_the_mosaic_only(tmp_path, rng):
    ds = _dataset(_sources(tmp_path, rng), noise=True, noise_shot=(1e-2, 1e-2),
                  noise_read=(1e-2, 1e-2))
    batch = next(DeviceSyntheticBatches(ds, 8, "cpu", seed=4))
    clean = (batch["target"] * batch["mask"]).sum(1, keepdim=True)
    residual = batch["cfa"] - clean
    assert 0.05 < float(residual.std()) < 0.3  # shot (~0.01-0.1) plus read (0.01) noise


def test_streams_are_seeded_by_seed_start_step_and_rank(tmp_path, rng):
    ds = _dataset(_sources(tmp_path, rng), exposure_range=(0.5, 2.0), highlight_prob=0.5)
    first = next(DeviceSyntheticBatches(ds, 6, "cpu", seed=7))["cfa"]
    assert torch.equal(first, next(DeviceSyntheticBatches(ds, 6, "cpu", seed=7))["cfa"])
    for other in ({"seed": 8}, {"seed": 7, "start_step": 100}, {"seed": 7, "rank": 1}):
        assert not torch.equal(first, next(DeviceSyntheticBatches(ds, 6, "cpu", **other))["cfa"])


def test_other_datasets_are_refused_with_the_key_to_change():
    with pytest.raises(ConfigError, match="device_batches"):
        DeviceSyntheticBatches(object(), 4, "cpu")  # type: ignore[arg-type]


def test_camera_simulation_on_the_device_matches_the_dataset_and_the_formula(tmp_path):
    """A flat grey source through the batched camera: balanced grey target, per-channel noise
    variance ``w_c^2 (a x_c + b^2)`` as in the per-item dataset (demosaic.sim.camera)."""
    from demosaic.sim.camera import CameraSimConfig, NoiseModel, body_by_name

    path = tmp_path / "grey.png"
    Image.fromarray(np.full((48, 48, 3), 128, np.uint8)).save(path)
    cam = CameraSimConfig(models=["X-T3"], iso_range=[800.0, 800.0], illuminant_sigma=0.0,
                          wb_error=0.0, bits=[14])
    ds = _dataset([path], patch_size=24, samples_per_epoch=64, camera=cam)
    batch = DeviceSyntheticBatches(ds, 64, "cpu", seed=1).batch()
    grey = float(ds.linear_source(0)[0, 0, 0]) * 0.7
    torch.testing.assert_close(batch["target"], torch.full_like(batch["target"], grey))
    mult = 1.0 / body_by_name("X-T3", "xtrans").neutral
    a, b = NoiseModel().params(800.0)
    lay = torch.from_numpy(np.tile(cfa.XTRANS.array, (4, 4)))
    cpu = torch.stack([ds[i]["cfa"] for i in range(64)])
    for c in range(3):
        expect = mult[c] ** 2 * (a * grey / mult[c] + b * b)
        for mosaics in (batch["cfa"], cpu):
            values = mosaics[:, 0][:, lay == c]
            assert values.mean().item() == pytest.approx(grey, rel=0.01)
            assert values.var().item() == pytest.approx(expect, rel=0.15)
    mixed = _dataset([path], patch_size=24, samples_per_epoch=8,
                     camera=CameraSimConfig(models=["X-T3"], clean_prob=0.5))
    out = DeviceSyntheticBatches(mixed, 200, "cpu", seed=2).batch()
    exact = (out["cfa"] == (out["target"] * out["mask"]).sum(1, keepdim=True)).flatten(1).all(1)
    assert 60 < int(exact.sum()) < 140


def test_numpy_and_torch_twins_draw_from_the_same_distributions(tmp_path, rng):
    """The per-item dataset (numpy) and the device batches (torch) use different generators,
    so their samples differ; their distributions must not. Two-sample Kolmogorov-Smirnov
    tests on per-sample statistics: exposure (log mean of the clean target), chroma (mean
    distance from grey), highlights (peak) and mosaic noise (residual spread)."""
    from scipy.stats import ks_2samp

    files = _sources(tmp_path, rng, sizes=((48, 60), (54, 54), (60, 48)))
    kw = dict(patch_size=12, samples_per_epoch=600, exposure_range=(0.5, 2.0),
              saturation_prob=1.0, saturation_range=(0.5, 2.0), highlight_prob=0.3,
              highlight_gain=(1.5, 8.0), noise=True, noise_shot=(1e-4, 1e-2),
              noise_read=(1e-4, 5e-3))
    ds = _dataset(files, seed=0, **kw)  # seeded: the same samples (and p-values) every run
    items = [ds[i] for i in range(600)]
    np_target = torch.stack([torch.as_tensor(it["target"]) for it in items])
    np_cfa = torch.stack([torch.as_tensor(it["cfa"]) for it in items])
    batches = DeviceSyntheticBatches(_dataset(files, **kw), 100, "cpu", seed=3)
    dev = [next(batches) for _ in range(6)]
    dev_target = torch.cat([b["target"] for b in dev])
    dev_cfa = torch.cat([b["cfa"] for b in dev])
    mask = dev[0]["mask"][:1]

    def stats(target: torch.Tensor, mosaic: torch.Tensor) -> dict[str, np.ndarray]:
        grey = target.mean(1, keepdim=True)
        clean = (target * mask).sum(1, keepdim=True)
        return {"exposure": target.clamp(max=1.0).mean((1, 2, 3)).log().numpy(),
                "chroma": ((target - grey).abs().mean((1, 2, 3)) / grey.mean((1, 2, 3))).log().numpy(),
                "peak": target.amax((1, 2, 3)).numpy(),
                "noise": (mosaic - clean).std((1, 2, 3)).numpy()}

    a, b = stats(np_target, np_cfa), stats(dev_target, dev_cfa)
    for key in a:
        result = ks_2samp(a[key], b[key])
        assert result.pvalue > 1e-3, (key, result)
    assert abs(float(np.mean(a["peak"] > 1.0)) - float(np.mean(b["peak"] > 1.0))) < 0.08
