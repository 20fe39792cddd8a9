"""Shared helpers of the command-line entry points (logging set-up, error reporting)."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from demosaic.errors import DemosaicError

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])

#: Exit status for errors caused by input (bad file, bad key): no traceback is printed.
EXIT_USAGE = 2
#: Exit status after Ctrl-C (the work that was done is saved).
EXIT_INTERRUPTED = 130


def setup_logging(level: int = logging.INFO) -> None:
    """Console logging for entry points that do not go through Hydra's job logging."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("demosaic").setLevel(level)


def report_errors(func: F) -> F:
    """Turn a :class:`DemosaicError` into one clear log line and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DemosaicError as exc:
            logging.getLogger("demosaic").error("%s", exc)
            sys.exit(EXIT_USAGE)

    return wrapper  # type: ignore[return-value]


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else :func:`platform.processor` or the
    machine type: for the "on what machine" line of a benchmark."""
    import platform
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
