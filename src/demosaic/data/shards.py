"""Raw-teacher shards: build them from a folder of raw files, rank them by sharpness.

Layout of a shard folder (``out``)::

    build.json                 the settings it was built with (pairing, factor, teacher)
    manifest.json              all items + failed files (rewritten at the end of each build)
    items/<id>.json            one record per done raw file (written last: marks it done)
    shards/<id>.target.npy     (3, h, w) float16 linear balanced camera RGB, canonical phase
    shards/<id>.cfa.npy        (1, h, w) float16 real mosaic, balanced, canonical phase (native)

Both arrays are in **balanced camera RGB**: the file's as-shot multipliers (green = 1) applied
to the mosaic before demosaicking, the space ``demosaic-infer`` feeds the network
(:func:`demosaic.inference.develop.develop`). Each item's record keeps the multipliers (``wb``),
the camera's XYZ -> camera matrix (``xyz_to_cam``) and the file's noise level (``noise``: its
DNG ``NoiseProfile`` or the estimate, :func:`demosaic.noise.source.file_profile`).
    top200_sharp.json          written by rank_sharpness (the research log's file)

Pairings:

- ``downsample`` (default, factor 4): the teacher is box-filtered ``factor x factor`` in
  linear light; the dataset re-mosaics it with the canonical pattern, so input and target
  are exactly consistent (clean, aligned pairs, the research log's v4 data).
- ``native``: the real sensor mosaic (cropped to canonical phase) against the full-
  resolution teacher; at sampled positions the teacher equals the mosaic up to LibRaw's
  clipping to ``[0, 1]`` and 16-bit rounding.

Both arrays are cropped to the canonical phase (``cfa.align``) and to multiples of the
period. The build is resumable (an item whose ``items/<id>.json`` exists is skipped), runs
``workers`` processes with a progress bar, and a file that fails (corrupt, unsupported,
linear DNG) is logged, listed under ``failed`` in the manifest and retried on the next run.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import logging
import multiprocessing
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from demosaic.data.common import box_downsample
from demosaic.errors import ConfigError, DemosaicError, RawReadError
from demosaic.io.atomic import atomic_path, sweep_stale_temporaries
from demosaic.io.clash import check_outputs

log = logging.getLogger(__name__)

#: Version 2: balanced camera RGB (version 1 shards were unbalanced; rebuild them).
FORMAT = "demosaic-raw-teacher/2"
PAIRINGS = ("downsample", "native")
#: File suffixes scanned by default (case-insensitive).
RAW_EXTENSIONS = (".raf", ".dng", ".nef", ".nrw", ".cr2", ".cr3", ".crw", ".arw", ".srf",
                  ".sr2", ".orf", ".rw2", ".pef", ".srw", ".3fr", ".fff", ".iiq", ".erf",
                  ".mef", ".mos", ".x3f", ".raw", ".rwl", ".kdc", ".dcr")
#: Settings that must be equal to resume into an existing shard folder.
_FIXED = ("pairing", "factor", "algorithm")


@dataclass
class BuildReport:
    """Outcome of :func:`build_raw_teacher`.

    Attributes:
        built: Ids written by this run.
        skipped: Ids already done (resumed).
        failed: ``{"source": relative path, "error": message}`` per failed file.
        manifest: Path of ``manifest.json``.
    """

    built: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[dict[str, str]] = field(default_factory=list)
    manifest: Path | None = None


# --------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------


def laplacian_variance(rgb: np.ndarray) -> float:
    """Sharpness score: variance of the 4-neighbour Laplacian of the luma.

    The luma ``0.2126 R + 0.7152 G + 0.0722 B`` of the ``(3, H, W)`` linear image is divided
    by its 99th percentile (so exposure does not change the score), gamma-encoded like sRGB
    and clipped to ``[0, 1]`` (so the score follows visible detail, as on an 8-bit image);
    then ``var(4 y - y_up - y_down - y_left - y_right)`` over the interior. Higher = sharper.
    """
    from demosaic.color import linear_to_srgb

    rgb = np.asarray(rgb, dtype=np.float32)
    luma = 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2]
    scale = float(np.percentile(luma, 99))
    if scale <= 0 or luma.shape[0] < 3 or luma.shape[1] < 3:
        return 0.0
    y = np.clip(np.asarray(linear_to_srgb(np.maximum(luma / scale, 0.0)), dtype=np.float32), 0, 1)
    lap = (4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:])
    return float(lap.var())


def exposure_stats(cfa: np.ndarray) -> dict[str, float]:
    """Statistics of a normalised mosaic: mean, median, 99th percentile, max, and the
    fractions of clipped (``>= 0.999``) and negative pixels."""
    c = np.asarray(cfa, dtype=np.float32)
    return {"mean": float(c.mean()), "median": float(np.median(c)),
            "p99": float(np.percentile(c, 99)), "max": float(c.max()),
            "clipped_fraction": float((c >= 0.999).mean()),
            "negative_fraction": float((c < 0).mean())}


# --------------------------------------------------------------------------------------
# One file
# --------------------------------------------------------------------------------------


def item_id(rel: str) -> str:
    """Stable id of a source file: its sanitised stem plus 8 hex digits of its path hash."""
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(rel).stem)[:64] or "raw"
    return f"{stem}-{hashlib.sha1(rel.encode('utf-8')).hexdigest()[:8]}"


def planned_files(out_dir: Path, sources: Sequence[str]) -> list[Path]:
    """Every file a build into ``out_dir`` may write for ``sources`` (paths relative to the
    source folder): the settings, the manifest, and per file its record and shards."""
    per_item = [out_dir / sub for rel in sources for sub in (
        f"items/{item_id(rel)}.json", f"shards/{item_id(rel)}.target.npy",
        f"shards/{item_id(rel)}.cfa.npy")]
    return [out_dir / "build.json", out_dir / "manifest.json", *per_item]


def _save_npy(path: Path, arr: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)


def process_file(path: str, rel: str, out: str, pairing: str, factor: int,
                 algorithm: str) -> dict[str, Any]:
    """Read one raw file, compute its teacher, write its shard(s) and record.

    Returns the record (also written to ``out/items/<id>.json``). Raises
    :class:`~demosaic.errors.DemosaicError` (or a LibRaw error) for a file that cannot be used.
    """
    from demosaic.color import normalize_multipliers, white_balance_mosaic
    from demosaic.data.teacher import compute_teacher, sample_fidelity
    from demosaic.io.raw import read_raw
    from demosaic.noise.source import file_profile

    out_dir = Path(out)
    raw = read_raw(path)
    noise = file_profile(raw)
    al = raw.alignment
    p = al.pattern.period
    layout = np.asarray(raw.layout)[:p, :p]
    mult = normalize_multipliers(raw.wb_multipliers)
    balanced = white_balance_mosaic(raw.cfa, layout, mult)
    teacher, tinfo = compute_teacher(path, raw, algorithm)
    fidelity = sample_fidelity(teacher, balanced, layout, clip=float(mult.min()))
    cfa_c = balanced[al.dy :, al.dx :]
    teacher_c = teacher[al.dy :, al.dx :]
    if pairing == "downsample":
        small = box_downsample(teacher_c, factor)
        h, w = small.shape[0] - small.shape[0] % p, small.shape[1] - small.shape[1] % p
        target, mosaic = small[:h, :w].transpose(2, 0, 1), None
    else:
        h, w = cfa_c.shape[0] - cfa_c.shape[0] % p, cfa_c.shape[1] - cfa_c.shape[1] % p
        target, mosaic = teacher_c[:h, :w].transpose(2, 0, 1), cfa_c[None, :h, :w]
    if h < p or w < p:
        raise RawReadError(f"{path}: too small for a {pairing} pair ({raw.cfa.shape[1]}x"
                           f"{raw.cfa.shape[0]} px visible, factor {factor})")
    iid = item_id(rel)
    files = {"target": f"shards/{iid}.target.npy",
             "cfa": f"shards/{iid}.cfa.npy" if mosaic is not None else None}
    target16 = np.ascontiguousarray(target, dtype=np.float16)
    _save_npy(out_dir / files["target"], target16)
    if mosaic is not None:
        _save_npy(out_dir / files["cfa"], np.ascontiguousarray(mosaic, dtype=np.float16))
    record = {
        "id": iid, "source": rel, "camera": {"make": raw.make, "model": raw.model},
        "family": raw.family,
        "phase": {"observed": layout.tolist(), "dy": al.dy, "dx": al.dx,
                  "canonical": al.pattern.name},
        "teacher": {**tinfo, "fidelity": fidelity},
        "levels": {"black": np.asarray(raw.black_levels, dtype=np.float64).ravel().tolist(),
                   "white": float(np.asarray(raw.white_level).max())},
        "space": "balanced camera RGB",
        "wb": [float(v) for v in mult],
        "noise": {"profile": [float(f"{v:.6g}") for v in noise.as_list()],
                  "source": noise.source, "units": "S_R,O_R,S_G,O_G,S_B,O_B; variance S*x+O, "
                  "normalised raw before white balance"},
        "xyz_to_cam": np.asarray(raw.xyz_to_cam, dtype=np.float64).round(6).tolist(),
        "exposure": exposure_stats(raw.cfa[al.dy :, al.dx :]),
        "sharpness": laplacian_variance(target16),
        "pairing": pairing, "factor": factor if pairing == "downsample" else 1,
        "shape": [h, w], "files": files,
    }
    with atomic_path(out_dir / "items" / f"{iid}.json") as tmp:
        tmp.write_text(json.dumps(record, indent=1), encoding="utf-8")
    return record


def _safe_process(path: str, rel: str, out: str, pairing: str, factor: int,
                  algorithm: str) -> dict[str, Any]:
    """:func:`process_file`, returning ``{"source", "error"}`` instead of raising."""
    try:
        return process_file(path, rel, out, pairing, factor, algorithm)
    except DemosaicError as exc:
        return {"source": rel, "error": str(exc)}
    except Exception as exc:  # noqa: BLE001 - a corrupt file must not stop the build
        return {"source": rel, "error": f"{type(exc).__name__}: {exc}"}


# --------------------------------------------------------------------------------------
# Build
# --------------------------------------------------------------------------------------


def find_raw_files(source: Path, extensions: Sequence[str] = RAW_EXTENSIONS,
                   recursive: bool = True) -> list[Path]:
    """Raw files under ``source`` with one of ``extensions`` (case-insensitive), sorted."""
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    it = source.rglob("*") if recursive else source.iterdir()
    return sorted(p for p in it if p.is_file() and p.suffix.lower() in exts)


def _check_settings(out: Path, settings: dict[str, Any]) -> None:
    path = out / "build.json"
    if path.is_file():
        old = json.loads(path.read_text(encoding="utf-8"))
        diff = {k: (old.get(k), settings[k]) for k in _FIXED if old.get(k) != settings[k]}
        if diff:
            raise ConfigError(
                f"out: {out} was built with other settings "
                f"({', '.join(f'{k}={a!r}, now {b!r}' for k, (a, b) in diff.items())}); "
                "use a new out folder or the original settings to resume")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(settings, indent=1), encoding="utf-8")


def build_raw_teacher(source: str | Path, out: str | Path, *, pairing: str = "downsample",
                      factor: int = 4, algorithm: str = "dht", workers: int = 0,
                      extensions: Sequence[str] = RAW_EXTENSIONS, recursive: bool = True,
                      progress: bool = True) -> BuildReport:
    """Build (or resume) a raw-teacher shard folder from a folder of raw files.

    Args:
        source: Folder of raw files (RAF, DNG, anything LibRaw reads).
        out: Shard folder (created; resumed when it exists).
        pairing: ``downsample`` or ``native`` (see module docstring).
        factor: Box-filter factor of the ``downsample`` pairing (>= 1).
        algorithm: Teacher requested from LibRaw (``dht`` default; what runs is recorded).
        workers: Worker processes (0 = in this process).
        extensions: Suffixes to scan; recursive: scan sub-folders.
        progress: Show a tqdm bar.

    Returns:
        A :class:`BuildReport`; failed files are reported, never raised.

    Raises:
        ConfigError: bad settings, missing source, no raw file, or ``out`` built with
            other settings.
    """
    from demosaic.data.teacher import check_algorithm

    src = Path(source).expanduser()
    _check_build_args(source, src, pairing, factor, workers)
    algorithm = check_algorithm(algorithm)
    files = find_raw_files(src, extensions, recursive)
    if not files:
        raise ConfigError(f"source: no raw files ({', '.join(extensions)}) in {src}")
    out_dir = Path(out).expanduser()
    check_outputs(files, planned_files(out_dir, [f.relative_to(src).as_posix() for f in files]),
                  hint="give another out= folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    for folder in (out_dir, out_dir / "items", out_dir / "shards"):  # a killed build's debris
        sweep_stale_temporaries(folder)
    settings = {"format": FORMAT, "pairing": pairing, "factor": factor, "algorithm": algorithm,
                "source": str(src.resolve())}
    _check_settings(out_dir, settings)

    report = BuildReport()
    todo = _pending(files, src, out_dir, report)
    t0 = time.perf_counter()
    _run_build(todo, (str(out_dir), pairing, factor, algorithm), workers, progress, report)
    report.manifest = write_manifest(out_dir, settings, report.failed)
    log.info("raw teacher %s: %d built, %d skipped (done before), %d failed in %.1f s",
             out_dir, len(report.built), len(report.skipped), len(report.failed),
             time.perf_counter() - t0)
    if report.failed:
        log.warning("%d file(s) failed and were skipped (listed under 'failed' in %s): %s",
                    len(report.failed), report.manifest,
                    ", ".join(f["source"] for f in report.failed))
    return report


def _check_build_args(source: str | Path, src: Path, pairing: str, factor: int,
                      workers: int) -> None:
    """Settings of :func:`build_raw_teacher` that must fail before anything is read."""
    if not src.is_dir():
        raise ConfigError(f"source: folder {str(source)!r} does not exist (resolved to "
                          f"{src.resolve()}); give the folder of raw files, source=DIR")
    if pairing not in PAIRINGS:
        raise ConfigError(f"pairing: {pairing!r} is not one of {list(PAIRINGS)}")
    if factor < 1:
        raise ConfigError(f"factor: must be an integer >= 1, got {factor}")
    if workers < 0:
        raise ConfigError(f"workers: must be >= 0, got {workers}")


def _pending(files: Sequence[Path], src: Path, out_dir: Path, report: BuildReport
             ) -> list[tuple[str, str]]:
    """``(path, path relative to src)`` of the files not done yet; the done ones' ids go to
    ``report.skipped`` (resume)."""
    todo: list[tuple[str, str]] = []
    for f in files:
        rel = f.relative_to(src).as_posix()
        if (out_dir / "items" / f"{item_id(rel)}.json").is_file():
            report.skipped.append(item_id(rel))
        else:
            todo.append((str(f), rel))
    if report.skipped:
        log.info("resuming %s: %d of %d files already done, skipped", out_dir,
                 len(report.skipped), len(files))
    return todo


def _run_build(todo: Sequence[tuple[str, str]], args: tuple[str, str, int, str], workers: int,
               progress: bool, report: BuildReport) -> None:
    """Process ``todo`` here (``workers == 0``) or in ``workers`` processes, collecting each
    outcome into ``report`` (built ids, failures) with a progress bar."""
    from tqdm import tqdm

    bar = tqdm(total=len(todo), desc="raw teacher", unit="file", disable=not progress)

    def collect(result: dict[str, Any]) -> None:
        if "error" in result:
            log.warning("skipped %s: %s", result["source"], result["error"])
            report.failed.append(result)
        else:
            report.built.append(result["id"])
        bar.update(1)

    if workers == 0:
        for path, rel in todo:
            collect(_safe_process(path, rel, *args))
    else:
        ctx = _pool_context()
        with cf.ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            futures = {pool.submit(_safe_process, path, rel, *args): rel for path, rel in todo}
            for fut in cf.as_completed(futures):
                try:
                    collect(fut.result())
                except Exception as exc:  # noqa: BLE001 - e.g. a worker killed by LibRaw
                    collect({"source": futures[fut], "error": f"worker failed: {exc!r}"})
    bar.close()


def _pool_context() -> multiprocessing.context.BaseContext:
    """Process start method of the build workers: ``forkserver`` (the server imports this
    module once and forks each worker from it) where available, else ``spawn``. Plain
    ``fork`` is avoided: LibRaw uses OpenMP, whose thread pool does not survive a fork."""
    if "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return multiprocessing.get_context("spawn")


def write_manifest(out: Path, settings: dict[str, Any], failed: list[dict[str, str]]
                   ) -> Path:
    """Gather ``items/*.json`` into ``manifest.json`` (sorted by id) with the failures."""
    items = [json.loads(p.read_text(encoding="utf-8"))
             for p in sorted((out / "items").glob("*.json"))]
    done = {it["source"] for it in items}
    algos = sorted({it["teacher"]["algorithm"] for it in items})
    if any(it["teacher"]["replaced"] for it in items):
        log.warning("teacher: requested %r, LibRaw ran %s (recorded per item)",
                    settings["algorithm"], algos)
    manifest = {**settings, "items": items,
                "failed": [f for f in failed if f["source"] not in done],
                "teacher_algorithms": algos}
    path = out / "manifest.json"
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return path


def load_manifest(root: Path, key: str = "root") -> dict[str, Any]:
    """Read ``root/manifest.json`` of a shard folder.

    Raises:
        ConfigError: naming ``key`` when it is missing or not a raw-teacher manifest.
    """
    path = root / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{key}: cannot read {path} ({exc}); build the shards with "
                          "`demosaic-prepare raw_teacher source=RAW_DIR out=DIR`") from None
    if manifest.get("format") == "demosaic-raw-teacher/1":
        raise ConfigError(f"{key}: {path} holds version-1 shards (unbalanced camera RGB); the "
                          "models now train in balanced camera RGB: rebuild them with "
                          "`demosaic-prepare raw_teacher source=RAW_DIR out=NEW_DIR`")
    if manifest.get("format") != FORMAT:
        raise ConfigError(f"{key}: {path} is not a raw-teacher manifest (format "
                          f"{manifest.get('format')!r}, expected {FORMAT!r})")
    return manifest


# --------------------------------------------------------------------------------------
# Sharpness ranking
# --------------------------------------------------------------------------------------


def rank_sharpness(root: str | Path, top: int = 200, out: str | Path | None = None) -> Path:
    """Write the ``top`` sharpest items of a shard folder (Laplacian variance) as JSON.

    The file (default ``root/top{top}_sharp.json``) holds ``{"metric", "root", "top",
    "items": [{"id", "source", "sharpness"}, ...]}``, sharpest first; the ``raw_teacher``
    dataset's ``select`` key reads it (or any list of ids or source paths).
    """
    root_dir = Path(root).expanduser()
    if top <= 0:
        raise ConfigError(f"top: must be positive, got {top}")
    manifest = load_manifest(root_dir, "shards")
    items = sorted(manifest["items"], key=lambda it: (-it["sharpness"], it["id"]))[:top]
    data = {"metric": "laplacian_variance", "root": str(root_dir.resolve()), "top": top,
            "items": [{"id": it["id"], "source": it["source"], "sharpness": it["sharpness"]}
                      for it in items]}
    path = Path(out).expanduser() if out is not None else root_dir / f"top{top}_sharp.json"
    check_outputs([root_dir / "manifest.json", root_dir / "build.json",
                   *(root_dir / f for it in manifest["items"] for f in it["files"].values() if f),
                   *(root_dir / "items" / f"{it['id']}.json" for it in manifest["items"])],
                  [path], hint="give another out= file")
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
    log.info("wrote the %d sharpest of %d items to %s", len(items), len(manifest["items"]), path)
    return path
