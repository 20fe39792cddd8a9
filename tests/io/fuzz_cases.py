"""A deterministic set of damaged raw files for the fuzz test (tests/io/test_fuzz.py).

From two camera-realistic DNGs (an X-Trans and a Bayer one: a real body's colour matrix,
as-shot white balance, ISO 800 noise, margins, an odd CFA phase) it writes, in order:

- ``flip``: 1, 4, 32 or 256 random bits flipped anywhere in the file (header, IFD, data);
- ``trunc``: the file cut at offsets from 0 bytes through the header, the IFD, the tag values
  and the image data, to one byte short;
- ``tag``: one TIFF/DNG tag of the raw IFD set to a broken value: the CFA pattern's size and
  colours, black and white levels, the dimensions, the strip offsets and byte counts, bits
  per sample, samples per pixel, compression, the active area, the as-shot neutral, the colour
  matrix, the orientation, the DNG version; also a tag's type or count made invalid;
- ``zero`` / ``junk``: a block of the file overwritten with zeros or random bytes.

Every case is a file and a class name; the same seed gives the same bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

#: Broken values per tag number (each list element is one case; values are written in place,
#: over the tag's first ones, with the tag's own type).
TAG_DAMAGE: dict[int, list[list[float]]] = {
    33421: [[0, 0], [7, 7], [1, 6], [65535, 65535], [2, 6]],           # CFARepeatPatternDim
    33422: [[9] * 4, [255] * 4, [3, 3, 3, 3], [0, 0, 0, 0]],            # CFAPattern
    50714: [[65535], [16000], [1e9]],                                    # BlackLevel
    50717: [[0], [1], [65535 * 40000]],                                  # WhiteLevel
    256: [[0], [1], [65535], [2_000_000_000]],                           # ImageWidth
    257: [[0], [1], [65535], [2_000_000_000]],                           # ImageLength
    273: [[0], [2_000_000_000], [8]],                                    # StripOffsets
    279: [[0], [1], [2_000_000_000]],                                    # StripByteCounts
    258: [[0], [7], [32], [1]],                                          # BitsPerSample
    277: [[0], [3], [65535]],                                            # SamplesPerPixel
    259: [[7], [34892], [65535]],                                        # Compression
    262: [[2], [34892], [0]],                                            # PhotometricInterpretation
    50829: [[0, 0, 0, 0], [50, 60, 10, 20], [0, 0, 65535, 65535], [1, 1, 2, 2]],  # ActiveArea
    50728: [[0, 0, 0], [-1, -1, -1], [1e30, 1, 1]],                      # AsShotNeutral
    50721: [[0] * 9, [1e30] * 9, [-1] * 9],                              # ColorMatrix1
    274: [[0], [9], [65535]],                                            # Orientation
    50706: [[0, 0, 0, 0], [9, 9, 9, 9]],                                 # DNGVersion
    50719: [[65535, 65535]],                                             # DefaultCropOrigin
    50720: [[0, 0], [65535, 65535]],                                     # DefaultCropSize
}
#: Tags whose entry (type or count) is broken in the ``tag`` class.
ENTRY_DAMAGE = (33422, 50714, 50717, 50721, 50829, 273, 279)


def _ifd_tags(data: bytes) -> list[tuple[int, int, int, int, int]]:
    """``(code, dtype, count, entry offset, value offset)`` of every tag of every IFD."""
    import io

    found = []
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        for page in tif.pages:
            for tag in page.tags.values():
                found.append((tag.code, tag.dtype, tag.count, tag.offset, tag.valueoffset))
    return found


def _pack(dtype: int, values: list[float], byteorder: str) -> bytes:
    fmt = {1: "B", 3: "H", 4: "I", 5: "II", 8: "h", 9: "i", 10: "ii", 11: "f", 12: "d"}.get(dtype)
    if fmt is None:
        return b""
    out = b""
    for v in values:
        if dtype in (5, 10):  # rational: value / 1
            num = int(max(min(v, 2**31 - 1), -(2**31)))
            out += struct.pack(byteorder + fmt, num if dtype == 10 else abs(num), 1)
        elif dtype in (11, 12):
            out += struct.pack(byteorder + fmt, float(v))
        else:
            lim = {"B": 255, "H": 65535, "I": 2**32 - 1, "h": 32767, "i": 2**31 - 1}[fmt]
            out += struct.pack(byteorder + fmt, int(max(min(v, lim), -lim - 1 if fmt in "hi" else 0)))
    return out


def _tag_cases(data: bytes) -> Iterator[tuple[str, bytes]]:
    byteorder = "<" if data[:2] == b"II" else ">"
    tags = _ifd_tags(data)
    for code, damages in TAG_DAMAGE.items():
        for entry in (t for t in tags if t[0] == code):
            for k, values in enumerate(damages):
                packed = _pack(entry[1], values[: entry[2]], byteorder)
                if not packed:
                    continue
                b = bytearray(data)
                b[entry[4]: entry[4] + len(packed)] = packed
                yield f"tag{code}_{k}", bytes(b)
            break  # the first IFD holding the tag
    for code in ENTRY_DAMAGE:
        for entry in (t for t in tags if t[0] == code):
            for k, (dtype, count) in enumerate(((0, entry[2]), (13, entry[2]),
                                                (entry[1], 0), (entry[1], 2**31))):
                b = bytearray(data)
                b[entry[3] + 2: entry[3] + 8] = struct.pack(byteorder + "HI", dtype, count)
                yield f"entry{code}_{k}", bytes(b)
            break


def damaged_files(sources: list[Path], out: Path, seed: int = 0) -> list[tuple[Path, str]]:
    """Write the damaged variants of each source into ``out``; returns ``(path, class)``."""
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    cases: list[tuple[Path, str]] = []
    for src in sources:
        data = src.read_bytes()
        n = len(data)
        variants: list[tuple[str, str, bytes]] = []
        for bits in (1, 4, 32, 256):
            for k in range(6):
                b = bytearray(data)
                for pos in rng.integers(0, n * 8, size=bits):
                    b[pos // 8] ^= 1 << int(pos % 8)
                variants.append(("flip", f"flip{bits}_{k}", bytes(b)))
        header_cuts = [0, 1, 4, 8, 9, 16, 64, 128, 256, 512, 1024, 2048]
        for cut in sorted(set(header_cuts + [int(n * f) for f in (0.1, 0.3, 0.5, 0.7, 0.9, 0.99)]
                              + [n - 1])):
            if cut < n:
                variants.append(("trunc", f"trunc{cut}", data[:cut]))
        for name, blob in _tag_cases(data):
            variants.append(("tag", name, blob))
        for k in range(4):
            start = int(rng.integers(0, n))
            size = int(rng.integers(16, 4096))
            b = bytearray(data)
            b[start: start + size] = bytes(len(b[start: start + size]))
            variants.append(("zero", f"zero{k}", bytes(b)))
            b = bytearray(data)
            b[start: start + size] = rng.integers(0, 256, len(b[start: start + size]), dtype=np.uint8).tobytes()
            variants.append(("junk", f"junk{k}", bytes(b)))
        for cls, name, blob in variants:
            path = out / f"{src.stem}.{name}.dng"
            path.write_bytes(blob)
            cases.append((path, cls))
    return cases
