#!/usr/bin/env python
"""Smoke test of training and inference on one device, checked against the CPU (docs/MAC.md).

Meant for an Apple Silicon Mac (``--device mps``, the default); any device works, and
``--device cpu`` (the CPU against itself) is what the test suite runs. Usage::

    python scripts/checks/mps_smoke.py                       # mps, 20 steps, temporary folder
    python scripts/checks/mps_smoke.py --device mps --steps 50 --work-dir /tmp/smoke --amp

Three checks, each printed with its numbers; the last line is ``PASS`` (exit 0) or ``FAIL``
(exit 1):

1. **train**: ``demosaic-train +experiment=quickstart`` for ``--steps`` steps on the device,
   with the paths that differ on MPS switched on: device batches with the camera simulation
   (the Poisson sampler of :mod:`demosaic.data.poisson`), EMA, and the SSIM and MS-SSIM loss
   terms; it must finish and write a checkpoint with a finite validation PSNR.
2. **loss parity**: the trained network's loss (L1, SSIM, MS-SSIM, gradient terms) and its
   gradients on one fixed batch (a crop of a bundled validation image), on the device and on
   the CPU: relative differences within ``--loss-tolerance`` (1e-4 for the loss, 10x that
   for the gradients' norm of differences).
3. **inference**: ``demosaic-infer --checkpoint <trained> --device <device> --float`` on a DNG
   made from a bundled image (X-Trans, 481 x 321 px, in 144 px tiles so the stitching runs),
   and the same on the CPU: the outputs (linear, white = 1) differ by at most ``--tolerance``
   (default 2e-3) anywhere and by at most a twentieth of it on average. With ``--amp`` the
   device runs float16 autocast and the tolerance is ``--amp-tolerance`` (default 3e-2).

The tolerances hold float32 rounding differences between devices (measured on the CPU, a
device against itself differs by 0); the MPS defects this guards against (a convolution
reading a wrong weight, a lost copy into a slice) change outputs by 1e-1 or more.
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from demosaic import cfa
from demosaic.data.common import SAMPLES_DIR
from demosaic.devices import resolve_device
from demosaic.models.checkpoint import load_checkpoint, load_model
from demosaic.io.dng import write_dng
from demosaic.io.images import read_exr, read_image_linear
from demosaic.losses import build_loss

LOSS_TERMS = {"l1": 0.4, "ssim": 0.3, "msssim": 0.2, "gradient": 0.1}


def _run(cmd: list[str], work: Path) -> None:
    """Run a command; on failure print its output's tail and raise."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(cmd, cwd=work, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.stdout.write(out.stdout[-3000:] + out.stderr[-5000:])
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited with {out.returncode}")


def train(device: str, steps: int, work: Path, precision: str) -> Path:
    """Check 1: a short training run on ``device``; returns its checkpoint."""
    _run([sys.executable, "-m", "demosaic.cli.train", "+experiment=quickstart",
          f"trainer.device={device}", f"trainer.precision={precision}",
          f"trainer.max_steps={steps}", "trainer.batch_size=4", "trainer.num_workers=0",
          "trainer.device_batches=true", "trainer.ema_decay=0.9",
          f"++loss.terms.ssim={LOSS_TERMS['ssim']}", f"++loss.terms.msssim={LOSS_TERMS['msssim']}",
          "dataset.train.patch_size=48", "++dataset.val.max_size=96", "trainer.val_max_images=1",
          "trainer.log_every=1", f"trainer.val_every={steps}", f"trainer.save_every={steps}",
          f"trainer.snapshot_every={steps}", "trainer.snapshot_crop=48",
          "trainer.optim.warmup_steps=1", f"trainer.checkpoint_dir={work / 'ckpt'}",
          f"trainer.log_dir={work / 'logs'}", "trainer.run_name=mps_smoke",
          f"hydra.run.dir={work / 'hydra'}"], work)
    path = work / "ckpt" / "mps_smoke" / "best.pt"
    psnr = float((load_checkpoint(path).get("metrics") or {}).get("psnr", math.nan))
    print(f"train: {steps} steps on {device}, checkpoint {path}, validation PSNR {psnr:.2f} dB")
    if not math.isfinite(psnr):
        raise RuntimeError(f"training on {device} gave a non-finite validation PSNR")
    return path


def _loss_and_grads(ckpt: Path, device: torch.device, batch: dict[str, torch.Tensor]
                    ) -> tuple[float, torch.Tensor]:
    """The loss and the flattened gradient of the network of ``ckpt`` on ``device``."""
    model = load_model(ckpt, device).train()
    loss_fn = build_loss({"space": "linear", "terms": LOSS_TERMS})
    pred = model(batch["cfa"].to(device))
    loss, _ = loss_fn(pred, batch["target"].to(device))
    loss.backward()
    grads = torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None])
    return float(loss.detach().cpu()), grads.cpu()


