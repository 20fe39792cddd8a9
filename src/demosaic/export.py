"""Export a trained demosaicker to ONNX or TorchScript, verified against PyTorch.

Both formats take a mosaic ``(N, 1, H, W)`` float32 in the **canonical phase** of the
checkpoint's CFA, linear light (white = 1.0), with ``H`` and ``W`` multiples of the model's
``size_multiple`` (stored in the exported file's metadata), and return linear RGB
``(N, 3, H, W)``, unclamped. ``N``, ``H`` and ``W`` are dynamic: the check runs the exported
file at two sizes (the trace size, and a larger batch-2 size) and fails when the largest
absolute difference from PyTorch exceeds ``tolerance``; on failure no file is left behind.

ONNX uses ``torch.onnx.export(dynamo=False)`` (the TorchScript-based exporter: it needs only
the ``onnx`` package, not ``onnxscript``) and is checked with onnxruntime. Optional INT8
quantization (ONNX only) writes ``<out stem>.int8.onnx`` next to the float model and measures
its quality change on a synthetic test scene: PSNR of the float and the INT8 model against
the known truth, and of INT8 against float.

``onnx`` and ``onnxruntime`` are the optional extra ``pip install demosaic[export]``.
"""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

import demosaic
from demosaic.metrics import psnr
from demosaic.models.checkpoint import file_sha256, load_checkpoint, load_model, release_checkpoint
from demosaic.inference.tiling import receptive_field
from demosaic.errors import ConfigError, DemosaicError
from demosaic.io.atomic import atomic_path
from demosaic.io.clash import check_outputs
from demosaic.sim.scenes import scene_mosaic

log = logging.getLogger(__name__)

#: ``checkpoint``: a release checkpoint (:func:`~demosaic.models.checkpoint.release_checkpoint`), loadable wherever a
#: checkpoint is, verified like the others.
FORMATS = ("onnx", "torchscript", "checkpoint")
INT8_MODES = ("static", "dynamic")
#: Input names of exported models: the mosaic, and a noise-aware model's (N, 2, 3) level.
INPUT_NAMES = ["cfa", "noise"]
#: Default largest allowed absolute difference between the exported model and PyTorch.
DEFAULT_TOLERANCE = 1e-4
OPSET = 17


class ExportError(DemosaicError):
    """An export failed, or the exported model disagrees with PyTorch."""


@dataclass
class ExportReport:
    """What :func:`export_model` wrote and measured.

    Attributes:
        format: ``"onnx"``, ``"torchscript"`` or ``"checkpoint"``.
        path: The exported float model.
        checks: ``{"NxCxHxW": max_abs_diff}`` for each checked input shape.
        max_abs_diff: Largest difference over all checks (linear-light units).
        tolerance: The bound it was checked against.
        size_multiple: ``H`` and ``W`` of inputs must be multiples of it.
        cfa: Pattern name of the model (canonical phase).
        int8_path, int8_mode: Quantized model and how it was quantized (``None`` if not asked).
        psnr_float_db, psnr_int8_db: PSNR against the test scene's truth (peak 1.0).
        psnr_int8_vs_float_db: PSNR of the INT8 output against the float output.
        seconds: Wall time of the whole export.
    """

    format: str
    path: Path
    checks: dict[str, float] = field(default_factory=dict)
    max_abs_diff: float = 0.0
    tolerance: float = DEFAULT_TOLERANCE
    size_multiple: int = 1
    cfa: str = ""
    int8_path: Path | None = None
    int8_mode: str | None = None
    psnr_float_db: float | None = None
    psnr_int8_db: float | None = None
    psnr_int8_vs_float_db: float | None = None
    seconds: float = 0.0

    def summary(self) -> str:
        """Human-readable lines for the command line."""
        lines = [f"exported {self.format} -> {self.path}",
                 f"  check vs PyTorch: max abs diff {self.max_abs_diff:.3g} "
                 f"(tolerance {self.tolerance:g}) over shapes {', '.join(self.checks)}",
                 f"  input: (N, 1, H, W) float32, {self.cfa} canonical phase, H and W multiples of "
                 f"{self.size_multiple}"]
        if self.int8_path is not None:
            lines += [f"  int8 ({self.int8_mode}) -> {self.int8_path}",
                      f"  quality on the synthetic test scene: float {self.psnr_float_db:.2f} dB, "
                      f"int8 {self.psnr_int8_db:.2f} dB "
                      f"(change {self.psnr_int8_db - self.psnr_float_db:+.2f} dB); "
                      f"int8 vs float {self.psnr_int8_vs_float_db:.2f} dB"]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        d["int8_path"] = str(self.int8_path) if self.int8_path else None
        return d


