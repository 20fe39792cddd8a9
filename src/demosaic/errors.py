"""Exceptions for user-facing errors.

Every error raised for bad input names the file or config key, the bad value and the fix.
Command-line entry points catch :class:`DemosaicError`, log its message and exit with
status 2, without a traceback.
"""

from __future__ import annotations


class DemosaicError(Exception):
    """Base class of all errors caused by input (files, configs, arguments)."""


class CFAError(DemosaicError):
    """A colour filter array layout or shape is invalid or unsupported."""


class RawReadError(DemosaicError):
    """A raw file cannot be read: not a raw, truncated, unsupported sensor, linear DNG."""


class ImageIOError(DemosaicError):
    """An image file cannot be read or written."""


class ConfigError(DemosaicError):
    """A configuration key or value is invalid."""


class CheckpointError(DemosaicError):
    """A checkpoint is missing, unreadable or incompatible."""


class WriteError(DemosaicError, OSError):
    """A file cannot be written: a full disk, a read-only or missing folder, no permission.
    Nothing is left behind: the previous version of the file, if any, is intact. Also an
    :class:`OSError`, for callers that catch those."""


def one_line(exc: BaseException) -> str:
    """An error's message on one line (runs of white space, line breaks included, become one
    space): what a log line, a batch report or a terminal shows."""
    return " ".join(str(exc).split())
