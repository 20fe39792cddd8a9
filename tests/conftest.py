"""Shared pytest fixtures. Keep them generic and small: other test files use them too."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _seeded_global_generators() -> None:
    """Every test starts from the same torch / numpy / random global state, so a test that
    draws unseeded numbers (torch.rand, np.random.*) gets the same ones on every run and
    the suite passes or fails the same way each time."""
    import random

    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy generator (same numbers in every test)."""
    return np.random.default_rng(1234)


@pytest.fixture
def make_dng(tmp_path: Path, rng: np.random.Generator) -> Callable[..., tuple[Path, np.ndarray]]:
    """Factory writing a small synthetic CFA DNG with :func:`demosaic.io.dng.write_dng`.

    ``make_dng(layout="xtrans", size=(36, 48), name="x.dng", cfa=None, **write_dng_kwargs)``
    returns ``(path, cfa)`` where ``cfa`` is what was written: a ``(H, W)`` uint16 array of
    random data numbers between the black and white levels unless ``cfa`` is given.
    ``layout`` is a pattern name or a ``(P, P)`` array of channel indices of the top-left.
    """
    from demosaic.io.dng import write_dng

    def factory(layout: Any = "xtrans", size: tuple[int, int] = (36, 48), name: str = "x.dng",
                cfa: np.ndarray | None = None, **kwargs: Any) -> tuple[Path, np.ndarray]:
        black = int(kwargs.get("black_level", 0))
        white = int(kwargs.get("white_level", 65535))
        if cfa is None:
            cfa = rng.integers(black, white + 1, size=size).astype(np.uint16)
        path = write_dng(tmp_path / name, cfa, layout, **kwargs)
        return path, cfa

    return factory


@pytest.fixture
def xtrans_dng(make_dng: Callable[..., tuple[Path, np.ndarray]]) -> Path:
    """A 36x48 X-Trans DNG in a non-canonical phase (visible top-left at pattern (2, 3)),
    8/10/4/2 px margins, black 1024, white 15000, as-shot neutral (0.5, 1, 0.625)."""
    from demosaic.cfa import XTRANS

    path, _ = make_dng(XTRANS.shifted(2, 3), black_level=1024, white_level=15000,
                       margins=(8, 10, 4, 2), as_shot_neutral=(0.5, 1.0, 0.625),
                       make="TestMake", model="X-Test 1", name="xtrans.dng")
    return path


def demosaic_exposures(model, pattern, gains=(0.05, 4.0)):
    """Check a shipped model is exposure-equivariant on a bundled picture (96 px crop) and
    return its output at the largest gain (for highlight checks) and the mosaic."""
    import torch

    from demosaic import cfa
    from demosaic.io.images import read_image_linear

    samples = Path(__file__).resolve().parents[1] / "src" / "demosaic" / "assets" / "samples" / "val"
    rgb = torch.from_numpy(read_image_linear(samples / "102061.png"))[:, :96, :96].contiguous()
    mos = cfa.mosaic(rgb, pattern)[None]
    with torch.no_grad():
        base = model.demosaic(mos)
        for k in gains:
            torch.testing.assert_close(model.demosaic(mos * k), base * k, rtol=1e-4, atol=1e-6)
        return model.demosaic(mos * max(gains)), mos


def camera_capture_scores(methods, cache_dir, iso: float = 800.0):
    """Camera-protocol PSNR of each ``{name: method}`` on one bundled picture (the same DNG
    for all: random phase and margins, the family's default body)."""
    from demosaic.evaluation.camera import evaluate_camera
    from demosaic.evaluation.report import ReportSpec
    from demosaic.io.images import read_image_linear

    samples = Path(__file__).resolve().parents[1] / "src" / "demosaic" / "assets" / "samples" / "val"
    images = [("145086", read_image_linear(samples / "145086.png"))]
    return {name: evaluate_camera(method, images, iso=iso, seed=0, cache_dir=cache_dir,
                                  report=ReportSpec(worst_crops=0, progress=False)).mean["psnr"]
            for name, method in methods.items()}


