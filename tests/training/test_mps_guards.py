"""Apple Silicon (MPS) readiness, checked on the CPU: no Mac runs these tests.

- The MPS code paths run on the CPU under :class:`mps_guard.MPSGuard` (rules in
  ``tests/training/mps_guard.py``: ops without MPS kernels, convolutions with non-contiguous weights,
  float64 made from float32 tensors, a copy changing device and dtype at once): a few training
  steps (DataLoader and device batches, camera simulation and noise, EMA, SSIM and MS-SSIM,
  the adversarial and distillation terms), a tiled ``develop`` and an evaluation.
- The exact Poisson sampler used on MPS (:mod:`demosaic.data.poisson`) against the law.
- The refusals, with the device mocked: DDP on MPS, MPS and ``--amp`` on an old torch, fp16
  training on MPS with a torch lacking its grad scaler.
- ``scripts/checks/mps_smoke.py`` (the Mac smoke test of docs/MAC.md) on the CPU.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from conftest import compose_train, tiny_training
from mps_guard import MPSGuard, emulate_mps

ROOT = Path(__file__).resolve().parents[2]


def tiny(tmp_path: Path, steps: int = 2) -> list[str]:
    """A few CPU steps of the quickstart experiment on 48 px crops, writing under tmp_path."""
    return ["+experiment=quickstart", *tiny_training(tmp_path, steps), "dataset.train.patch_size=48"]


def _assert_clean(guard: MPSGuard) -> None:
    assert not guard.violations, "MPS guard:\n" + guard.report()


@pytest.fixture(scope="module")
def teacher(tmp_path_factory) -> Path:
    """A checkpoint of the quickstart model, the distillation teacher."""
    from demosaic.models.checkpoint import make_checkpoint, save_checkpoint
    from demosaic.models import create_model

    cfg = compose_train(["+experiment=quickstart"])
    model_cfg = OmegaConf.to_container(cfg.model)
    name = model_cfg.pop("name")
    torch.manual_seed(1)
    model = create_model(name, **model_cfg)
    path = tmp_path_factory.mktemp("teacher") / "teacher.pt"
    save_checkpoint(make_checkpoint(model, name, model_cfg, cfa=model.pattern.name, step=1), path)
    return path


# --------------------------------------------------------------------------------------
# The guard itself
# --------------------------------------------------------------------------------------


def test_the_guard_flags_each_rule_and_lets_the_fixes_pass():
    import torch.nn.functional as F

    x = torch.rand(1, 3, 16, 16)
    g = torch.rand(5)
    flagged = ["no-mps-kernel", "non-contiguous-weight", "float64", "device-and-dtype-copy",
               "float64"]
    for mode in (torch.no_grad, torch.inference_mode):  # the latter dispatches conv2d, to
        with MPSGuard() as guard, mode():
            torch.poisson(torch.full((4,), 3.0))
            F.conv2d(x, g.view(1, 1, 1, 5).expand(3, 1, 1, 5), groups=3)
            x.double()
            x.to("cpu", torch.float64)
        assert [v.rule for v in guard.violations] == flagged, mode
    with MPSGuard() as guard:
        F.conv2d(x, g.view(1, 1, 1, 5).expand(3, 1, 1, 5).contiguous(), groups=3)
        with guard.host():
            x.cpu().to(torch.float64)
        torch.arange(3, dtype=torch.float64) * 2.0
    assert guard.violations == []


# --------------------------------------------------------------------------------------
# Guarded runs
# --------------------------------------------------------------------------------------


def test_training_steps_take_only_mps_safe_ops(tmp_path, monkeypatch, teacher):
    """DataLoader batches with the camera simulation, EMA, SSIM and MS-SSIM terms, the
    adversarial term (spectral norm) and distillation, through validation and saving."""
    from demosaic.cli.train import run_training

    cfg = compose_train([*tiny(tmp_path), "trainer.ema_decay=0.9", "++loss.terms.ssim=0.3",
                         "++loss.terms.msssim=0.2", "trainer.adversarial.weight=0.01",
                         "trainer.adversarial.start_step=0", f"trainer.distill.teacher={teacher}"])
    with emulate_mps(monkeypatch) as guard:
        result = run_training(cfg)
    assert result.step == 2
    assert {"aten.convolution_backward", "aten._foreach_lerp_", "aten.dot"} <= guard.ops
    _assert_clean(guard)


@pytest.mark.parametrize("data", [
    [],  # the camera simulation (on by default): its Poisson shot noise
    ["dataset.train.camera.enabled=false", "dataset.train.noise=true",
     "dataset.train.highlight_prob=0.5", "++dataset.train.saturation_prob=0.5"],
], ids=["camera", "noise"])
def test_device_batches_take_only_mps_safe_ops(tmp_path, monkeypatch, data):
    from demosaic.cli.train import run_training

    cfg = compose_train([*tiny(tmp_path), "trainer.device_batches=true", *data])
    with emulate_mps(monkeypatch) as guard:
        result = run_training(cfg)
    assert result.step == 2
    _assert_clean(guard)


def test_tiled_develop_takes_only_mps_safe_ops(monkeypatch, make_dng):
    from demosaic.cfa import XTRANS
    from demosaic.inference.develop import develop
    from demosaic.io.raw import read_raw
    from demosaic.models import create_model

    path, _ = make_dng(XTRANS.shifted(2, 3), size=(84, 96), black_level=512, white_level=4095,
                       as_shot_neutral=(0.5, 1.0, 0.625))
    raw = read_raw(path)
    torch.manual_seed(0)
    net = create_model("unet", cfa="xtrans", width=8, depth=1).eval()
    expected = develop(raw, net, device=torch.device("cpu"), tile=36, overlap=6)
    with emulate_mps(monkeypatch) as guard:
        got = develop(raw, net, device=torch.device("cpu"), tile=36, overlap=6)
    torch.testing.assert_close(got, expected, rtol=0, atol=0)
    assert "aten.conv2d" in guard.ops  # inference mode: dispatched without decomposing
    _assert_clean(guard)


def test_evaluation_takes_only_mps_safe_ops(monkeypatch):
    from demosaic.data import DATASETS
    from demosaic.evaluation.clean import evaluate, images_from_dataset
    from demosaic.models import create_model

    torch.manual_seed(0)
    net = create_model("unet", cfa="xtrans", width=8, depth=1)
    val = DATASETS.build({"name": "folder", "root": None, "max_size": 96}, where="dataset.val",
                         pattern="xtrans", split="val", seed=0)
    with emulate_mps(monkeypatch) as guard:
        result = evaluate(net, images_from_dataset(val), device="cpu", hdr_probe_size=48)
    assert math.isfinite(result.mean["psnr"])
    _assert_clean(guard)


# --------------------------------------------------------------------------------------
# The Poisson sampler of the MPS path
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [0.0, 0.02, 0.4, 2.5, 9.9, 10.0, 13.0, 80.0, 3000.0, 4e5])
def test_the_mps_poisson_sampler_has_poisson_moments(rate):
    from demosaic.data.poisson import poisson

    n = 200_000
    g = torch.Generator().manual_seed(int(rate * 7) + 1)
    x = poisson(torch.full((n,), rate), g).double()
    assert torch.equal(x, x.round()) and bool((x >= 0).all())
    if rate == 0:
        assert bool((x == 0).all())
        return
    mean, var = float(x.mean()), float(x.var())
    # 5 standard errors: Var(mean) = rate / n, Var(sample variance) ~ (rate + 2 rate^2) / n
    assert abs(mean - rate) < 5 * math.sqrt(rate / n)
    assert abs(var - rate) < 5 * math.sqrt((rate + 2 * rate**2) / n)
    if rate <= 100:  # the third central moment of a Poisson law is its rate (a Gaussian's is 0)
        m3 = float(((x - mean) ** 3).mean())
        se = math.sqrt((rate + 12 * rate**2 + 6 * rate**3) / n)  # ~ sqrt(mu6 - mu3^2) / sqrt(n)
        assert abs(m3 - rate) < 6 * se


@pytest.mark.parametrize("rate", [0.7, 6.0, 10.0, 37.0])
def test_the_mps_poisson_sampler_matches_the_pmf(rate):
    """Pearson's chi-square over the bins holding >= 20 expected draws (plus both tails)."""
    from demosaic.data.poisson import poisson

    n = 100_000
    x = poisson(torch.full((n,), rate), torch.Generator().manual_seed(3)).long().numpy()
    k = np.arange(int(rate + 12 * math.sqrt(rate) + 12))
    pmf = np.exp(k * math.log(rate) - rate - np.array([math.lgamma(i + 1.0) for i in k]))
    keep = n * pmf >= 20
    lo, hi = k[keep][0], k[keep][-1]
    observed = [np.sum(x < lo)] + [np.sum(x == i) for i in range(lo, hi + 1)] + [np.sum(x > hi)]
    expected = n * np.concatenate([[pmf[:lo].sum()], pmf[lo:hi + 1], [1 - pmf[:hi + 1].sum()]])
    used = expected > 0
    chi2 = float(np.sum((np.array(observed)[used] - expected[used]) ** 2 / expected[used]))
    dof = int(used.sum()) - 1
    assert chi2 < dof + 5 * math.sqrt(2 * dof), (chi2, dof)


