"""Output identity: `demosaic-infer`'s outputs over a fixed matrix of files and settings,
fingerprinted, so a refactor can prove its outputs bit-identical to a reference commit.

The matrix: camera-realistic DNGs (X-Trans at four CFA phases and margins, one over-exposed
by a stop for clipped highlights, one under tungsten light with a white-balance error, and
two Bayer files) developed through the command's entry point with each highlight mode, each
white balance, several colour spaces, EXR (half and float), TIFF and linear DNG, the default,
quality and bilinear models, tiled and whole, single files and a folder run.

    python scripts/checks/output_identity.py write REF.json [--work DIR]   # at the reference
    python scripts/checks/output_identity.py check REF.json [--work DIR]   # after the change

``check`` exits 1 and lists every case whose pixels or metadata differ. Pixels are compared
as decoded arrays (bit for bit); metadata as the header's attributes and tags, less the
volatile ones (file times, an ICC profile's creation date).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "demosaic" / "assets" / "samples"

#: (name, family, image, crop (H, W), ISO, protocol index (phase, margins), conditions)
FILES = [
    ("xt_a", "xtrans", "val/102061.png", (132, 180), 800, 0, {}),
    ("xt_b", "xtrans", "val/145086.png", (126, 170), 100, 1, {}),
    ("xt_c", "xtrans", "train/101084.jpg", (150, 150), 3200, 2, {}),
    ("xt_hi", "xtrans", "train/113044.jpg", (144, 192), 800, 3, {"exposure": 2.0}),
    ("xt_tung", "xtrans", "train/187058.jpg", (138, 174), 800, 4,
     {"illuminant": "tungsten", "wb_error": 0.1}),
    ("bayer_a", "bayer", "train/235098.jpg", (128, 176), 800, 0, {}),
    ("bayer_hi", "bayer", "train/250047.jpg", (130, 160), 400, 1, {"exposure": 2.0}),
]

#: (case name, files, output extension, extra demosaic-infer arguments)
CASES: list[tuple[str, list[str], str, list[str]]] = [
    ("default", ["xt_a", "xt_b", "xt_c", "xt_hi", "xt_tung", "bayer_a", "bayer_hi"], ".exr", []),
    ("reconstruct", ["xt_hi", "bayer_hi"], ".exr", ["--highlights", "reconstruct"]),
    ("hl_none", ["xt_hi", "bayer_hi"], ".exr", ["--highlights", "none"]),
    ("wb_daylight", ["xt_tung", "bayer_a"], ".exr", ["--white-balance", "daylight"]),
    ("wb_none", ["xt_hi", "bayer_a"], ".exr", ["--white-balance", "none"]),
    ("wb_custom", ["xt_tung"], ".exr", ["--white-balance", "2.1,1,1.5"]),
    ("acescg", ["xt_a", "bayer_a"], ".exr", ["--color-space", "acescg"]),
    ("camera_space", ["xt_tung"], ".exr", ["--color-space", "camera", "--white-balance", "none"]),
    ("rec2020_float", ["xt_b"], ".exr", ["--color-space", "rec2020", "--float"]),
    ("tiff", ["xt_a", "bayer_hi"], ".tif", []),
    ("tiff_linear", ["xt_hi"], ".tif", ["--tiff-encoding", "linear"]),
    ("dng", ["xt_hi", "bayer_a"], ".dng", []),
    ("tiles", ["xt_c", "bayer_a"], ".exr", ["--tile", "48"]),
    ("whole", ["xt_b"], ".exr", ["--tile", "0"]),
    ("quality", ["xt_a", "bayer_hi"], ".exr", ["--model", "quality"]),
    ("bilinear", ["xt_b", "bayer_a"], ".exr", ["--model", "bilinear"]),
    ("views4", ["xt_c"], ".exr", ["--views", "4"]),
]
#: Metadata that differs between runs by nature, not by code.
VOLATILE = ("DateTime", "capDate", "utcOffset")


def make_files(folder: Path) -> dict[str, Path]:
    """Write :data:`FILES` as camera-protocol DNGs into ``folder``."""
    from demosaic.evaluation.capture import CameraProtocol, CaptureConditions, prepare_case
    from demosaic.io.images import read_image_linear

    out = {}
    for name, family, image, (h, w), iso, index, cond in FILES:
        rgb = read_image_linear(SAMPLES / image)[:, :h, :w]
        protocol = CameraProtocol(family=family, iso=iso, conditions=CaptureConditions(**cond))
        case = prepare_case(name, rgb, index, protocol, folder / "cache")
        out[name] = case.dng.replace(folder / f"{name}.dng")
    return out


def _tag_text(tag: Any) -> str:
    """A TIFF tag's value as text; an ICC profile less its creation date and profile id."""
    value = tag.value
    if tag.name == "InterColorProfile":
        value = bytes(value)
        value = hashlib.sha256(value[:24] + value[36:84] + value[100:]).hexdigest()
    return str(value)[:2000]