def loss_parity(ckpt: Path, device: torch.device, tolerance: float) -> bool:
    """Check 2: loss and gradients on ``device`` against the CPU."""
    rgb = torch.from_numpy(read_image_linear(SAMPLES_DIR / "val" / "145086.png"))
    target = rgb[:, 60:156, 120:216].contiguous()[None]  # (1, 3, 96, 96)
    batch = {"cfa": cfa.mosaic(target[0], cfa.XTRANS)[None], "target": target}
    loss_cpu, grads_cpu = _loss_and_grads(ckpt, torch.device("cpu"), batch)
    loss_dev, grads_dev = _loss_and_grads(ckpt, device, batch)
    loss_rel = abs(loss_dev - loss_cpu) / max(abs(loss_cpu), 1e-12)
    grad_rel = float((grads_dev - grads_cpu).norm() / grads_cpu.norm().clamp_min(1e-12))
    ok = loss_rel <= tolerance and grad_rel <= 10 * tolerance
    print(f"loss parity: loss {loss_dev:.6g} on {device} vs {loss_cpu:.6g} on cpu (relative "
          f"{loss_rel:.2e}, limit {tolerance:.0e}); gradients relative {grad_rel:.2e} "
          f"(limit {10 * tolerance:.0e}): {'ok' if ok else 'FAIL'}")
    return ok


def sample_dng(work: Path) -> Path:
    """A bundled validation image as an X-Trans DNG (12-bit, non-canonical phase).

    A plain mosaic (no camera simulation: no noise, no colour matrix), on purpose and not
    :func:`demosaic.sim.raw_files.write_camera_raw`: the check compares one device with the
    CPU on the same file, and its tolerances were measured on this one.
    """
    rgb = read_image_linear(SAMPLES_DIR / "val" / "102061.png")  # (3, H, W) linear
    layout = cfa.XTRANS.shifted(2, 3)
    h, w = rgb.shape[1:]
    idx = np.tile(layout, (h // 6 + 1, w // 6 + 1))[:h, :w]
    mosaic = np.take_along_axis(rgb, idx[None], 0)[0] * 0.8
    return write_dng(work / "sample.dng", mosaic, layout, black_level=256, white_level=4095,
                     as_shot_neutral=(0.5, 1.0, 0.625))


def infer(ckpt: Path, dng: Path, device: str, work: Path, amp: bool) -> np.ndarray:
    """``demosaic-infer`` on ``dng`` with ``device``; returns the float32 EXR's pixels."""
    out = work / f"out_{device.replace(':', '_')}{'_amp' if amp else ''}.exr"
    _run([sys.executable, "-m", "demosaic.cli.infer", str(dng), str(out), "--checkpoint",
          str(ckpt), "--device", device, "--float", "--tile", "144", "--no-progress",
          "--overwrite", *(["--amp"] if amp else [])], work)
    return read_exr(out)[0]


def inference_parity(ckpt: Path, device: str, work: Path, amp: bool, tolerance: float) -> bool:
    """Check 3: ``demosaic-infer`` on ``device`` against the CPU."""
    dng = sample_dng(work)
    ref = infer(ckpt, dng, "cpu", work, amp=False)
    got = infer(ckpt, dng, device, work, amp)
    diff = np.abs(got.astype(np.float64) - ref)
    worst, mean = float(diff.max()), float(diff.mean())
    ok = got.shape == ref.shape and worst <= tolerance and mean <= tolerance / 20
    print(f"inference: {device}{' --amp' if amp else ''} vs cpu on {dng.name} {ref.shape}: max "
          f"|diff| {worst:.2e} (limit {tolerance:.0e}), mean {mean:.2e} (limit "
          f"{tolerance / 20:.0e}): {'ok' if ok else 'FAIL'}")
    return ok


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="mps", help="device to check against the CPU (mps)")
    p.add_argument("--steps", type=int, default=20, help="training steps")
    p.add_argument("--precision", default="fp32", help="trainer.precision (fp32; fp16 to try it)")
    p.add_argument("--amp", action="store_true", help="run the device's inference with --amp")
    p.add_argument("--tolerance", type=float, default=2e-3, help="max |diff| of inference")
    p.add_argument("--amp-tolerance", type=float, default=3e-2, help="the same with --amp")
    p.add_argument("--loss-tolerance", type=float, default=1e-4, help="relative loss difference")
    p.add_argument("--work-dir", type=Path, default=None, help="folder for outputs (default: temporary)")
    args = p.parse_args(argv)
    device = resolve_device(args.device, key="--device")
    print(f"torch {torch.__version__}, device {device}, MPS available: "
          f"{torch.backends.mps.is_available()}")
    with tempfile.TemporaryDirectory() as tmp:
        work = (args.work_dir or Path(tmp)).resolve()
        work.mkdir(parents=True, exist_ok=True)
        ckpt = train(str(device), args.steps, work, args.precision)
        ok = loss_parity(ckpt, device, args.loss_tolerance)
        tol = args.amp_tolerance if args.amp else args.tolerance
        ok = inference_parity(ckpt, str(device), work, args.amp, tol) and ok
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