def test_device_batches_draw_poisson_noise_by_the_mps_sampler_there(tmp_path, monkeypatch, rng):
    """On the MPS path the noise has the variance of the CPU path's (a x + b^2 per pixel)."""
    from PIL import Image

    from demosaic import cfa, devices
    from demosaic.data.device_batches import DeviceSyntheticBatches
    from demosaic.data.synthetic import SyntheticDataset

    path = tmp_path / "flat.png"
    Image.fromarray(np.full((48, 48, 3), 140, dtype=np.uint8)).save(path)
    ds = SyntheticDataset([path], cfa.XTRANS, patch_size=24, samples_per_epoch=8,
                          exposure_range=(1.0, 1.0), noise=True, noise_shot=(0.01, 0.01),
                          noise_read=(1e-4, 1e-4), camera=None)
    spread = {}
    for emulate in (False, True):
        monkeypatch.setattr(devices, "_MPS_PATHS_ON_CPU", emulate)
        batch = next(DeviceSyntheticBatches(ds, 256, "cpu", seed=1))
        spread[emulate] = float((batch["cfa"] - (batch["target"] * batch["mask"]).sum(1, keepdim=True)).var())
    level = float(ds.linear_source(0).mean())
    assert spread[True] == pytest.approx(0.01 * level, rel=0.05)
    assert spread[True] == pytest.approx(spread[False], rel=0.05)


