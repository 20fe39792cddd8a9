"""A demosaic command run in a child process that stops itself at a chosen point, so the fault
campaign (tests/io/test_fault_campaign.py) can ``kill -9`` it exactly there.

Usage::

    python tests/io/fault_child.py MARKER POINT infer ARG ...     # demosaic-infer's arguments
    python tests/io/fault_child.py MARKER POINT train OVERRIDE ...  # compose train.yaml + overrides
    python tests/io/fault_child.py MARKER POINT prepare ARG ...   # demosaic-prepare's arguments

``POINT`` is ``KIND:N`` or ``KIND:N:NAME``: the process writes ``MARKER`` and sleeps (to be
killed) at the N-th (of the files whose final name ends with ``NAME``, when given)

- ``temp``: temporary output file created, nothing written into it yet;
- ``rename``: temporary file complete, not yet renamed onto its final name;
- ``save``: ``torch.save`` half-way: half of the checkpoint's bytes in the temporary file;
- ``never``: no stop (a plain run).
"""

from __future__ import annotations

import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from demosaic.io.atomic import TEMP_MARK


def _stop(marker: str) -> None:
    Path(marker).write_text(str(os.getpid()))
    while True:  # killed here
        time.sleep(1)


def install(marker: str, point: str) -> None:
    """Patch the write path so the process stops at ``point`` (see the module doc)."""
    kind, n, name = (point.split(":", 2) + ["", ""])[:3]
    count = {"n": 0}
    target = int(n or 1)

    def hit(path: Any = "") -> bool:
        temp = Path(str(path)).name
        if name and not temp[1:temp.find(TEMP_MARK)].endswith(name):
            return False
        count["n"] += 1
        return count["n"] == target

    if kind == "temp":
        real_mkstemp = tempfile.mkstemp

        def mkstemp(*args: Any, **kwargs: Any) -> Any:
            fd, name = real_mkstemp(*args, **kwargs)
            if TEMP_MARK in name and not Path(name).name.startswith(".case-probe") and hit(name):
                _stop(marker)
            return fd, name

        tempfile.mkstemp = mkstemp  # type: ignore[assignment]
    elif kind == "rename":
        real_replace = os.replace

        def replace(src: Any, dst: Any, **kwargs: Any) -> None:
            if TEMP_MARK in str(src) and hit(src):
                _stop(marker)
            real_replace(src, dst, **kwargs)

        os.replace = replace  # type: ignore[assignment]
    elif kind == "save":
        import torch

        real_save = torch.save

        def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
            if not hit(f):
                return real_save(obj, f, *args, **kwargs)
            buf = io.BytesIO()
            real_save(obj, buf, *args, **kwargs)
            data = buf.getvalue()
            Path(f).write_bytes(data[: len(data) // 2])
            _stop(marker)

        torch.save = save  # type: ignore[assignment]
    elif kind != "never":
        raise SystemExit(f"unknown stop point {point}")


def main() -> None:
    marker, point, command, *args = sys.argv[1:]
    install(marker, point)
    if command == "infer":
        from demosaic.cli.infer import main as infer_main

        sys.exit(infer_main(args))
    if command == "prepare":
        from demosaic.cli.prepare import main as prepare_main

        sys.exit(prepare_main(args))
    from hydra import compose, initialize_config_module

    from demosaic.cli.train import register_schemas, run_training

    register_schemas()
    with initialize_config_module("demosaic.configs", version_base="1.3"):
        cfg = compose("train", overrides=args)
    run_training(cfg)


if __name__ == "__main__":
    main()
