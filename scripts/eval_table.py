"""One Markdown table of several evaluation runs (``results.json`` files or their folders).

Usage::

    python scripts/eval_table.py logs/research/eval/base_cbsd68 logs/research/eval/v5.0_ssim_cbsd68

Columns: PSNR (linear), sRGB PSNR, SSIM, texture score, periodic-artifact score, MP/s.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

COLUMNS = (("psnr", "PSNR (dB)", ".2f"), ("psnr_srgb", "sRGB PSNR (dB)", ".2f"), ("ssim", "SSIM", ".4f"),
           ("texture_score", "texture", ".3f"), ("periodic_artifact_score", "periodic", ".2f"),
           ("megapixels_per_s", "MP/s", ".2f"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="+")
    args = parser.parse_args()

    from demosaic.engine.evaluate import load_results

    sys.stdout.write("| run | images | " + " | ".join(c[1] for c in COLUMNS) + " |\n")
    sys.stdout.write("|---|---|" + "---|" * len(COLUMNS) + "\n")
    for path in args.results:
        s = load_results(path)["summary"]
        cells = [format(s[k], spec) if isinstance(s.get(k), (int, float)) and math.isfinite(s[k]) else "-"
                 for k, _, spec in COLUMNS]
        sys.stdout.write(f"| {Path(path).name} | {int(s.get('images', 0))} | " + " | ".join(cells) + " |\n")


if __name__ == "__main__":
    main()
