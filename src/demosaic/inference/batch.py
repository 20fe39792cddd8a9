"""Many raw files into a folder (``demosaic-infer FOLDER|GLOB|FILES... OUT/``).

:func:`infer_batch` expands the inputs (:func:`collect_inputs`), checks every planned output
against every input before any work (:func:`plan_batch`), removes a killed run's partial
files, skips outputs that exist (unless ``overwrite``), and runs a threaded pipeline: the next
raw file is read and the previous output written on their own threads while the network runs
(at most one file ahead and one behind, so memory stays bounded). A file that fails is
reported and the batch goes on. Outputs equal :func:`demosaic.inference.run.infer_file`'s.
"""

from __future__ import annotations

import glob
import logging
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from demosaic.errors import ConfigError, DemosaicError, WriteError, one_line
from demosaic.inference.run import CLASH_HINT, InferResult, prepare_output, run_inputs
from demosaic.inference.settings import InferSettings, output_kind
from demosaic.io.atomic import sweep_stale_temporaries
from demosaic.io.clash import check_outputs
from demosaic.io.raw import RawImage, read_raw
from demosaic.models.zoo import ModelSource

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """Outcome of :func:`infer_batch`: written, skipped (output existed) and failed files."""

    done: list[InferResult] = field(default_factory=list)
    skipped: list[InferResult] = field(default_factory=list)
    failed: list[tuple[Path, str]] = field(default_factory=list)


def _raw_extensions() -> tuple[str, ...]:
    from demosaic.data.shards import RAW_EXTENSIONS

    return RAW_EXTENSIONS


def is_glob(spec: str) -> bool:
    """Whether ``spec`` contains glob wildcards (``*``, ``?``, ``[``)."""
    return any(ch in spec for ch in "*?[")


def _camera_raws(paths: Iterable[Path]) -> list[Path]:
    """``paths`` sorted, less the linear DNGs this tool wrote (earlier outputs found in a
    folder or by a pattern; named one by one, they are refused as not being raw mosaics)."""
    from demosaic.io.dng import is_own_linear_dng

    keep, own = [], []
    for f in sorted(paths):
        (own if f.suffix.lower() == ".dng" and is_own_linear_dng(f) else keep).append(f)
    if own:
        log.info("not reading %d linear DNG(s) written by demosaic-infer as inputs: %s",
                 len(own), ", ".join(f.name for f in own[:5]) + (" ..." if len(own) > 5 else ""))
    return keep


