"""Helpers the benchmark scripts share: what machine a number comes from, and timing a
whole command as a user runs it. Imported by the scripts of this folder (``python
scripts/benchmarks/X.py`` puts the folder on ``sys.path``, so ``from _bench import ...``
works from any working directory)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from pathlib import Path
from typing import Any


def machine() -> dict[str, Any]:
    """Platform, CPU model, cores, load, GPU, thread settings and versions of this machine."""
    import torch

    from demosaic.devices import cpu_model

    return {"platform": platform.platform(), "cpu": cpu_model(), "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "torch": torch.__version__,
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS")}


def machine_line() -> str:
    """One line for a report: ``2 CPU cores (AMD EPYC ...), no GPU, torch 2.13.0 (2 threads),
    Python 3.11.7``."""
    m = machine()
    return (f"{m['cores']} CPU cores ({m['cpu']}), {m['gpu'] or 'no GPU'}, torch {m['torch']} "
            f"({m['torch_threads']} threads), Python {m['python']}")


def timed(cmd: list[str]) -> float:
    """Wall seconds of a command (output discarded; a failure raises CalledProcessError)."""
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def write_scene_raw(path: Path, height: int, width: int, layout: Any = "xtrans",
                    body: str | None = None, model: str = "bench X-T3") -> Path:
    """The benchmarks' synthetic camera file: a 516 px :func:`demosaic.sim.scenes.synthetic_scene`
    (seed 1) tiled to ``(height, width)`` and captured by the camera simulation
    (:func:`demosaic.sim.raw_files.write_camera_raw`: ISO 400, 14 bits, exact white balance,
    generator seeded 0), so the same arguments always write the same file.

    Args:
        path: The DNG to write.
        height, width: Visible size in pixels (multiples of the CFA period keep the
            canonical phase at the top-left).
        layout: The CFA pattern or its name (``"xtrans"``, ``cfa.BAYER_RGGB``...).
        body: The camera body's name (default: X-T3 for X-Trans, ILCE-7M3 for Bayer).
        model: The DNG's ``Model`` tag.
    """
    import numpy as np

    from demosaic.sim.scenes import synthetic_scene
    from demosaic.sim.raw_files import write_camera_raw

    tile = synthetic_scene(516, 516, seed=1)  # (3, 516, 516) float32 linear sRGB
    scene = np.tile(tile, (1, -(-height // 516), -(-width // 516)))[:, :height, :width]
    return write_camera_raw(path, scene, layout, iso=400, body=body,
                            rng=np.random.default_rng(0), model=model)[0]
