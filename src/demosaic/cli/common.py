"""Shared helpers of the command-line entry points (logging set-up, error reporting)."""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from demosaic.errors import DemosaicError, one_line

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
    """Turn a :class:`DemosaicError` into one clear log line (a message's line breaks become
    spaces) and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DemosaicError as exc:
            logging.getLogger("demosaic").error("%s", one_line(exc))
            sys.exit(EXIT_USAGE)

    return wrapper  # type: ignore[return-value]


def exit_without_teardown(main: Callable[[], Any]) -> NoReturn:
    """Run a console command's ``main`` and end the process at once, skipping the interpreter's
    teardown of torch (a sizeable share of a ``demosaic-infer`` run on this project's 2-core
    CPU, docs/BENCHMARKS.md): logging and the standard streams are flushed first, and the exit
    status is ``main``'s (its return value or ``SystemExit`` code). Only for commands whose
    outputs are complete when ``main`` returns (written, closed and renamed; worker threads
    joined). An exception other than ``SystemExit`` propagates: the normal exit prints it.
    """
    try:
        code: Any = main()
    except SystemExit as exc:
        code = exc.code
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message") semantics
        print(code, file=sys.stderr)
        status = 1
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or broken pipe: nothing more to say
            pass
    os._exit(status)
