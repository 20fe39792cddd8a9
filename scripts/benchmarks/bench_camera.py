#!/usr/bin/env python
"""Benchmark methods under the camera protocol of ``demosaic-eval`` (simulated raw files).

Each (method, set, ISO) is evaluated by :func:`demosaic.evaluation.camera.evaluate_camera`
exactly as ``demosaic-eval baseline=<method> evalset=<set> protocol=camera iso=<ISO>`` does,
on DNGs shared by all methods (``--out``/raws/<set>_iso<ISO>/). Results are cached per
(method, set, ISO) in ``--out``/results/<method>/<set>_iso<ISO>/results.json, so methods can
be run in separate invocations::

    python scripts/benchmarks/bench_camera.py --methods markesteijn3 markesteijn1 vng demosaicnet
    python scripts/benchmarks/bench_camera.py --methods default            # the packaged model, later
    python scripts/benchmarks/bench_camera.py --methods default --checkpoint best.pt --name v5  # a checkpoint as "v5"
    python scripts/benchmarks/bench_camera.py --table-only                 # tables from the cached JSONs
    python scripts/benchmarks/bench_camera.py --picture docs/img/camera_crops.png

Tables (``--out``/bench_camera.md, also printed): rows = methods, columns = set x ISO; PSNR
in balanced camera RGB (the protocol's ``psnr``), then sRGB PSNR, periodic error (8-bit
levels) and false-colour score (on the body-matrix sRGB view).

``--picture PATH``: the 3 96-px regions of kodak24 with the largest error of LibRaw
Markesteijn 3-pass at ISO 800 (from its cached result, computed if missing), shown as
truth | markesteijn3 | demosaicnet | the model, sRGB via the camera->sRGB matrix,
magnified 2x, one row per region.

Every result JSON records the command line, the machine and the date (``info.bench``).
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from _bench import machine

from demosaic.cli.common import setup_logging
from demosaic.errors import DemosaicError
from demosaic.io.atomic import atomic_path

log = logging.getLogger("bench_camera")

DEFAULT_METHODS = ["default", "markesteijn3", "markesteijn1", "vng", "demosaicnet"]
PICTURE_METHODS = ["markesteijn3", "demosaicnet"]  # then the model
PICTURE_SET, PICTURE_ISO, PICTURE_CROPS, PICTURE_SIZE, PICTURE_ZOOM = "kodak24", 800.0, 3, 96, 2


def iso_tag(iso: float) -> str:
    return f"{float(iso):g}"


def result_dir(out: Path, method: str, set_name: str, iso: float) -> Path:
    return out / "results" / method / f"{set_name}_iso{iso_tag(iso)}"


def raw_cache(out: Path, set_name: str, iso: float) -> Path:
    return out / "raws" / f"{set_name}_iso{iso_tag(iso)}"


def load_images(data_root: Path, set_name: str, cfa: str, max_images: int | None) -> list[Any]:
    from demosaic.data import DATASETS
    from demosaic.evaluation.clean import images_from_dataset

    spec = {"name": "folder", "root": str(data_root / set_name), "mode": "crop", "max_images": max_images}
    ds = DATASETS.build(spec, where="bench", pattern=cfa, split="val", seed=0)
    return list(images_from_dataset(ds))


def conditions(args: argparse.Namespace) -> Any:
    """The :class:`~demosaic.evaluation.capture.CaptureConditions` of the arguments."""
    from demosaic.evaluation.capture import CaptureConditions

    return CaptureConditions(illuminant=args.illuminant, wb_error=args.wb_error, bits=args.bits,
                             exposure=args.exposure)


def build(name: str, args: argparse.Namespace) -> tuple[Any, str, dict[str, Any]]:
    """``(method, kind, info)`` of a method name (``model_name`` = the model's own name)."""
    from demosaic.models.zoo import ENSEMBLES, resolve_method

    if name == args.model_name:  # the checkpoint, or the shipped model of --cfa's family
        m = resolve_method(checkpoint=args.checkpoint, cfa=args.cfa, device=args.device)
    elif name in ENSEMBLES:  # "quality": the shipped model as a geometric self-ensemble
        m = resolve_method(model=name, cfa=args.cfa, device=args.device)
    else:
        m = resolve_method(baseline=name, cfa=args.cfa, device=args.device)
    return m.demosaicker, m.kind, m.info


def run_one(name: str, set_name: str, iso: float, images: list[Any], args: argparse.Namespace,
            bench_info: dict[str, Any]) -> dict[str, Any] | None:
    """Evaluate one (method, set, ISO) unless cached; returns the results dict."""
    from demosaic.evaluation.camera import evaluate_camera
    from demosaic.evaluation.report import ReportSpec

    out = Path(args.out)
    folder = result_dir(out, name, set_name, iso)
    js = folder / "results.json"
    if js.is_file() and not args.force:
        log.info("%-14s %-9s ISO %-5s cached (%s)", name, set_name, iso_tag(iso), js)
        return json.loads(js.read_text(encoding="utf-8"))
    method, kind, info = build(name, args)
    t0 = time.perf_counter()
    report = ReportSpec(evalset=set_name, name=name, kind=kind, worst_crops=2, out_dir=folder,
                        progress=False, info={**info, "bench": bench_info})
    res = evaluate_camera(method, images, iso=iso, camera=args.camera, seed=args.seed,
                          conditions=conditions(args), highlights=args.highlights,
                          cache_dir=raw_cache(out, set_name, iso), border=12, report=report,
                          device=args.device)
    log.info("%-14s %-9s ISO %-5s PSNR %.3f  sRGB %.3f  levels %.2f  FC %.3g  (%.0f s)", name,
             set_name, iso_tag(iso), res.mean["psnr"], res.mean["psnr_srgb"],
             res.mean.get("periodic_levels", float("nan")), res.mean.get("false_colour_score", float("nan")),
             time.perf_counter() - t0)
    return res.to_dict()


# --------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------


def collect(out: Path) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Every cached result: ``(method, set, iso_tag) -> results dict``."""
    found = {}
    for js in sorted((out / "results").glob("*/*/results.json")):
        try:
            data = json.loads(js.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable %s: %s", js, exc)
            continue
        info = data.get("info", {})
        found[(data["method"], data["evalset"], iso_tag(info.get("iso", 0)))] = data
    return found


def render_tables(found: dict[tuple[str, str, str], dict[str, Any]], order: list[str]) -> str:
    from demosaic.evaluation.report import fmt_number, markdown_table

    if not found:
        return "# Camera protocol benchmark\n\nNo cached results yet.\n"
    methods = [m for m in order if any(k[0] == m for k in found)]
    methods += sorted({k[0] for k in found} - set(methods))
    sets = list(dict.fromkeys(k[1] for k in sorted(found, key=lambda k: (k[1] != "kodak24", k[1]))))
    isos = sorted({k[2] for k in found}, key=float)
    cols = [(s, i) for s in sets for i in isos]
    header = ["Method"] + [f"{s} ISO {i}" for s, i in cols]
    any_res = next(iter(found.values()))
    info = any_res.get("info", {})
    bench = info.get("bench", {})
    mach = bench.get("machine", {})
    proto = info.get("camera_protocol", {})
    capture = proto.get("capture", "daylight, exact as-shot WB, 14 bit")
    highlights = next((d.get("info", {}).get("camera_protocol", {}).get("highlights")
                       for d in found.values()
                       if d.get("info", {}).get("camera_protocol", {}).get("route") == "develop"), "none")
    lines = ["# Camera protocol benchmark\n\n",
             f"Protocol: simulated DNGs of {info.get('camera', '?')} ({capture}, random CFA phase "
             f"and margins, seed {info.get('seed', '?')}), each method on the same files (models "
             f"via `develop`, highlights {highlights}; LibRaw with camera WB); "
             "border 12 px; means over images. See src/demosaic/evaluation/camera.py.\n\n",
             f"Machine: {mach.get('cores', '?')} cores ({mach.get('cpu', '?')}, "
             f"{mach.get('platform', '?')}). Commands that produced the cached results:\n\n"]
    runs: dict[str, list[str]] = {}
    for (m, _, _), data in sorted(found.items()):
        b = data.get("info", {}).get("bench", {})
        runs.setdefault(f"`{b.get('command', '?')}`", []).append(str(b.get("date", "?"))[:16])
    lines += [f"- {cmd} (started {min(dates)} UTC)\n" for cmd, dates in runs.items()]
    lines.append("\n")
    tables = [("PSNR (dB), linear balanced camera RGB", "psnr", ".2f"),
              ("sRGB PSNR (dB), body matrix -> sRGB, clipped", "psnr_srgb", ".2f"),
              ("Periodic error (8-bit sRGB levels)", "periodic_levels", ".2f"),
              ("False-colour score", "false_colour_score", ".3g")]
    for title, key, spec in tables:
        rows = []
        for m in methods:
            rows.append([m] + [fmt_number(found[(m, s, i)]["mean"].get(key), spec) if (m, s, i) in found
                               else "-" for s, i in cols])
        lines.append(f"## {title}\n\n" + markdown_table(header, rows) + "\n")
    return "".join(lines)


# --------------------------------------------------------------------------------------
# Picture
# --------------------------------------------------------------------------------------


def _label_strip(texts: list[str], widths: list[int], gap: int, height: int = 14) -> np.ndarray:
    """A white strip with ``texts`` centred over panels of ``widths`` (sRGB-encoded in [0, 1])."""
    from PIL import Image, ImageDraw

    total = sum(widths) + gap * (len(widths) - 1)
    img = Image.new("RGB", (total, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    x = 0
    for text, w in zip(texts, widths):
        try:
            tw = int(draw.textlength(text))
        except Exception:  # noqa: BLE001 - very old Pillow: no textlength
            tw = 6 * len(text)
        draw.text((x + max(0, (w - tw) // 2), 1), text, fill=(0, 0, 0))
        x += w + gap
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1) / 255.0


def make_picture(path: Path, args: argparse.Namespace, bench_info: dict[str, Any]) -> None:
    """The comparison PNG (see the module docstring)."""
    from PIL import Image

    from demosaic.color import linear_to_srgb
    from demosaic.evaluation.camera import make_runner, to_srgb_linear
    from demosaic.evaluation.capture import CameraProtocol, prepare_case

    out = Path(args.out)
    images = load_images(Path(args.data_root), PICTURE_SET, args.cfa, args.max_images)
    ref = run_one("markesteijn3", PICTURE_SET, PICTURE_ISO, images, args, bench_info)
    if ref is None:
        raise DemosaicError("no markesteijn3 result to pick the picture's crops from")
    windows = ref["info"].get("worst_windows", {})
    size = int(ref["info"].get("crop_size", PICTURE_SIZE))
    picks = sorted(windows.items(), key=lambda kv: -kv[1][0])[:PICTURE_CROPS]
    if not picks:
        raise DemosaicError(f"markesteijn3 on {PICTURE_SET} recorded no worst windows")
    by_name = {n: (i, rgb) for i, (n, rgb, _) in enumerate(images)}
    names = ["truth"] + PICTURE_METHODS + [args.model_name]
    runners = []
    for m in names[1:]:
        method, _, _ = build(m, args)
        runners.append(make_runner(method, args.device)[0])
    proto = CameraProtocol(family="xtrans" if args.cfa == "xtrans" else "bayer", iso=PICTURE_ISO,
                           camera=args.camera, seed=args.seed)
    z, gap = PICTURE_ZOOM, 4
    rows = []
    for img_name, (_, y, x) in picks:
        index, rgb = by_name[img_name]
        y, x = int(y), int(x)
        case = prepare_case(img_name, rgb, index, proto, raw_cache(out, PICTURE_SET, PICTURE_ISO))
        mat = case.srgb_matrix
        panels = [case.target] + [run(case) for run in runners]
        row = []
        for k, p in enumerate(panels):
            v = to_srgb_linear(p[:, y:y + size, x:x + size], mat)
            enc = linear_to_srgb(np.clip(v, 0.0, 1.0))
            big = np.repeat(np.repeat(enc, z, axis=1), z, axis=2)
            row += [big] if k == 0 else [np.ones((3, size * z, gap), np.float32), big]
        rows.append(np.concatenate(row, axis=2))
        log.info("picture row: %s at (y %d, x %d)", img_name, y, x)
    strip = _label_strip(names, [size * z] * len(names), gap)
    sep = np.ones((3, gap, rows[0].shape[2]), np.float32)
    parts = [strip]
    for r in rows:
        parts += [sep, r]
    grid = np.concatenate(parts, axis=1)
    arr = np.clip(np.rint(grid.transpose(1, 2, 0) * 255.0), 0, 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        Image.fromarray(arr).save(tmp, format="PNG")
    meta = {"crops": [{"image": n, "y": int(w[1]), "x": int(w[2]), "markesteijn3_srgb_mse": w[0]}
                      for n, w in picks], "panels": names, "size": size, "zoom": z,
            "set": PICTURE_SET, "iso": PICTURE_ISO, **bench_info}
    with atomic_path(path.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    log.info("wrote %s", path)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The command line of this script."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", nargs="+", default=["kodak24", "mcmaster"])
    parser.add_argument("--isos", nargs="+", type=float, default=[100.0, 800.0, 3200.0])
    parser.add_argument("--methods", nargs="+", default=None,
                        help=f"default: {' '.join(DEFAULT_METHODS)} ('default' = the packaged model)")
    parser.add_argument("--checkpoint", default=None, help="measure this checkpoint instead of the packaged model")
    parser.add_argument("--name", default=None, help="report name of --checkpoint (default: its run name)")
    parser.add_argument("--cfa", default="xtrans", help="CFA of the baselines (xtrans | bayer_rggb)")
    parser.add_argument("--camera", default=None, help="camera body (default X-T3 / ILCE-7M3)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--illuminant", default="daylight", help="scene light: daylight | tungsten | shade")
    parser.add_argument("--wb-error", type=float, default=0.0, help="std of the log as-shot WB error (0: exact)")
    parser.add_argument("--bits", type=int, default=14, help="raw bit depth (12 | 14 | 16)")
    parser.add_argument("--exposure", type=float, default=1.0,
                        help="factor on the default headroom (0.25: two stops under; 2: clipped highlights)")
    parser.add_argument("--highlights", default="none",
                        help="models' highlight mode (none: the network alone; clip: demosaic-infer's default)")
    parser.add_argument("--data-root", default=os.environ.get("DEMOSAIC_DATA", "../shared/data"))
    parser.add_argument("--max-images", type=int, default=None, help="first N images per set (quick runs)")
    parser.add_argument("--out", default="logs/bench_camera")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--force", action="store_true", help="recompute cached results")
    parser.add_argument("--table-only", action="store_true", help="only rebuild the tables from cached JSONs")
    parser.add_argument("--picture", default=None, metavar="PATH", help="write the comparison PNG")
    return parser


def select_methods(args: argparse.Namespace) -> list[str]:
    """The methods to measure; sets ``args.model_name`` (the report name of the model:
    ``default``, ``--name`` or the run name of ``--checkpoint``)."""
    args.model_name = "default"
    if args.checkpoint:
        if args.name:
            args.model_name = args.name
        else:
            from demosaic.models.checkpoint import load_checkpoint

            ck = load_checkpoint(args.checkpoint)
            args.model_name = str(ck.get("run_name") or Path(args.checkpoint).parent.name or
                                  Path(args.checkpoint).stem)
    methods = list(args.methods or DEFAULT_METHODS)
    if args.checkpoint:
        methods = [args.model_name if m == "default" else m for m in methods]
        if args.model_name not in methods:
            methods.insert(0, args.model_name)
    return methods


def measure(args: argparse.Namespace, methods: list[str], bench_info: dict[str, Any]) -> int:
    """Every method on every set and ISO (cached results are kept unless ``--force``);
    returns 1 if a set or a run failed, else 0."""
    status = 0
    t_start = time.perf_counter()
    for set_name in args.sets:
        try:
            images = load_images(Path(args.data_root), set_name, args.cfa, args.max_images)
        except DemosaicError as exc:
            log.error("skipping set %s: %s", set_name, exc)
            status = 1
            continue
        for iso in args.isos:
            for name in methods:
                try:
                    run_one(name, set_name, iso, images, args, bench_info)
                except DemosaicError as exc:
                    log.error("%s on %s ISO %s failed: %s", name, set_name, iso_tag(iso), exc)
                    status = 1
    log.info("benchmark done in %.0f s", time.perf_counter() - t_start)
    return status


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    logging.getLogger("demosaic.io.dng").setLevel(logging.WARNING)
    logging.getLogger("demosaic.io.raw").setLevel(logging.WARNING)
    methods = select_methods(args)
    out = Path(args.out)
    command = "python scripts/benchmarks/bench_camera.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    bench_info = {"command": command, "machine": machine(),
                  "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    status = 0 if args.table_only else measure(args, methods, bench_info)
    if args.picture:
        try:
            make_picture(Path(args.picture), args, bench_info)
        except DemosaicError as exc:
            log.error("picture failed: %s", exc)
            status = 1
    order = [args.model_name] + [m for m in DEFAULT_METHODS if m != "default"] + methods
    text = render_tables(collect(out), list(dict.fromkeys(order)))
    md = out / "bench_camera.md"
    md.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(md) as tmp:
        tmp.write_text(text, encoding="utf-8")
    print(text)
    log.info("wrote %s", md)
    return status

if __name__ == "__main__":
    sys.exit(main())
