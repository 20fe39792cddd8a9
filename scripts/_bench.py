"""Helpers the benchmark scripts share: what machine a number comes from, and timing a
whole command as a user runs it. Imported by the scripts of this folder (``python
scripts/X.py`` puts the folder on ``sys.path``)."""

from __future__ import annotations

import os
import platform
import subprocess
import time
from typing import Any


def machine() -> dict[str, Any]:
    """Platform, CPU model, cores, load, GPU, thread settings and versions of this machine."""
    import torch

    from demosaic.cli.common import cpu_model

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