def fingerprint(path: Path) -> dict[str, Any]:
    """sha256 of the decoded pixels and the non-volatile metadata of one output."""
    import tifffile

    from demosaic.io.images import read_exr

    if path.suffix == ".exr":
        pixels, meta = read_exr(path)
        meta = {k: v for k, v in meta.items() if not any(s in k for s in VOLATILE)}
    else:
        with tifffile.TiffFile(path) as tif:
            pixels = np.concatenate([p.asarray().ravel() for p in tif.pages]
                                    + [s.asarray().ravel() for p in tif.pages for s in p.pages or ()])
            meta = {f"{i}:{t.name}": _tag_text(t) for i, p in enumerate(tif.pages)
                    for t in p.tags.values() if t.name not in VOLATILE and t.code != 34665}
    return {"pixels": hashlib.sha256(np.ascontiguousarray(pixels).tobytes()).hexdigest(),
            "shape": list(np.shape(pixels)), "meta": meta}


def run_cases(work: Path) -> dict[str, Any]:
    """Run every case (single files, plus the ``default`` case as a folder run too)."""
    from demosaic.cli.infer import main as infer_main

    files = make_files(work / "raws")
    result: dict[str, Any] = {}
    for case, names, ext, extra in CASES:
        for name in names:
            out = work / "out" / case / f"{name}{ext}"
            rc = infer_main([str(files[name]), str(out), "--no-progress", "--device", "cpu", *extra])
            if rc:
                raise SystemExit(f"{case}/{name}: demosaic-infer exited {rc}")
            result[f"{case}/{name}"] = fingerprint(out)
    folder = work / "folder"
    folder.mkdir()
    for name in CASES[0][1]:
        shutil.copy2(files[name], folder / f"{name}.dng")
    infer_main([str(folder), str(work / "out_folder"), "--no-progress", "--device", "cpu"])
    for name in CASES[0][1]:
        result[f"folder/{name}"] = fingerprint(work / "out_folder" / f"{name}.exr")
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=("write", "check"))
    p.add_argument("reference", type=Path)
    p.add_argument("--work", type=Path, default=None, help="keep the outputs here")
    args = p.parse_args(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="identity-"))
    result = run_cases(work)
    if args.mode == "write":
        args.reference.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
        print(f"{len(result)} outputs fingerprinted into {args.reference}")
        return 0
    ref = json.loads(args.reference.read_text())
    diff = [k for k in sorted(set(ref) | set(result)) if ref.get(k) != result.get(k)]
    for k in diff:
        old, new = ref.get(k) or {}, result.get(k) or {}
        what = "pixels" if old.get("pixels") != new.get("pixels") else "metadata"
        print(f"DIFFERS {k}: {what}")
        if what == "metadata":
            keys = set(old.get("meta", {})) | set(new.get("meta", {}))
            for m in sorted(x for x in keys if old["meta"].get(x) != new["meta"].get(x))[:5]:
                print(f"    {m}: {str(old['meta'].get(m))[:150]!r} -> {str(new['meta'].get(m))[:150]!r}")
    print(f"{len(result) - len(diff)} of {len(result)} outputs identical")
    return 1 if diff else 0


if __name__ == "__main__":
    sys.exit(main())