def collect_inputs(spec: str | os.PathLike[str] | Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Expand a file, a folder (its raw files, by extension, not recursive) or a glob
    pattern (``**`` recurses), or a list of those, into a sorted list of files.

    Raises:
        ConfigError: when nothing matches.
    """
    specs = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    found: list[Path] = []
    exts = _raw_extensions()
    for s in specs:
        p = Path(s)
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            found += _camera_raws(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in exts)
        elif is_glob(str(s)):
            found += _camera_raws(Path(f) for f in glob.glob(str(s), recursive=True)
                                  if Path(f).is_file())
        else:
            raise ConfigError(f"input {s} is neither a file, a folder nor a glob pattern; check "
                              "the path")
    unique = sorted(dict.fromkeys(found))
    if not unique:
        raise ConfigError(f"no raw files found in {', '.join(map(str, specs))} (extensions "
                          f"{', '.join(exts)}); check the folder or pattern")
    return unique


def output_for(input_path: Path, output_dir: Path, ext: str, suffix: str = "") -> Path:
    """``output_dir / (input stem + suffix + ext)``."""
    return output_dir / (input_path.stem + suffix + ext)


def plan_batch(files: list[Path], output_dir: Path, ext: str, suffix: str = "",
               checkpoint: str | os.PathLike[str] | None = None) -> list[tuple[Path, Path]]:
    """``(input, output)`` pairs of a batch, checked before any work.

    Raises:
        OutputClashError: an output would replace an input (or the checkpoint), or two
            outputs are one file (:func:`demosaic.io.clash.check_outputs`).
    """
    pairs = [(f, output_for(f, output_dir, ext, suffix)) for f in files]
    check_outputs(run_inputs(files, checkpoint), [t for _, t in pairs],
                  hint=CLASH_HINT + ", or process same-named inputs in separate runs")
    return pairs


def _output_folder(out_dir: Path) -> None:
    """Make ``out_dir`` and check it is writable, then sweep a killed run's temporaries.

    Raises:
        WriteError: it cannot be made or written (nothing was written).
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(f"cannot make the output folder {out_dir}: {exc.strerror}; choose "
                         "another folder") from exc
    if not os.access(out_dir, os.W_OK | os.X_OK):
        raise WriteError(f"the output folder {out_dir} is not writable (read-only file system "
                         "or no permission); choose another folder. Nothing was written")
    sweep_stale_temporaries(out_dir)


def infer_batch(
    inputs: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    output_dir: str | os.PathLike[str],
    *,
    ext: str = ".exr",
    suffix: str = "",
    overwrite: bool = False,
    checkpoint: str | os.PathLike[str] | None = None,
    model: str | None = None,
    device: str | torch.device | None = "auto",
    views: int | None = None,
    progress: bool = True,
    **kwargs: Any,
) -> BatchResult:
    """Demosaic many raw files into ``output_dir`` (``<stem><suffix><ext>`` each).

    Every output is checked against every input first (:func:`plan_batch`): an output never
    replaces a source, ``overwrite`` included. Files whose output exists are skipped unless
    ``overwrite``; a file that fails (corrupt, wrong CFA family) is logged and reported in
    :attr:`BatchResult.failed`, and the batch goes on. Partial files that a killed run left in
    ``output_dir`` are removed first (:func:`demosaic.io.atomic.sweep_stale_temporaries`).
    ``kwargs`` are :func:`~demosaic.inference.run.infer_file`'s settings
    (:class:`~demosaic.inference.settings.InferSettings`: tile, overlap, color_space,
    white_balance, highlights, float32, exr_compression, tiff_encoding, amp). The model is
    loaded once; the next file is read and the previous output written on their own threads
    while the network runs.

    Raises:
        ConfigError: no inputs, a bad extension or setting; OutputClashError: see
            :func:`plan_batch`.
    """
    files = collect_inputs(inputs)
    out_dir = Path(output_dir)
    output_kind(Path("x" + ext))
    pairs = plan_batch(files, out_dir, ext, suffix, checkpoint)
    _output_folder(out_dir)
    source = ModelSource(checkpoint, model, device, views)
    settings = InferSettings.from_kwargs("infer_batch", **kwargs)
    settings.check(pairs[0][1])
    result = BatchResult()
    todo = []
    for f, t in pairs:
        if t.exists() and not overwrite:
            result.skipped.append(InferResult(f, t, skipped=True))
        else:
            todo.append((f, t))
    if result.skipped:
        log.info("skipping %d file(s) whose output exists in %s (pass --overwrite to redo them)",
                 len(result.skipped), out_dir)
    _pipeline(todo, source, settings, result, progress)
    log.info("batch: %d written, %d skipped, %d failed", len(result.done), len(result.skipped),
             len(result.failed))
    return result


def _read(path: Path) -> RawImage | DemosaicError:
    """``read_raw`` for the reader thread: a failure is returned, to be reported in order."""
    try:
        return read_raw(path)
    except DemosaicError as exc:
        return exc


#: A file whose output waits for the writer thread: input, output, size, start, the write.
_Pending = tuple[Path, Path, tuple[int, int], float, Future]


def _pipeline(todo: list[tuple[Path, Path]], source: ModelSource, settings: InferSettings,
              result: BatchResult, progress: bool) -> None:
    """Demosaic ``todo`` with the next file read and the previous output written on two
    threads while the network runs (at most one raw file ahead and one output behind, so
    memory stays bounded). Outputs are the same as ``infer_file``'s."""
    from tqdm.auto import tqdm

    bar = tqdm(total=len(todo), desc="demosaic", unit="file", disable=not progress)
    failed = _failure_recorder(result, bar)
    pending: _Pending | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="write") as writer:
        ahead = reader.submit(_read, todo[0][0]) if todo else None
        for i, (f, t) in enumerate(todo):
            t0 = time.perf_counter()
            raw = ahead.result()  # type: ignore[union-attr]
            ahead = reader.submit(_read, todo[i + 1][0]) if i + 1 < len(todo) else None
            bar.set_postfix_str(f.name)
            try:
                if isinstance(raw, DemosaicError):
                    raise raw
                size, write = prepare_output(raw, t, source, settings)
                del raw
            except DemosaicError as exc:
                failed(f, exc)
                continue
            _finish(pending, result, failed, bar)  # at most one output waits for its writer
            pending = (f, t, size, t0, writer.submit(write))
        _finish(pending, result, failed, bar)
    bar.close()


def _failure_recorder(result: BatchResult, bar: Any) -> Callable[[Path, DemosaicError], None]:
    """Log a file's failure in one line, record it and advance the bar."""
    def failed(f: Path, exc: DemosaicError) -> None:
        log.error("%s", one_line(exc))
        result.failed.append((f, one_line(exc)))
        bar.update(1)

    return failed


def _finish(item: _Pending | None, result: BatchResult,
            failed: Callable[[Path, DemosaicError], None], bar: Any) -> None:
    """Wait for a pending write; record it as done (or failed)."""
    if item is None:
        return
    f, t, size, t0, future = item
    try:
        future.result()
    except DemosaicError as exc:
        failed(f, exc)
        return
    result.done.append(InferResult(f, t, size, time.perf_counter() - t0))
    log.info("wrote %s (%dx%d)", t, size[1], size[0])
    bar.update(1)


__all__ = ["BatchResult", "collect_inputs", "infer_batch", "is_glob", "output_for",
           "plan_batch"]
