"""Quality against compute, one point per method: the picture of docs/BENCHMARKS.md (issue 16).

Two panels per protocol: linear PSNR against GMAC per megapixel (networks only: a LibRaw
method is no network) and against CPU seconds per megapixel (every method). Points come from
result files the benchmarks wrote, nothing is typed in:

- camera protocol: ``--camera-results``/<method>/<set>_iso<ISO>/results.json
  (``scripts/bench_camera.py``): ``mean.psnr`` and ``megapixels_per_s`` (the method's whole
  develop call on this CPU);
- clean protocol: each ``--clean`` ``LABEL=DIR`` holding a ``demosaic-eval`` results.json
  (``mean.psnr``, ``megapixels_per_s``).

GMAC per megapixel is counted (:func:`demosaic.models.cost.model_cost`) for the shipped model,
each ``--checkpoint LABEL=PATH`` and demosaicnet's pretrained network (baselines extra).

Usage::

    python scripts/pareto_chart.py --out docs/img/pareto.png \\
        --camera-results logs/bench_camera/results --set kodak24 --iso 800 \\
        --clean default=logs/eval_final/default_kodak24_clean markesteijn3=logs/eval_clean/markesteijn3

Needs the ``plots`` extra (matplotlib).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: How each method is drawn: label, marker.
STYLE = {"default": ("demosaic default", "o"), "quality": ("quality (net x2)", "D"),
         "quality_net": ("net x1", "P"), "quality_x8": ("net x8", "X"),
         "demosaicnet": ("demosaicnet", "s"),
         "markesteijn3": ("LibRaw Markesteijn 3", "^"), "markesteijn1": ("LibRaw Markesteijn 1", "v"),
         "vng": ("LibRaw VNG", "<"), "libraw_linear": ("LibRaw bilinear", ">"),
         "bilinear": ("bilinear", ">")}


def _load(path: Path) -> dict[str, Any] | None:
    f = path / "results.json" if path.is_dir() else path
    return json.loads(f.read_text()) if f.is_file() else None


def gmacs(checkpoints: dict[str, str], with_demosaicnet: bool) -> dict[str, float]:
    """GMAC per megapixel of the networks, by method name."""
    import torch

    from demosaic.engine.methods import resolve_method
    from demosaic.models.cost import model_cost

    out = {}
    shape = (1, 1, 288, 288)
    out["default"] = model_cost(resolve_method().demosaicker.eval(), shape).gmac_per_mp
    out["quality"] = model_cost(resolve_method(model="quality").demosaicker, shape).gmac_per_mp
    for label, path in checkpoints.items():
        out[label] = model_cost(resolve_method(checkpoint=path).demosaicker.eval(), shape).gmac_per_mp
    if with_demosaicnet:
        try:
            import demosaicnet
        except ImportError:
            return out
        net = demosaicnet.XTransDemosaick(pretrained=True, pad=True).eval()
        with torch.no_grad():
            out["demosaicnet"] = model_cost(net, (1, 3, 288, 288)).gmac_per_mp
    return out


def points(results: dict[str, dict[str, Any]], cost: dict[str, float]) -> list[dict[str, Any]]:
    """``[{method, psnr, s_per_mp, gmac}]`` of every result."""
    rows = []
    for method, r in sorted(results.items()):
        mps = float(r.get("megapixels_per_s") or float("nan"))
        rows.append({"method": method, "psnr": float(r["mean"]["psnr"]),
                     "s_per_mp": 1.0 / mps if mps > 0 else float("nan"),
                     "gmac": cost.get(method)})
    return rows


def draw(panels: dict[str, list[dict[str, Any]]], out: Path) -> None:
    """One row per protocol: PSNR vs GMAC/MP (networks) | PSNR vs CPU s/MP (all)."""
    from demosaic.research.plots import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(len(panels), 2, figsize=(10, 3.6 * len(panels)), squeeze=False)
    others = sorted({p["method"] for rows in panels.values() for p in rows} - set(STYLE))
    names = list(STYLE) + others  # one colour per method, the same in every panel
    for row, (title, rows) in enumerate(panels.items()):
        for col, key in enumerate(("gmac", "s_per_mp")):
            ax = axes[row][col]
            for p in rows:
                if p[key] is None or not p[key] > 0:
                    continue
                label, marker = STYLE.get(p["method"], (p["method"], "D"))
                color = f"C{names.index(p['method']) % 10}"
                ax.scatter([p[key]], [p["psnr"]], marker=marker, s=60, label=label, color=color)
                ax.annotate(label, (p[key], p["psnr"]), textcoords="offset points", xytext=(5, 4),
                            fontsize=8)
            ax.set_xscale("log")
            ax.set_xlabel("GMAC per megapixel" if key == "gmac" else "CPU seconds per megapixel")
            ax.set_ylabel("linear PSNR (dB)")
            ax.set_title(f"{title}: {'networks' if key == 'gmac' else 'all methods'}", fontsize=10)
            ax.grid(True, alpha=0.3, which="both")
    fig.tight_layout()
    save_figure(fig, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--camera-results", type=Path, default=Path("logs/bench_camera/results"))
    parser.add_argument("--set", default="kodak24")
    parser.add_argument("--iso", type=float, default=800.0)
    parser.add_argument("--clean", nargs="*", default=[], metavar="LABEL=DIR")
    parser.add_argument("--checkpoint", nargs="*", default=[], metavar="LABEL=PATH")
    parser.add_argument("--no-demosaicnet", action="store_true")
    args = parser.parse_args()

    camera = {}
    for d in sorted(args.camera_results.glob(f"*/{args.set}_iso{args.iso:g}")):
        r = _load(d)
        if r is not None:
            camera[d.parent.name] = r
    clean = {}
    for spec in args.clean:
        label, _, path = spec.partition("=")
        r = _load(Path(path))
        if r is None:
            print(f"no results.json in {path}", file=sys.stderr)
            return 2
        clean[label] = r
    cost = gmacs(dict(s.split("=", 1) for s in args.checkpoint), not args.no_demosaicnet)
    panels = {}
    if clean:
        panels[f"{args.set}, clean protocol"] = points(clean, cost)
    if camera:
        panels[f"{args.set}, camera protocol ISO {args.iso:g}"] = points(camera, cost)
    if not panels:
        print("no results found", file=sys.stderr)
        return 2
    draw(panels, args.out)
    table = {t: rows for t, rows in panels.items()}
    (args.out.with_suffix(".json")).write_text(json.dumps(table, indent=1))
    for title, rows in panels.items():
        print(f"\n{title}\n| method | PSNR (dB) | GMAC/MP | CPU s/MP |\n|---|---:|---:|---:|")
        for p in rows:
            g = f"{p['gmac']:.2f}" if p["gmac"] else "-"
            print(f"| {p['method']} | {p['psnr']:.2f} | {g} | {p['s_per_mp']:.3f} |")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