# --------------------------------------------------------------------------------------
# Export
# --------------------------------------------------------------------------------------


def _require_onnx() -> tuple[Any, Any]:
    try:
        import onnx
        import onnxruntime
    except ImportError as exc:
        raise ConfigError(f"ONNX export needs the optional packages onnx and onnxruntime ({exc}); "
                          "install them with: pip install 'demosaic[export]'") from None
    return onnx, onnxruntime


def _ort_session(path: Path) -> Any:
    _, ort = _require_onnx()
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _check_shapes(multiple: int, size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    h, w = (max(multiple, (s // multiple) * multiple) for s in size)
    return [(1, 1, h, w), (2, 1, h + multiple, w + 2 * multiple)]


def _metadata(ckpt: Mapping[str, Any], model: nn.Module, source: str) -> dict[str, str]:
    return {
        "demosaic_version": demosaic.__version__,
        "checkpoint": source,
        "model": json.dumps(ckpt.get("model", {})),
        "cfa": model.pattern.name,
        "size_multiple": str(model.size_multiple),
        "step": str(ckpt.get("step", "")),
        "run_name": str(ckpt.get("run_name", "")),
        "input": "cfa (N,1,H,W) float32, canonical phase, linear, H and W multiples of size_multiple"
                 + ("; noise (N,2,3) float32, [[m_c S_c], [m_c^2 O_c]] for R,G,B: the white-"
                    "balanced noise level (demosaic.noise.NoiseProfile.balanced; zeros = clean)"
                    if getattr(model, "noise_input", False) else ""),
        "output": "rgb (N,3,H,W) float32, linear camera RGB, unclamped",
    }


def _source_model(checkpoint: str | os.PathLike[str] | Mapping[str, Any], cfa: str
                  ) -> tuple[dict[str, Any], nn.Module, str, Path | None]:
    """``(checkpoint dict, model, source name, weights file or None)`` of what to export: a
    checkpoint path or dict, a tag of the packaged weights (:data:`demosaic.models.zoo.TAGS`:
    ``xtrans.default`` is the packaged checkpoint, ``xtrans.quality`` the ensemble) or a named
    ensemble of :data:`demosaic.models.zoo.ENSEMBLES` (``"quality"``: the packaged quality
    model of ``cfa``'s family)."""
    from demosaic.cfa import CANONICAL
    from demosaic.models.zoo import ENSEMBLES, TAGS, ensemble_method, shipped_checkpoint

    if isinstance(checkpoint, Mapping):
        ckpt = dict(checkpoint)
        return ckpt, load_model(ckpt, device="cpu"), "<dict>", None
    name = str(checkpoint)
    if name in TAGS and not Path(name).exists():
        family, variant = TAGS[name]
        if variant == "default":
            checkpoint = shipped_checkpoint(family)
        else:
            name, cfa = variant, CANONICAL[family].name
    if name in ENSEMBLES and not Path(checkpoint).exists():
        method = ensemble_method(name, cfa=cfa)
        base = Path(method.info["checkpoint"])
        ckpt = {"model": method.info["model"], "step": method.info.get("step"),
                "run_name": method.info.get("run_name", "")}
        return ckpt, method.demosaicker, f"{checkpoint} ({method.description})", base
    ckpt = load_checkpoint(checkpoint)
    return ckpt, load_model(ckpt, device="cpu"), str(checkpoint), Path(checkpoint)


def _check_request(fmt: str, int8: str | None, half: bool) -> None:
    """Raise :class:`ConfigError` for a format, INT8 mode or ``half`` that do not go together
    (and when ONNX is asked for without its packages)."""
    if fmt not in FORMATS:
        raise ConfigError(f"export format {fmt!r} is not supported; use one of {FORMATS}")
    if int8 is not None and int8 not in INT8_MODES:
        raise ConfigError(f"int8 mode {int8!r} is not supported; use one of {INT8_MODES}")
    if int8 is not None and fmt != "onnx":
        raise ConfigError("INT8 quantization is available for --format onnx only (onnxruntime "
                          "quantization); drop --int8 or use --format onnx")
    if half and fmt != "checkpoint":
        raise ConfigError("float16 weights (--half) apply to --format checkpoint only")
    if fmt == "onnx":
        _require_onnx()


def export_model(
    checkpoint: str | os.PathLike[str] | Mapping[str, Any],
    fmt: Literal["onnx", "torchscript", "checkpoint"],
    out: str | os.PathLike[str],
    *,
    int8: Literal["static", "dynamic"] | None = None,
    half: bool = False,
    size: tuple[int, int] = (192, 288),
    tolerance: float = DEFAULT_TOLERANCE,
    opset: int = OPSET,
    seed: int = 0,
    cfa: str = "xtrans",
) -> ExportReport:
    """Export a checkpoint's model and verify it against PyTorch.

    Args:
        checkpoint: Checkpoint path or loaded dict (:mod:`demosaic.models.checkpoint`), a tag
            of the packaged weights (``xtrans.default``, ``xtrans.quality``, ``bayer.default``:
            :data:`demosaic.models.zoo.TAGS`), or ``"quality"`` (the packaged quality model
            of ``cfa``'s family: :func:`demosaic.models.zoo.ensemble_method`).
        fmt: ``"onnx"``, ``"torchscript"`` or ``"checkpoint"`` (a release checkpoint of a
            trained checkpoint: :func:`demosaic.models.checkpoint.release_checkpoint`).
        out: Destination file (``.onnx`` / ``.pt``); written atomically, only if the check
            passes.
        half: ``checkpoint`` only: store the weights as float16 (half the file; they load
            into float32 models, so the outputs differ by the weights' rounding, checked
            against ``tolerance``).
        int8: ONNX only: ``"static"`` (QDQ, calibrated on synthetic mosaics) or
            ``"dynamic"`` INT8 quantization of the convolutions, written as
            ``<out stem>.int8.onnx``; its quality change is measured, not bounded.
        size: ``(H, W)`` of the trace/check input, rounded down to the size multiple; a second
            check runs a larger batch of 2 to prove the dynamic axes.
        tolerance: Largest allowed absolute difference from PyTorch (values are ~[0, 1]).
        opset: ONNX opset.
        seed: Seed of the random check mosaics and the synthetic test scene.
        cfa: The CFA whose shipped model a named ensemble uses (ignored for checkpoints).

    Raises:
        ConfigError: unknown format/mode, INT8 with TorchScript, missing onnx packages.
        CheckpointError: unreadable checkpoint.
        ExportError: the exporter failed or the exported model differs beyond ``tolerance``.
    """
    t0 = time.perf_counter()
    _check_request(fmt, int8, half)
    out = Path(out)
    planned = [out] + ([out.with_name(out.stem + ".int8.onnx")] if int8 is not None else [])
    check_outputs([checkpoint] if isinstance(checkpoint, (str, os.PathLike)) else [], planned,
                  hint="name another --out file")
    ckpt, model, source, weights = _source_model(checkpoint, cfa)
    if fmt == "checkpoint" and "state_dict" not in ckpt:
        raise ConfigError(f"{source} is an ensemble of a packaged model, not a trained checkpoint; "
                          "--format checkpoint takes a .pt written by demosaic-train")
    meta = _metadata(ckpt, model, source)
    if weights is not None:  # identifies the exact weights exported
        meta["checkpoint_sha256"] = file_sha256(weights)
    if int8 is not None and getattr(model, "noise_input", False):
        raise ConfigError(f"{source} takes the noise level as a second input; --int8 supports "
                          "single-input models only (INT8 did not pay on this CPU: "
                          "docs/BENCHMARKS.md, Export); export it without --int8")
    gen = torch.Generator().manual_seed(seed)
    inputs = [_example(model, s, gen) for s in _check_shapes(model.size_multiple, size)]
    report = ExportReport(format=fmt, path=out, tolerance=tolerance,
                          size_multiple=model.size_multiple, cfa=model.pattern.name)
    with atomic_path(out) as tmp:
        _write_checked(report, model, inputs, tmp, source,
                       lambda net, x, path: _write_format(fmt, net, x, path, opset, meta, ckpt, half))
    log.info("exported %s to %s; max abs diff vs PyTorch %.3g", fmt, out, report.max_abs_diff)
    if int8 is not None:
        _quantize(report, model, out, int8, size, seed)
    report.seconds = time.perf_counter() - t0
    return report


def _example(model: nn.Module, shape: tuple[int, ...], gen: torch.Generator
             ) -> tuple[torch.Tensor, ...]:
    """One check input: ``(mosaic,)``, or ``(mosaic, noise coefficients (N, 2, 3))`` for a
    noise-aware model (levels of an ISO 100-12800 capture: shot 1e-5..1e-3, read 1e-9..1e-6)."""
    x = torch.rand(shape, generator=gen)
    if not getattr(model, "noise_input", False):
        return (x,)
    scale = 10 ** (-5 + 2 * torch.rand(shape[0], 1, 3, generator=gen))
    offset = 10 ** (-9 + 3 * torch.rand(shape[0], 1, 3, generator=gen))
    return x, torch.cat([scale, offset], dim=1)


def _write_format(fmt: str, model: nn.Module, example: tuple[torch.Tensor, ...], path: Path,
                  opset: int,
                  meta: Mapping[str, str], ckpt: Mapping[str, Any], half: bool) -> None:
    """Write ``model`` as ``fmt`` to ``path`` (``example``: the trace input)."""
    if fmt == "onnx":
        _export_onnx(model, example, path, opset, meta)
    elif fmt == "checkpoint":
        torch.save(release_checkpoint(ckpt, half=half, receptive_radius=receptive_field(model)),
                   path)
    else:
        _export_torchscript(model, example, path, meta)


def _write_checked(report: ExportReport, model: nn.Module, inputs: list[tuple[torch.Tensor, ...]],
                   tmp: Path, source: str,
                   write: Callable[[nn.Module, tuple[torch.Tensor, ...], Path], None]) -> None:
    """``write`` the exported file to ``tmp``, run it on ``inputs`` (``(N, 1, H, W)``
    mosaics, values in [0, 1), and a noise-aware model's ``(N, 2, 3)`` levels) and record its largest absolute difference from PyTorch per
    input in ``report``.

    Raises:
        ExportError: the exporter failed, or a shape or a difference beyond
            ``report.tolerance`` (the caller's atomic write then leaves nothing behind).
    """
    fmt, tolerance = report.format, report.tolerance
    with torch.inference_mode():
        refs = [model(*x).numpy() for x in inputs]
    with warnings.catch_warnings():
        # The TorchScript-based tracers are deprecated in torch >= 2.9 but remain the
        # exporters that need no extra packages; their warnings are not actionable here.
        warnings.simplefilter("ignore")
        try:
            write(model, inputs[0], tmp)
        except DemosaicError:
            raise
        except Exception as exc:  # exporters raise many types
            raise ExportError(f"{fmt} export of {source} failed: {exc.__class__.__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''}") from exc
        outs = _run_exported(fmt, tmp, inputs)
    for x, ref, got in zip(inputs, refs, outs):
        key = "x".join(str(s) for s in x[0].shape)
        if got.shape != ref.shape:
            raise ExportError(f"exported {fmt} model returned shape {got.shape} for input {key}; "
                              f"PyTorch returned {ref.shape}")
        report.checks[key] = float(np.max(np.abs(got - ref)))
    report.max_abs_diff = max(report.checks.values())
    if not report.max_abs_diff <= tolerance:
        raise ExportError(
            f"exported {fmt} model differs from PyTorch by {report.max_abs_diff:.3g} (max abs, "
            f"shapes {list(report.checks)}), above the tolerance {tolerance:g}; nothing was "
            f"written to {report.path}. Raise --tolerance only if the difference is acceptable")


def _export_onnx(net: nn.Module, example: tuple[torch.Tensor, ...], path: Path, opset: int,
                 meta: Mapping[str, str]) -> None:
    onnx, _ = _require_onnx()
    axes = {0: "batch", 2: "height", 3: "width"}
    names = INPUT_NAMES[:len(example)]
    torch.onnx.export(net, example, str(path), dynamo=False, input_names=names,
                      output_names=["rgb"],
                      dynamic_axes={"cfa": axes, "rgb": axes, **({"noise": {0: "batch"}}
                                                                 if len(example) > 1 else {})},
                      opset_version=opset, do_constant_folding=True)
    proto = onnx.load(str(path))
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    proto.producer_name = "demosaic"
    proto.producer_version = demosaic.__version__
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def _export_torchscript(net: nn.Module, example: tuple[torch.Tensor, ...], path: Path,
                        meta: Mapping[str, str]) -> None:
    traced = torch.jit.trace(net, example, check_trace=False)
    torch.jit.save(traced, str(path), _extra_files={"demosaic.json": json.dumps(dict(meta))})


def _run_exported(fmt: str, path: Path, inputs: list[tuple[torch.Tensor, ...]]
                  ) -> list[np.ndarray]:
    try:
        if fmt == "onnx":
            sess = _ort_session(path)
            return [sess.run(None, {n: t.numpy() for n, t in zip(INPUT_NAMES, x)})[0]
                    for x in inputs]
        if fmt == "checkpoint":
            released = load_model(path, device="cpu")
            with torch.inference_mode():
                return [released(*x).numpy() for x in inputs]
        loaded = torch.jit.load(str(path), map_location="cpu")
        with torch.inference_mode():
            return [loaded(*x).numpy() for x in inputs]
    except Exception as exc:
        raise ExportError(f"the exported {fmt} model cannot be run ({exc.__class__.__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc


def load_exported_metadata(path: str | os.PathLike[str]) -> dict[str, str]:
    """Metadata stored by :func:`export_model` in an ``.onnx`` or TorchScript ``.pt`` file."""
    path = Path(path)
    if path.suffix == ".onnx":
        onnx, _ = _require_onnx()
        proto = onnx.load(str(path), load_external_data=False)
        return {p.key: p.value for p in proto.metadata_props}
    extra = {"demosaic.json": ""}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    return json.loads(extra["demosaic.json"])


# --------------------------------------------------------------------------------------
# INT8
# --------------------------------------------------------------------------------------


class _DropRootMessages(logging.Filter):
    """Drops onnxruntime's advice to run shape pre-processing (its symbolic shape inference
    does not handle this model's dynamic sizes; quantization works without it)."""

    def __init__(self, *needles: str) -> None:
        super().__init__()
        self.needles = needles

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(n in msg for n in self.needles)


def _quantize(report: ExportReport, model: nn.Module, float_path: Path, mode: str,
              size: tuple[int, int], seed: int) -> None:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_dynamic,
        quantize_static,
    )

    multiple = model.size_multiple
    h, w = (max(multiple, (s // multiple) * multiple) for s in size)
    int8_path = float_path.with_name(float_path.stem + ".int8.onnx")
    ops = ["Conv", "ConvTranspose"]  # elementwise ops (bilinear base, sample re-insertion) stay float

    class _Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter([
                {"cfa": scene_mosaic(model.pattern, h, w, seed + 100 + i, exp)[0]}
                for i, exp in enumerate((0.25, 0.5, 1.0, 1.0, 2.0, 0.7, 1.5, 0.35))
            ])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._items, None)

    quiet = _DropRootMessages("pre-processing", "pre-processing before quantization")
    root = logging.getLogger()
    root.addFilter(quiet)
    with atomic_path(int8_path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            if mode == "static":
                quantize_static(str(float_path), str(tmp), _Reader(), quant_format=QuantFormat.QDQ,
                                op_types_to_quantize=ops, per_channel=True,
                                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
            else:
                quantize_dynamic(str(float_path), str(tmp), op_types_to_quantize=ops,
                                 weight_type=QuantType.QUInt8)
        except Exception as exc:
            raise ExportError(f"INT8 ({mode}) quantization of {float_path} failed: "
                              f"{exc.__class__.__name__}: {exc}") from exc
        finally:
            root.removeFilter(quiet)
        cfa, truth = scene_mosaic(model.pattern, h, w, seed)
        try:
            q_out = _ort_session(tmp).run(None, {"cfa": cfa})[0][0]
        except Exception as exc:
            raise ExportError(f"the INT8 ({mode}) model cannot be run by onnxruntime: "
                              f"{exc.__class__.__name__}: {exc}") from exc
    with torch.inference_mode():
        f_out = model(torch.from_numpy(cfa)).numpy()[0]
    report.int8_path, report.int8_mode = int8_path, mode
    border = multiple if 2 * multiple < min(h, w) else 0  # metrics.psnr refuses an empty crop
    report.psnr_float_db = psnr(f_out, truth, border=border)
    report.psnr_int8_db = psnr(q_out, truth, border=border)
    report.psnr_int8_vs_float_db = psnr(q_out, f_out, border=border)
    log.info("int8 (%s) model %s: PSNR %.2f dB vs float %.2f dB on the synthetic scene",
             mode, int8_path, report.psnr_int8_db, report.psnr_float_db)


__all__ = ["ExportError", "ExportReport", "export_model", "load_exported_metadata", "FORMATS",
           "INT8_MODES"]