def assert_trained_on_training_sets(cfg, camera: bool = True) -> None:
    """A shipped checkpoint's recorded config: trained on CBSD432 + Sun & Hays 80, validated
    on CBSD68, never trained or selected on the test sets (Kodak24, McMaster); ``camera``:
    with the camera simulation on."""
    roots = " ".join(cfg["dataset"]["train"]["root"])
    assert "cbsd432" in roots and "sun_hays80" in roots
    assert "cbsd68" in cfg["dataset"]["val"]["root"]
    if camera:
        assert cfg["dataset"]["train"]["camera"]["enabled"]
    for test_set in ("kodak24", "mcmaster"):
        assert test_set not in str(cfg["dataset"])


def write_camera_dngs(folder: Path, count: int = 3, family: str = "xtrans", size=(72, 96),
                      iso: float = 800.0) -> list[Path]:
    """``count`` camera-realistic DNGs (a real body's colour matrix, as-shot white balance,
    sensor noise at ``iso``, a random CFA phase and margins: the camera protocol's files) of
    bundled pictures, ``size`` = visible (H, W), written into ``folder``; returns their paths."""
    from demosaic.evaluation.capture import CameraProtocol, prepare_case
    from demosaic.io.images import read_image_linear

    samples = Path(__file__).resolve().parents[1] / "src" / "demosaic" / "assets" / "samples"
    pictures = sorted((samples / "val").glob("*.png")) + sorted((samples / "train").glob("*.jpg"))
    cache = folder / ".cache"
    paths = []
    for i, pic in enumerate(pictures[:count]):
        rgb = read_image_linear(pic)[:, : size[0], : size[1]]
        case = prepare_case(f"{family}_{pic.stem}", rgb, i, CameraProtocol(family=family, iso=iso),
                            cache)
        paths.append(case.dng.replace(folder / case.dng.name))
    shutil.rmtree(cache)
    return paths


@pytest.fixture(scope="session")
def camera_dngs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three small X-Trans camera-realistic DNGs (see :func:`write_camera_dngs`), made once:
    copy them before writing next to them."""
    return write_camera_dngs(tmp_path_factory.mktemp("camera_dngs"))


def hashes(folder: Path) -> dict[str, str]:
    """sha256 of every file in ``folder`` (not recursive)."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.fixture
def raws(tmp_path: Path, camera_dngs: list[Path]) -> Path:
    """A folder holding copies of the three camera-realistic X-Trans DNGs."""
    folder = tmp_path / "raws"
    folder.mkdir()
    for p in camera_dngs:
        shutil.copy2(p, folder / p.name)
    return folder


def run_infer(*args: str | Path) -> int:
    """``demosaic-infer`` in this process, on the CPU, without progress bars; its exit status."""
    from demosaic.cli.infer import main as infer_main

    try:
        return infer_main([*map(str, args), "--no-progress", "--device", "cpu"]) or 0
    except SystemExit as exc:
        return int(exc.code or 0)


def compose_train(overrides: list[str]) -> Any:
    """Compose ``train.yaml`` with ``overrides`` as ``demosaic-train`` would (schemas
    registered), without running Hydra's app."""
    from hydra import compose, initialize_config_module

    from demosaic.cli.train import register_schemas

    register_schemas()
    with initialize_config_module("demosaic.configs", version_base="1.3"):
        return compose("train", overrides=overrides)


def tiny_training(tmp_path: Path, steps: int = 2) -> list[str]:
    """Overrides that shrink any experiment to a few CPU steps writing under tmp_path."""
    return [
        f"trainer.max_steps={steps}", "trainer.batch_size=2", "trainer.num_workers=0",
        "trainer.device=cpu", "trainer.precision=fp32", "trainer.log_every=1",
        f"trainer.val_every={steps}", f"trainer.save_every={steps}", f"trainer.snapshot_every={steps}",
        "trainer.snapshot_crop=48", "trainer.val_max_images=1", "trainer.optim.warmup_steps=1",
        f"trainer.checkpoint_dir={tmp_path / 'ckpt'}", f"trainer.log_dir={tmp_path / 'logs'}",
        "++dataset.val.max_size=96",
    ]
