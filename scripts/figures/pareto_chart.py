"""Quality against compute, one point per method: the picture of docs/BENCHMARKS.md (issue 16).

One column per image set (Kodak24 beside McMaster), two rows per protocol (clean, camera at
``--iso``): linear PSNR against GMAC per megapixel (networks only: a LibRaw method is no
network) and against CPU seconds per megapixel (every method). Points come from result files
the benchmarks wrote, nothing is typed in:

- camera protocol: ``--camera-results``/<method>/<set>_iso<ISO>/results.json
  (``scripts/benchmarks/bench_camera.py``): ``mean.psnr`` and ``megapixels_per_s`` (the
  method's whole develop call on this CPU);
- clean protocol: each ``--clean`` ``LABEL=DIR`` holding a ``demosaic-eval`` results.json
  (``mean.psnr``, ``megapixels_per_s``); ``{set}`` in DIR stands for each of ``--sets``.

GMAC per megapixel is counted (:func:`demosaic.models.cost.model_cost`) for the shipped model,
each ``--checkpoint LABEL=PATH`` and demosaicnet's pretrained network (baselines extra).
The points, with the result file each came from, are also written beside the picture
(``--out`` with ``.json``), and printed as Markdown tables.

Usage (the command of docs/BENCHMARKS.md, "Quality against compute")::

    python scripts/figures/pareto_chart.py --out docs/img/pareto.png --sets kodak24 mcmaster \\
        --camera-results logs/pareto/bench_camera/results --iso 800 \\
        --checkpoint quality_net=src/demosaic/assets/quality_xtrans.pt \\
        --clean default=logs/pareto/clean/default_{set} markesteijn3=logs/pareto/clean/markesteijn3_{set}

Needs the ``plots`` extra (matplotlib).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

#: How each method is drawn: label, marker.
STYLE = {"default": ("demosaic default", "o"), "quality": ("demosaic quality (network, 2 views)", "D"),
         "quality_net": ("quality network, 1 view", "P"), "quality_x8": ("quality network, 8 views", "X"),
         "demosaicnet": ("demosaicnet", "s"),
         "markesteijn3": ("LibRaw Markesteijn 3", "^"), "markesteijn1": ("LibRaw Markesteijn 1", "v"),
         "vng": ("LibRaw VNG", "<"), "libraw_linear": ("LibRaw LINEAR", ">"),
         "bilinear": ("bilinear", ">")}

#: How each image set is named in titles.
SET_NAMES = {"kodak24": "Kodak24", "mcmaster": "McMaster", "cbsd68": "CBSD68"}


def _load(path: Path) -> tuple[dict[str, Any], Path] | None:
    f = path / "results.json" if path.is_dir() else path
    return (json.loads(f.read_text()), f) if f.is_file() else None


def gmacs(checkpoints: dict[str, str], with_demosaicnet: bool) -> dict[str, float]:
    """GMAC per megapixel of the networks, by method name."""
    import torch

    from demosaic.models.cost import model_cost
    from demosaic.models.zoo import resolve_method

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


def points(results: dict[str, tuple[dict[str, Any], Path]], cost: dict[str, float]) -> list[dict[str, Any]]:
    """``[{method, psnr, s_per_mp, gmac, source}]`` of every result."""
    rows = []
    for method, (r, src) in sorted(results.items()):
        mps = float(r.get("megapixels_per_s") or float("nan"))
        rows.append({"method": method, "psnr": float(r["mean"]["psnr"]),
                     "s_per_mp": 1.0 / mps if mps > 0 else float("nan"),
                     "gmac": cost.get(method), "source": str(src)})
    return rows


def draw(panels: dict[tuple[str, str], list[dict[str, Any]]], sets: list[str], protocols: list[str],
         out: Path) -> None:
    """One column per set (Kodak24 beside McMaster); per protocol two rows: PSNR against GMAC/MP
    (networks) and against CPU s/MP (every method). One legend for all panels."""
    from demosaic.research.plots import pyplot, save_figure

    plt = pyplot()
    keys = [(proto, key) for proto in protocols for key in ("gmac", "s_per_mp")]
    fig, axes = plt.subplots(len(keys), len(sets), figsize=(5.4 * len(sets), 2.9 * len(keys) + 0.9),
                             squeeze=False)
    others = sorted({p["method"] for rows in panels.values() for p in rows} - set(STYLE))
    names = list(STYLE) + others  # one colour and marker per method, the same in every panel
    handles: dict[str, Any] = {}
    for row, (proto, key) in enumerate(keys):
        for col, set_name in enumerate(sets):
            ax = axes[row][col]
            if row % 2 == 1:  # the CPU row shares its PSNR axis with the GMAC row above it
                ax.sharey(axes[row - 1][col])
            if col > 0:  # one x axis per row: the same quantity for every set
                ax.sharex(axes[row][0])
            for p in panels.get((set_name, proto), []):
                if p[key] is None or not p[key] > 0:
                    continue
                label, marker = STYLE.get(p["method"], (p["method"], "D"))
                color = f"C{names.index(p['method']) % 10}"
                handles[p["method"]] = ax.scatter([p[key]], [p["psnr"]], marker=marker, s=60,
                                                  color=color, label=label, zorder=3)
            ax.set_xscale("log")
            ax.set_xlabel("GMAC per megapixel (networks)" if key == "gmac"
                          else "CPU seconds per megapixel", fontsize=9)
            ax.set_ylabel("linear PSNR (dB)", fontsize=9)
            ax.set_title(f"{SET_NAMES.get(set_name, set_name)}, {proto}", fontsize=10)
            ax.grid(True, alpha=0.3, which="both")
            ax.margins(x=0.15, y=0.12)
    order = [m for m in names if m in handles]
    fig.legend([handles[m] for m in order], [STYLE.get(m, (m,))[0] for m in order],
               loc="upper center", ncol=min(5, len(order)), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.75 / fig.get_figheight()))
    save_figure(fig, out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--camera-results", type=Path, default=Path("logs/bench_camera/results"))
    parser.add_argument("--sets", "--set", nargs="+", default=["kodak24"],
                        help="image sets, one pair of columns each (default kodak24)")
    parser.add_argument("--iso", type=float, default=800.0)
    parser.add_argument("--clean", nargs="*", default=[], metavar="LABEL=DIR",
                        help="demosaic-eval result folders; {set} in DIR stands for each set")
    parser.add_argument("--checkpoint", nargs="*", default=[], metavar="LABEL=PATH")
    parser.add_argument("--no-demosaicnet", action="store_true")
    args = parser.parse_args()

    if len(args.sets) > 1:
        fixed = [s for s in args.clean if "{set}" not in s]
        if fixed:
            print(f"--clean {fixed[0]}: with several sets each DIR needs {{set}}", file=sys.stderr)
            return 2
    clean_title, camera_title = "clean protocol", f"camera protocol ISO {args.iso:g}"
    panels: dict[tuple[str, str], dict[str, tuple[dict[str, Any], Path]]] = {}
    for set_name in args.sets:
        for spec in args.clean:
            label, _, path = spec.partition("=")
            path = path.replace("{set}", set_name)
            r = _load(Path(path))
            if r is None:
                print(f"no results.json in {path}", file=sys.stderr)
                return 2
            panels.setdefault((set_name, clean_title), {})[label] = r
        for d in sorted(args.camera_results.glob(f"*/{set_name}_iso{args.iso:g}")):
            r = _load(d)
            if r is not None:
                panels.setdefault((set_name, camera_title), {})[d.parent.name] = r
    if not panels:
        print("no results found", file=sys.stderr)
        return 2
    cost = gmacs(dict(s.split("=", 1) for s in args.checkpoint), not args.no_demosaicnet)
    protocols = [p for p in (clean_title, camera_title) if any(k[1] == p for k in panels)]
    pts = {key: points(res, cost) for key, res in panels.items()}
    draw(pts, args.sets, protocols, args.out)
    table = {f"{s}, {p}": pts[(s, p)] for s in args.sets for p in protocols if (s, p) in pts}
    (args.out.with_suffix(".json")).write_text(json.dumps(table, indent=1) + "\n")
    for set_name in args.sets:
        by = {p: {q["method"]: q for q in pts.get((set_name, p), [])} for p in protocols}
        methods = sorted({m for d in by.values() for m in d},
                         key=lambda m: list(STYLE).index(m) if m in STYLE else len(STYLE))
        head = " | ".join([f"{p} PSNR (dB)" for p in protocols] + ["GMAC / MP"]
                          + [f"CPU s / MP ({p.split()[0]})" for p in protocols])
        print(f"\n| {SET_NAMES.get(set_name, set_name)} | {head} |\n|---|"
              + "---:|" * (2 * len(protocols) + 1))
        for m in methods:
            q = [by[p].get(m) for p in protocols]
            g = next((x["gmac"] for x in q if x and x["gmac"]), None)
            cells = [f"{x['psnr']:.2f}" if x else "-" for x in q] + [f"{g:.2f}" if g else "-"]
            cells += [f"{x['s_per_mp']:.3f}" if x else "-" for x in q]
            print(f"| {STYLE.get(m, (m,))[0]} | " + " | ".join(cells) + " |")
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
