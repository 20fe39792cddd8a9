#!/usr/bin/env python
"""Benchmark the classical and third-party baselines with the ``demosaic-eval`` protocol.

One command produces the "## Baselines" tables of docs/BENCHMARKS.md::

    python scripts/benchmarks/bench_baselines.py --update-doc

Defaults: sets kodak24 and mcmaster from ``$DEMOSAIC_DATA`` (else ../shared/data); X-Trans
methods bilinear, libraw_linear, vng, markesteijn1, markesteijn3, demosaicnet; Bayer
(RGGB) methods bilinear, cd_bilinear, malvar2004, menon2007, ahd, dht, demosaicnet.
Each (method, set) is evaluated by :func:`demosaic.evaluation.clean.evaluate` exactly as
``demosaic-eval baseline=<method> evalset=<set> [cfa=bayer_rggb]`` does (results.json and
results.md under ``--out``/<cfa>/<method>_<set>/). ``--update-doc`` replaces only the
"## Baselines" section of docs/BENCHMARKS.md (created if missing); without it the section
is written to ``--out``/baselines.md only.

demosaicnet needs the optional extra (``pip install 'demosaic[baselines]'``); a method that
cannot be built is reported and skipped. On a 2-core CPU demosaicnet X-Trans takes ~10-15 s
per Kodak image; the LibRaw methods well under a second.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
import time
from pathlib import Path

from _bench import machine_line

import torch

from demosaic.cli.common import setup_logging
from demosaic.data import DATASETS
from demosaic.evaluation.clean import evaluate, images_from_dataset
from demosaic.evaluation.report import EvalResult, ReportSpec, markdown_table
from demosaic.errors import DemosaicError
from demosaic.io.atomic import atomic_path
from demosaic.models.baselines import build_method

log = logging.getLogger("bench_baselines")

METHODS = {
    "xtrans": ["bilinear", "libraw_linear", "vng", "markesteijn1", "markesteijn3", "demosaicnet"],
    "bayer_rggb": ["bilinear", "cd_bilinear", "malvar2004", "menon2007", "ahd", "dht", "demosaicnet"],
}
SECTION = "## Baselines"


def machine_description(label: str | None) -> str:
    base = machine_line()
    return f"{label} — {base}" if label else base


NOTES_BEGIN, NOTES_END = "<!-- baselines-notes -->", "<!-- /baselines-notes -->"


def render_section(results: dict[str, list[EvalResult]], command: str, machine: str,
                   seconds: float, skipped: list[str], notes: str = "") -> str:
    """The "## Baselines" section: protocol, legend, command, machine, one table per CFA and
    set, and the hand-written ``notes`` (kept between the baselines-notes markers)."""
    cols = [("psnr", "PSNR", ".2f"), ("psnr_srgb", "sRGB PSNR", ".2f"), ("ssim", "SSIM", ".4f"),
            ("texture_score", "Texture", ".3f"), ("periodic_artifact_score", "Periodic score", ".3g"),
            ("periodic_levels", "Periodic lv", ".2f"), ("periodic_artifact_flag", "Grid", ""),
            ("false_colour_score", "False colour", ".4f"), ("hdr_probe_ratio", "HDR ratio", ".2f"),
            ("megapixels_per_s", "MP/s", ".2f")]
    out = [f"{SECTION}\n\n",
           "Classical and third-party demosaickers measured with the `demosaic-eval` protocol "
           "(`demosaic-eval baseline=NAME evalset=SET` gives the same numbers): the 8-bit sRGB "
           "test images are decoded to linear light, centre-cropped to a multiple of the CFA "
           "period, mosaicked in linear light without noise (canonical phase), demosaicked, and "
           "compared with the truth with a 12 px border excluded; set means over images. "
           "How LibRaw and demosaicnet are driven: `src/demosaic/models/baselines.py`.\n\n",
           "Columns: **PSNR** in dB on linear values (unclipped); **sRGB PSNR** on sRGB-encoded "
           "values clipped to [0, 1]; **SSIM** on sRGB-encoded values; **Texture** = "
           "Laplacian-variance ratio output/truth of the display luminance (1 = as sharp as "
           "the truth); **Periodic score** = spectral peak-to-background ratio of the error at "
           "the CFA period's harmonics; **Periodic lv** = RMS of the error's CFA-periodic "
           "component in 8-bit sRGB levels; **Grid** = the detector's verdict (both above their "
           "limits); **False colour** = mean colour-difference error (sRGB units) on the "
           "truth's strongest 10 % edges; **HDR ratio** = error on regions above 1.0 of a "
           "centre crop exposed ×4 divided by the plain crop's error scaled ×4 (1 = highlights "
           "pass through); **MP/s** = megapixels per second of the demosaic call alone "
           "(metrics excluded).\n\n",
           f"Command: `{command}`  \nMachine: {machine}  \nWall time of the whole run: "
           f"{seconds / 60:.1f} min\n\n"]
    for cfa_name, rows in results.items():
        order = [r.evalset for r in rows]
        sets = sorted(set(order), key=order.index)
        out.append(f"### {cfa_name}\n\n")
        for s in sets:
            sel = [r for r in rows if r.evalset == s]
            body = []
            for r in sel:
                summ = r.summary
                cells = []
                for k, _, spec in cols:
                    if k == "periodic_artifact_flag":
                        cells.append("yes" if summ.get(k) else "no")
                    else:
                        cells.append(_fmt(summ.get(k), spec))
                body.append([r.method] + cells)
            out.append(f"**{s}** ({len(sel[0].images)} images)\n\n")
            out.append(markdown_table(["Method"] + [t for _, t, _ in cols], body) + "\n")
    if skipped:
        out.append("Skipped: " + "; ".join(skipped) + "\n\n")
    out.append(f"{NOTES_BEGIN}\n{notes.strip()}\n{NOTES_END}\n" if notes.strip()
               else f"{NOTES_BEGIN}\n{NOTES_END}\n")
    return "".join(out)


def existing_notes(doc: Path) -> str:
    """Hand-written text between the baselines-notes markers of ``doc`` ('' if none)."""
    if not doc.is_file():
        return ""
    text = doc.read_text(encoding="utf-8")
    if NOTES_BEGIN not in text or NOTES_END not in text:
        return ""
    return text.split(NOTES_BEGIN, 1)[1].split(NOTES_END, 1)[0]


def _fmt(v: object, spec: str) -> str:
    try:
        f = float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "-"
    return f"{f:{spec}}" if f == f else "-"


def replace_section(doc: Path, section: str) -> None:
    """Replace (or append) the ``## Baselines`` section of ``doc``, leaving the rest as is."""
    text = doc.read_text(encoding="utf-8") if doc.is_file() else "# Benchmarks\n\n"
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        new = text.rstrip("\n") + "\n\n" + section
    else:
        end = next((j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines))
        new = "".join(lines[:start]) + section + ("\n" if end < len(lines) else "") + "".join(lines[end:])
    with atomic_path(doc) as tmp:
        tmp.write_text(new.rstrip("\n") + "\n", encoding="utf-8")


