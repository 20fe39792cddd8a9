"""Export to ONNX/TorchScript round trips (needs the `export` extra: onnx, onnxruntime)."""

from __future__ import annotations

import json
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch

onnx = pytest.importorskip("onnx", reason="the export extra (onnx, onnxruntime) is not installed")
ort = pytest.importorskip("onnxruntime", reason="the export extra (onnxruntime) is not installed")

from demosaic.cli.export import main as export_main
from demosaic.models.checkpoint import make_checkpoint, save_checkpoint
from demosaic.export import ExportError, export_model, load_exported_metadata
from demosaic.metrics import psnr
from demosaic.errors import CheckpointError, ConfigError
from demosaic.models import create_model


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = create_model("unet", cfa="xtrans", width=8, depth=2)
    with torch.no_grad():  # a non-trivial residual so INT8 has something to perturb
        model.head.weight.mul_(10.0)
    data = make_checkpoint(model, "unet", model.spec["kwargs"], cfa="xtrans", step=77,
                           run_name="tiny")
    return save_checkpoint(data, tmp_path_factory.mktemp("ck") / "best.pt")


def _torch_model(path: Path) -> torch.nn.Module:
    from demosaic.models.checkpoint import load_model

    return load_model(path)


def test_onnx_round_trip_dynamic_shapes(ckpt, tmp_path):
    out = tmp_path / "model.onnx"
    report = export_model(ckpt, "onnx", out, size=(48, 72))
    assert out.exists() and report.max_abs_diff <= 1e-4
    assert set(report.checks) == {"1x1x48x72", "2x1x60x96"}  # two sizes, batch 2: dynamic axes
    meta = load_exported_metadata(out)
    assert meta["cfa"] == "xtrans" and meta["size_multiple"] == "12" and meta["step"] == "77"
    # independent check at a third size, straight through onnxruntime
    x = torch.rand(1, 1, 36, 120)
    with torch.inference_mode():
        ref = _torch_model(ckpt)(x).numpy()
    got = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"cfa": x.numpy()})[0]
    assert got.shape == (1, 3, 36, 120) and np.abs(got - ref).max() < 1e-4


def test_torchscript_round_trip(ckpt, tmp_path):
    out = tmp_path / "model.pt"
    report = export_model(ckpt, "torchscript", out, size=(48, 72))
    assert report.max_abs_diff <= 1e-5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loaded = torch.jit.load(str(out))
    x = torch.rand(3, 1, 24, 36)
    with torch.inference_mode():
        assert torch.allclose(loaded(x), _torch_model(ckpt)(x), atol=1e-5)
    assert load_exported_metadata(out)["run_name"] == "tiny"


@pytest.mark.parametrize("mode,op", [("static", "QuantizeLinear"), ("dynamic", "ConvInteger")])
def test_int8_quantization_reports_quality(ckpt, tmp_path, mode, op):
    out = tmp_path / "m.onnx"
    report = export_model(ckpt, "onnx", out, int8=mode, size=(96, 144))
    assert report.int8_path == tmp_path / "m.int8.onnx" and report.int8_path.exists()
    ops = Counter(n.op_type for n in onnx.load(str(report.int8_path)).graph.node)
    assert ops[op] > 0  # really quantized
    # quality: measured, finite, close to but not identical with the float model
    assert np.isfinite(report.psnr_float_db) and np.isfinite(report.psnr_int8_db)
    assert 25.0 < report.psnr_int8_vs_float_db < 200.0
    assert abs(report.psnr_int8_db - report.psnr_float_db) < 3.0
    assert "int8" in report.summary() and "dB" in report.summary()


def test_export_failures_leave_no_file(ckpt, tmp_path):
    out = tmp_path / "tight.onnx"
    with pytest.raises(ExportError, match="tolerance"):
        export_model(ckpt, "onnx", out, size=(48, 72), tolerance=1e-12)
    assert not out.exists() and not list(tmp_path.iterdir())
    with pytest.raises(ConfigError, match="onnx only"):
        export_model(ckpt, "torchscript", tmp_path / "m.pt", int8="static")
    with pytest.raises(ConfigError, match="format"):
        export_model(ckpt, "tflite", tmp_path / "m.tflite")  # type: ignore[arg-type]
    with pytest.raises(CheckpointError, match="does not exist"):
        export_model(tmp_path / "missing.pt", "onnx", tmp_path / "m.onnx")


def test_psnr():
    a = np.zeros((3, 8, 8), np.float32)
    assert psnr(a, a, border=0) == float("inf")
    assert abs(psnr(a + 0.1, a, border=0) - 20.0) < 1e-6


def test_cli(ckpt, tmp_path, capsys):
    out = tmp_path / "cli=1.onnx"
    assert export_main([str(ckpt), "--format", "onnx", "--out", str(out), "--size", "48", "72",
                        "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["path"] == str(out) and report["max_abs_diff"] <= 1e-4
    with pytest.raises(SystemExit) as exc:
        export_main([str(tmp_path / "nope.pt"), "--out", str(tmp_path / "x.onnx")])
    assert exc.value.code == 2
