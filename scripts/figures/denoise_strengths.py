"""The picture of ``--denoise``: one ISO 3200 capture developed at strengths 0, 0.5 and 1 by a
noise-aware model, beside LibRaw's Markesteijn 3-pass, and the residual noise of each.

A validation photograph (CBSD68, default ``../shared/data/cbsd68/102061.png``; or a bundled
sample with ``--image``) is captured by the camera simulation (Fujifilm X-T3 matrix, daylight,
ISO 3200, 14 bits) and written as a camera-realistic DNG without a NoiseProfile tag, so the
level is estimated from the raw data as for a RAF. The model runs through
:func:`demosaic.inference.develop.develop` (``demosaic-infer``'s path, highlights ``clip``) at
each ``--denoise``; LibRaw develops the same file (as-shot white balance). Every panel goes
through the file's camera -> sRGB matrix and the sRGB curve; a crop is shown at 2:1 (nearest
neighbour). The legend gives each panel's linear PSNR against the clean truth in balanced
camera RGB (the camera protocol's metric) over the whole frame.

``--grain`` also prints the output's grain (standard deviation about its 9 x 9 mean, 12 px
border excluded) at strengths 0-4 on a smooth ISO 3200 capture (the scene of
``tests/inference/test_denoise.py``).

Usage::

    python scripts/figures/denoise_strengths.py docs/img/denoise_iso3200.png [--checkpoint PATH] [--grain]
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from pathlib import Path

import numpy as np

DEFAULT_IMAGE = Path("../shared/data/cbsd68/102061.png")


def _panel(rgb_cam: np.ndarray, cam_to_srgb: np.ndarray, box: tuple[int, int, int]) -> np.ndarray:
    """``(3, H, W)`` balanced camera RGB -> an 8-bit sRGB crop ``(2s, 2s, 3)`` (2:1)."""
    from demosaic.color import apply_matrix, linear_to_srgb

    y, x, s = box
    crop = apply_matrix(np.ascontiguousarray(rgb_cam[:, y:y + s, x:x + s]), cam_to_srgb)
    img = (np.clip(linear_to_srgb(np.clip(crop, 0, 1)), 0, 1) * 255 + 0.5).astype(np.uint8)
    return img.transpose(1, 2, 0).repeat(2, axis=0).repeat(2, axis=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=Path)
    parser.add_argument("--checkpoint", default=None,
                        help="default: the packaged noise-aware X-Trans model (xtrans.denoise)")
    parser.add_argument("--image", type=Path, default=DEFAULT_IMAGE)
    parser.add_argument("--iso", type=float, default=3200.0)
    parser.add_argument("--grain", action="store_true", help="print the grain table (above)")
    parser.add_argument("--crop", type=int, nargs=3, default=None, metavar=("Y", "X", "SIZE"),
                        help="crop of the frame shown (default: 150 px at the centre)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch
    from PIL import Image, ImageDraw

    from demosaic import cfa, metrics
    from demosaic.inference.develop import develop
    from demosaic.io.atomic import atomic_path
    from demosaic.io.images import read_image_linear
    from demosaic.io.libraw import develop_raw
    from demosaic.io.raw import read_raw
    from demosaic.models.baselines import LIBRAW_ALGORITHMS
    from demosaic.models.zoo import ModelSource
    from demosaic.noise.source import file_profile
    from demosaic.sim.raw_files import write_camera_raw

    rgb = read_image_linear(args.image)
    h, w = rgb.shape[1] // 6 * 6, rgb.shape[2] // 6 * 6
    rgb = np.ascontiguousarray(rgb[:, :h, :w])
    model = None if args.checkpoint else "xtrans.denoise"
    net = ModelSource(args.checkpoint, model, "cpu", None).for_family("xtrans", args.image)
    s = args.crop[2] if args.crop else 150
    box = tuple(args.crop) if args.crop else ((h - s) // 2, (w - s) // 2, s)
    panels, labels = [], []
    with tempfile.TemporaryDirectory() as tmp:
        dng, cap = write_camera_raw(Path(tmp) / "scene.dng", rgb, cfa.XTRANS, iso=args.iso,
                                    body="X-T3", rng=np.random.default_rng(0))
        raw = read_raw(dng)
        profile = file_profile(raw)
        truth = torch.from_numpy(cap.target)
        runs = [(f"--denoise {d:g}", d) for d in (0.0, 0.5, 1.0)]
        for label, strength in runs:
            with torch.inference_mode():
                out = develop(raw, net, device=torch.device("cpu"), highlights="clip",
                              noise=profile, denoise=strength).numpy()
            panels.append(_panel(out, raw.cam_to_srgb, box))
            labels.append(f"{label}: {metrics.psnr(torch.from_numpy(out), truth, border=12):.2f} dB")
        lib = develop_raw(raw, LIBRAW_ALGORITHMS["markesteijn3"][0],
                          [float(v) for v in raw.wb_multipliers])
        panels.append(_panel(lib, raw.cam_to_srgb, box))
        labels.append(f"Markesteijn 3-pass: {metrics.psnr(torch.from_numpy(lib), truth, border=12):.2f} dB")
    gap, band = 6, 22
    side = panels[0].shape[0]
    sheet = Image.new("RGB", (len(panels) * (side + gap) - gap, side + band), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (panel, label) in enumerate(zip(panels, labels)):
        sheet.paste(Image.fromarray(panel), (i * (side + gap), band))
        draw.text((i * (side + gap) + 4, 5), label, fill="black")
    with atomic_path(args.out) as out:
        sheet.save(out, format="PNG")
    print(f"{args.out}: ISO {args.iso:g}, level {profile.describe()}; " + "; ".join(labels))
    if args.grain:
        print_grain(net, args.iso)


def print_grain(net, iso: float) -> None:
    """The ``--grain`` table: strength -> the output's grain on a smooth capture."""
    import tempfile

    import torch
    import torch.nn.functional as F

    from demosaic import cfa
    from demosaic.inference.develop import develop
    from demosaic.io.raw import read_raw
    from demosaic.sim.raw_files import write_camera_raw

    yy, xx = np.mgrid[0:192, 0:240].astype(np.float32)
    scene = (0.18 + 0.1 * xx / 240)[None] * np.array([1.0, 0.8, 0.6], np.float32)[:, None, None]
    kernel = torch.ones(3, 1, 9, 9) / 81
    print("| --denoise | grain |\n|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        dng, _ = write_camera_raw(Path(tmp) / "smooth.dng", scene + 0 * yy, cfa.XTRANS, iso=iso)
        raw = read_raw(dng)
        for strength in (0.0, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0):
            with torch.inference_mode():
                out = develop(raw, net, device=torch.device("cpu"), highlights="none",
                              denoise=strength)
                smooth = F.conv2d(F.pad(out[None], (4, 4, 4, 4), mode="reflect"), kernel, groups=3)[0]
            print(f"| {strength:g} | {float((out - smooth)[:, 12:-12, 12:-12].std()):.5f} |")


if __name__ == "__main__":
    main()
