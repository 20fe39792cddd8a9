"""The packaged noise-aware X-Trans model (``--model xtrans.denoise``) on the user's path:
--denoise is monotone, and the estimated noise level develops a file as well as the true one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from demosaic import cfa, metrics
from demosaic.inference.develop import develop
from demosaic.io.images import read_image_linear
from demosaic.io.raw import read_raw
from demosaic.models.checkpoint import load_model
from demosaic.models.zoo import DENOISE_CHECKPOINTS, SHIPPED_CHECKPOINTS
from demosaic.noise.estimate import estimate_noise
from demosaic.sim.raw_files import write_camera_raw

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "demosaic" / "assets" / "samples"
CPU = torch.device("cpu")


def _develop(path: Path, model: torch.nn.Module, **kw) -> torch.Tensor:
    with torch.inference_mode():
        return develop(read_raw(path), model, device=CPU, highlights="none", **kw)


DENOISE = DENOISE_CHECKPOINTS["xtrans"]


def test_the_denoise_model_takes_the_level_and_the_defaults_do_not():
    assert load_model(DENOISE).noise_input
    assert not any(load_model(p).noise_input for p in SHIPPED_CHECKPOINTS.values())


def _grain(rgb: torch.Tensor) -> float:
    """Standard deviation of ``(3, H, W)`` minus its 9 x 9 box mean (12 px border excluded):
    the output's grain on a smooth scene."""
    kernel = torch.ones(3, 1, 9, 9) / 81
    smooth = F.conv2d(F.pad(rgb[None], (4, 4, 4, 4), mode="reflect"), kernel, groups=3)[0]
    return float((rgb - smooth)[:, 12:-12, 12:-12].std())


def test_denoise_strength_is_monotone_on_a_smooth_iso3200_capture(tmp_path):
    """The output's grain falls as --denoise rises: from 0 (demosaic only: the capture's grain)
    to 1 (the file's level) by the network, above 1 by chroma smoothing; luminance and
    exposure are kept."""
    yy, xx = np.mgrid[0:192, 0:240].astype(np.float32)
    scene = (0.18 + 0.1 * xx / 240)[None] * np.array([1.0, 0.8, 0.6], np.float32)[:, None, None]
    dng, cap = write_camera_raw(tmp_path / "smooth.dng", scene + 0 * yy, cfa.XTRANS, iso=3200)
    model = load_model(DENOISE)
    outs = {s: _develop(dng, model, denoise=s) for s in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 4.0)}
    grain = [_grain(out) for out in outs.values()]
    assert all(a > b for a, b in zip(grain, grain[1:])), grain
    assert grain[4] < 0.9 * grain[0] and grain[-1] < 0.8 * grain[4], grain
    # above 1 the luminance (channel mean) is the network's own, only the colour is smoothed
    torch.testing.assert_close(outs[4.0].mean(0), outs[1.0].mean(0), rtol=0, atol=1e-6)
    # and two stops darker too
    dark, _ = write_camera_raw(tmp_path / "dark.dng", (scene + 0 * yy) / 4, cfa.XTRANS, iso=3200)
    assert _grain(_develop(dark, model, denoise=4.0)) < _grain(_develop(dark, model, denoise=1.0))


def test_chroma_smoothing_keeps_luminance_neutrals_and_exposure():
    from demosaic.inference.chroma import chroma_weight, reduce_chroma_noise

    rgb = torch.rand(3, 40, 50, generator=torch.Generator().manual_seed(0)) * 3.0
    out = reduce_chroma_noise(rgb.clone(), 2.0)
    torch.testing.assert_close(out.mean(0), rgb.mean(0), rtol=0, atol=1e-5)  # luminance kept
    assert out.max() > 2.5  # nothing clamps
    torch.testing.assert_close(reduce_chroma_noise(rgb.clone() * 4, 2.0), out * 4, rtol=1e-5, atol=1e-5)
    grey = rgb.mean(0, keepdim=True).expand(3, -1, -1).clone()
    torch.testing.assert_close(reduce_chroma_noise(grey.clone(), 3.0), grey)  # neutrals untouched
    assert torch.equal(reduce_chroma_noise(rgb.clone(), 1.0), rgb)
    assert chroma_weight(1.0) == 0.0 and 0 < chroma_weight(1.5) < chroma_weight(3.0) < 1.0


@pytest.mark.parametrize("iso", [800, 6400])
def test_the_estimated_level_develops_as_well_as_the_true_one(tmp_path, iso):
    """The camera protocol's capture of a bundled photograph, its level once estimated from the
    raw data (what a RAF gets) and once the simulation's own (the DNG NoiseProfile tag)."""
    rgb = read_image_linear(sorted((SAMPLES / "val").glob("*.png"))[0])[:, :240, :300]
    dng, cap = write_camera_raw(tmp_path / "photo.dng", np.ascontiguousarray(rgb), cfa.XTRANS,
                                iso=iso, noise_profile=True)
    raw = read_raw(dng)
    assert raw.noise_profile is not None and raw.noise_profile.source == "dng"
    estimated = estimate_noise(np.asarray(raw.cfa), np.asarray(raw.layout))
    model = load_model(DENOISE)
    truth = torch.from_numpy(cap.target)
    with torch.inference_mode():
        true_out = develop(raw, model, device=CPU, highlights="none", noise=raw.noise_profile)
        est_out = develop(raw, model, device=CPU, highlights="none", noise=estimated)
    p_true = metrics.psnr(true_out, truth, border=12)
    p_est = metrics.psnr(est_out, truth, border=12)
    assert abs(p_true - p_est) <= 0.1, (p_true, p_est, estimated.describe())


def test_the_denoise_tag_runs_through_demosaic_infer(tmp_path, camera_dngs):
    """``--model xtrans.denoise --denoise 0.5``: the noise-aware packaged model, its level and
    strength in the EXR header; the tag is refused for Bayer data with the fix."""
    import json

    from demosaic.errors import CheckpointError, ConfigError
    from demosaic.io.images import read_exr
    from demosaic.models.zoo import TAGS, resolve_method, shipped_checkpoint

    from conftest import run_infer

    out = tmp_path / "out.exr"
    assert run_infer(camera_dngs[0], out, "--model", "xtrans.denoise", "--denoise", "0.5") == 0
    _, meta = read_exr(out)
    settings = json.loads(meta["demosaic:settings"])
    assert settings["denoise"] == 0.5 and settings["noise_source"] == "estimated"
    assert "denoise_xtrans.pt" in meta["demosaic:checkpoint"]
    assert TAGS["xtrans.denoise"] == ("xtrans", "denoise")
    assert resolve_method(model="xtrans.denoise").demosaicker.noise_input
    with pytest.raises(ConfigError, match="xtrans.denoise demosaics X-Trans"):
        resolve_method(model="xtrans.denoise", cfa="bayer_rggb")
    with pytest.raises(CheckpointError, match="no noise-aware bayer model"):
        shipped_checkpoint("bayer", "denoise")