def _checkpoint_method(path: str, cfa_name: str, device: str) -> tuple[torch.nn.Module, str]:
    """A trained checkpoint as a method; ``default`` is the model shipped in the package."""
    from demosaic.cfa import get_pattern
    from demosaic.models.zoo import resolve_method

    m = resolve_method(checkpoint=None if path == "default" else path, cfa=cfa_name, device=device)
    model = m.demosaicker
    if model.pattern.family != get_pattern(cfa_name).family:
        raise DemosaicError(f"{path} is a {model.pattern.family} model, not {cfa_name}")
    return model, ("default model" if path == "default" else Path(path).parent.name or Path(path).stem)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="kodak24,mcmaster")
    parser.add_argument("--cfa", default="xtrans,bayer_rggb", help="comma-separated CFAs")
    parser.add_argument("--methods", default=None,
                        help="comma-separated methods for every CFA (default: per-CFA lists)")
    parser.add_argument("--checkpoint", action="append", default=[],
                        help="also evaluate this checkpoint (repeatable; 'default' = the packaged model)")
    parser.add_argument("--data-root", default=os.environ.get("DEMOSAIC_DATA", "../shared/data"))
    parser.add_argument("--max-images", type=int, default=None, help="first N images per set (quick runs)")
    parser.add_argument("--out", default="logs/bench")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--machine", default=None, help="label of the machine, e.g. '2-core CPU, no GPU'")
    parser.add_argument("--update-doc", action="store_true", help="rewrite ## Baselines in --doc")
    parser.add_argument("--doc", default="docs/BENCHMARKS.md")
    args = parser.parse_args(argv)
    setup_logging()
    logging.getLogger("demosaic.io.dng").setLevel(logging.WARNING)  # one line per LibRaw call

    command = "python scripts/benchmarks/bench_baselines.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    t_start = time.perf_counter()
    results: dict[str, list[EvalResult]] = {}
    skipped: list[str] = []
    for cfa_name in [c.strip() for c in args.cfa.split(",") if c.strip()]:
        names = args.methods.split(",") if args.methods else METHODS.get(cfa_name, METHODS["bayer_rggb"])
        names = [*(f"ckpt:{c}" for c in args.checkpoint), *names]
        for set_name in [s.strip() for s in args.sets.split(",") if s.strip()]:
            spec = {"name": "folder", "root": str(Path(args.data_root) / set_name), "mode": "crop",
                    "max_images": args.max_images}
            for name in names:
                try:
                    if name.startswith("ckpt:"):
                        method, name = _checkpoint_method(name[5:], cfa_name, args.device)
                    else:
                        method = build_method(name, cfa_name, **({"device": args.device}
                                                                 if name == "demosaicnet" else {}))
                except DemosaicError as exc:
                    log.warning("skipping %s on %s: %s", name, cfa_name, exc)
                    skipped.append(f"{name} ({cfa_name}): {exc}")
                    continue
                dataset = DATASETS.build(spec, where="bench", pattern=cfa_name, split="val", seed=0)
                t0 = time.perf_counter()
                report = ReportSpec(evalset=set_name, name=name, kind="baseline", worst_crops=2,
                                    out_dir=Path(args.out) / cfa_name / f"{name}_{set_name}",
                                    progress=False)
                res = evaluate(method, images_from_dataset(dataset), border=12, report=report,
                               compare=(), device=args.device)
                log.info("%-14s %-9s %-10s PSNR %.3f  sRGB %.3f  SSIM %.4f  %.2f MP/s  (%.0f s)",
                         name, cfa_name, set_name, res.mean["psnr"], res.mean["psnr_srgb"],
                         res.mean["ssim"], res.megapixels_per_s, time.perf_counter() - t0)
                results.setdefault(cfa_name, []).append(res)
    section = render_section(results, command, machine_description(args.machine),
                             time.perf_counter() - t_start, skipped, existing_notes(Path(args.doc)))
    out = Path(args.out) / "baselines.md"
    with atomic_path(out) as tmp:
        tmp.write_text(section, encoding="utf-8")
    log.info("wrote %s", out)
    if args.update_doc:
        replace_section(Path(args.doc), section)
        log.info("updated %s (%s)", args.doc, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
