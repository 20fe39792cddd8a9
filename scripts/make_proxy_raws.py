"""Render X-Trans DNGs from photographs: a stand-in for raw files when none are at hand.

Each image is decoded to linear light, mosaicked with the X-Trans pattern (canonical phase)
and written as a 12-bit DNG (black 256, white 4095) that LibRaw reads as X-Trans. Building
raw-teacher shards from them (``demosaic-prepare raw_teacher source=OUT ...``) runs the real
raw-teacher pipeline (LibRaw Markesteijn + downsampling), so its statistics can be compared
with synthetic mosaics of the same photographs. It is a PROXY: real RAFs differ by sensor
noise, optics, white balance and scene content; say so wherever its numbers are used.

Usage::

    python scripts/make_proxy_raws.py ../shared/data/sun_hays80 logs/research/proxy_raws --count 24
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source")
    parser.add_argument("out")
    parser.add_argument("--count", type=int, default=24)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")

    from demosaic import cfa
    from demosaic.io.dng import write_dng
    from demosaic.io.images import read_image_linear

    files = sorted(p for p in Path(args.source).iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    out = Path(args.out)
    for path in files[: args.count]:
        rgb = read_image_linear(path)
        h, w = rgb.shape[1] // 6 * 6, rgb.shape[2] // 6 * 6
        mosaic = cfa.mosaic(rgb[:, :h, :w], cfa.XTRANS)
        write_dng(out / f"{path.stem}.dng", mosaic, cfa.XTRANS, black_level=256, white_level=4095)
    logging.getLogger(__name__).info("wrote %d DNGs to %s", min(len(files), args.count), out)


if __name__ == "__main__":
    main()