# --------------------------------------------------------------------------------------
# Refusals, with the device mocked
# --------------------------------------------------------------------------------------


def test_ddp_on_mps_is_refused(monkeypatch):
    from demosaic.training.runtime import init_distributed
    from demosaic.errors import ConfigError

    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ConfigError, match="not supported on MPS.*173808"):
        init_distributed(torch.device("mps"))


def test_auto_under_torchrun_never_picks_mps(monkeypatch):
    from demosaic.devices import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto").type == "mps"
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert resolve_device("auto").type == "cpu"


def test_mps_on_an_old_torch_is_refused(monkeypatch):
    from demosaic import devices
    from demosaic.errors import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch, "__version__", "2.4.1")
    assert devices.torch_version() == (2, 4)
    with pytest.raises(ConfigError, match=r"trainer.device=mps needs torch >= 2.5 \(installed: 2.4.1\)"):
        devices.resolve_device("mps", key="trainer.device")
    assert devices.resolve_device("auto").type == "cpu"  # auto falls back, with a warning
    monkeypatch.setattr(torch, "__version__", "2.5.0")
    assert devices.resolve_device("mps").type == "mps"


def test_amp_on_mps_with_an_old_torch_is_refused(monkeypatch):
    from demosaic.inference.tiling import check_amp
    from demosaic.errors import ConfigError

    mps = torch.device("mps")
    monkeypatch.setattr(torch, "__version__", "2.4.0")
    with pytest.raises(ConfigError, match=r"--amp on mps needs torch >= 2.5"):
        check_amp(mps, True)
    check_amp(mps, False)
    check_amp(torch.device("cuda"), True)
    monkeypatch.setattr(torch, "__version__", "2.5.1")
    check_amp(mps, True)


def test_fp16_training_on_mps_is_opt_in_and_needs_its_grad_scaler(monkeypatch):
    from demosaic.training.runtime import autocast_for
    from demosaic.errors import ConfigError

    mps = torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    factory, scaler = autocast_for(mps, "auto")
    assert scaler is None and factory is not None  # fp32 by default on MPS
    with pytest.raises(ConfigError, match="trainer.precision=bf16 needs CUDA"):
        autocast_for(mps, "bf16")
    monkeypatch.setattr(torch, "__version__", "2.7.1")
    with pytest.raises(ConfigError, match=r"fp16 on MPS needs torch >= 2.8"):
        autocast_for(mps, "fp16")


def test_spawned_dataloader_workers_load_their_own_images(tmp_path, monkeypatch):
    """macOS spawns workers: the main process does not fill the image cache (each worker
    would get a pickled copy of it); forked workers share the one the main process fills."""
    from demosaic.cli.train import run_training
    from demosaic.data.synthetic import SyntheticDataset
    from demosaic.training import runtime

    monkeypatch.setattr(runtime.multiprocessing, "get_start_method", lambda allow_none=False: None)
    monkeypatch.setattr(runtime.multiprocessing, "get_all_start_methods", lambda: ["spawn", "fork"])
    assert runtime.worker_start_method() == "spawn"
    preloaded = []
    monkeypatch.setattr(SyntheticDataset, "preload", lambda self: preloaded.append(self))
    run_training(compose_train([*tiny(tmp_path, steps=1), "trainer.num_workers=1"]))
    assert preloaded == []
    monkeypatch.setattr(runtime.multiprocessing, "get_start_method", lambda allow_none=False: "fork")
    assert runtime.worker_start_method() == "fork"


def test_synchronize_waits_on_cuda_and_mps_only(monkeypatch):
    from demosaic import devices

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda d=None: calls.append(("cuda", d)))
    monkeypatch.setattr(torch.mps, "synchronize", lambda: calls.append(("mps", None)))
    for name in ("cpu", "cuda:0", "mps"):
        devices.synchronize(name)
    assert [c[0] for c in calls] == ["cuda", "mps"]


# --------------------------------------------------------------------------------------
# The Mac smoke test, run on the CPU
# --------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_mps_smoke_script_runs_on_the_cpu(tmp_path):
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "checks" / "mps_smoke.py"), "--device", "cpu",
                          "--steps", "2", "--work-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "PASS" in out.stdout
