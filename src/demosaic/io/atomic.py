"""Atomic file writes: write to a temporary name in the destination folder, then rename; and
the removal of temporaries that a killed process left behind.

Every temporary file this package writes is named by :func:`temp_name`::

    .<final name>.demosaic-tmp-<host tag>-<pid>-<random><suffix>
    e.g. .DSCF0001.exr.demosaic-tmp-3f2a9c1e-41872-k2j8x0qa.exr

(hidden, beside its final name, with the final suffix so that libraries which pick a format
by extension still work). The host tag and the process id say who writes it: a file of this
pattern whose writer is a process of this machine that no longer runs is debris of a killed
run (``kill -9``, a power cut), and :func:`sweep_stale_temporaries` removes it. A temporary
of a live process (a concurrent run on the same folder) is left alone, and so is one written
by another machine (a network share): this process cannot tell whether its writer lives.
A dead writer's process id taken again by an unrelated live process keeps its debris until
that process ends too: the rule errs towards keeping files.

Each folder is swept the first time this process writes into it (:func:`atomic_path`), so
every command that writes (outputs, checkpoints, shards, reports) cleans up after an earlier
killed run of any command; commands may also sweep up front.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from demosaic.errors import DemosaicError, WriteError

log = logging.getLogger(__name__)

#: The marker every temporary file name carries.
TEMP_MARK = ".demosaic-tmp-"
_TEMP_RE = re.compile(r"^\..+" + re.escape(TEMP_MARK) + r"(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[^./]+(\.[^./]*)?$")
_swept: set[str] = set()
_swept_lock = threading.Lock()
# Read once, at import: setting the umask to read it is not thread-safe.
_UMASK = os.umask(0)
os.umask(_UMASK)


def host_tag() -> str:
    """8 hex digits of this machine's host name: the writer's machine in a temporary's name."""
    return hashlib.sha1(socket.gethostname().encode("utf-8", "replace")).hexdigest()[:8]


def temp_prefix(final: Path) -> str:
    """The name prefix of this process's temporaries for ``final`` (random part and suffix
    follow)."""
    return f".{final.name}{TEMP_MARK}{host_tag()}-{os.getpid()}-"


def is_temporary(name: str) -> bool:
    """Whether a file name is one of this package's temporaries (any writer)."""
    return _TEMP_RE.match(name) is not None


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` of this machine runs (a zombie counts as ended)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    except OSError:
        return True  # cannot tell: keep its files
    try:  # Linux: a zombie (killed, not yet reaped by its parent) writes nothing any more
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Temporaries in ``folder`` (not recursive) whose writer was a process of this machine
    that has ended."""
    me = host_tag()
    stale = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m and m["host"] == me and not pid_alive(int(m["pid"])):
            stale.append(Path(entry.path))
    return stale


def sweep_stale_temporaries(folder: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporaries a killed process left in ``folder`` (see the module doc);
    returns what was removed. Files that vanish meanwhile (another run sweeping) or cannot be
    removed (a read-only folder) are skipped."""
    removed = []
    for path in stale_temporaries(folder):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("could not remove %s, left by a killed run (%s)", path, exc.strerror)
    if removed:
        log.info("removed %d partial file(s) left in %s by a killed run: %s", len(removed),
                 folder, ", ".join(p.name for p in removed[:5]) + (" ..." if len(removed) > 5 else ""))
    with _swept_lock:
        _swept.add(os.path.abspath(folder))
    return removed


def _sweep_once(folder: Path) -> None:
    with _swept_lock:
        if os.path.abspath(folder) in _swept:
            return
    sweep_stale_temporaries(folder)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], suffix: str | None = None, *,
                durable: bool = False) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success rename it onto ``path``.

    The temporary file is named by :func:`temp_prefix` and keeps ``path``'s suffix (or
    ``suffix``). If the block raises, the temporary file is removed and ``path`` is untouched
    (an older version stays intact); if the process is killed, the next write into the same
    folder removes it (:func:`sweep_stale_temporaries`). ``durable``: flush the file and the
    folder to the disk before and after the rename (a power cut then leaves the old or the new
    file, never an empty one); for checkpoints, not for bulk outputs.

    Example::

        with atomic_path("out.exr") as tmp:
            write_something(tmp)
    """
    final = Path(path)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _sweep_once(final.parent)
        fd, tmp_name = tempfile.mkstemp(
            prefix=temp_prefix(final), suffix=suffix if suffix is not None else final.suffix,
            dir=final.parent,
        )
    except OSError as exc:
        raise _write_error(final, exc) from exc
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600 files; give the output the permissions a plain open() would.
        os.chmod(tmp, 0o666 & ~_UMASK)
        if durable:
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
        os.replace(tmp, final)
        if durable:
            _fsync_dir(final.parent)
        log.debug("wrote %s", final)
    except OSError as exc:
        if isinstance(exc, DemosaicError):
            raise
        raise _write_error(final, exc) from exc
    finally:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass  # renamed
        except OSError as exc:  # never mask the block's own error; the next sweep retries
            log.warning("could not remove the partial file %s (%s)", tmp, exc.strerror)


def _write_error(final: Path, exc: OSError) -> WriteError:
    """The user-facing error of a failed write of ``final``, with what to do."""
    what = {errno.ENOSPC: "the disk is full: free some space",
            errno.EDQUOT: "the disk quota is used up: free some space",
            errno.EROFS: "the folder is on a read-only file system: choose another folder",
            errno.EACCES: "no permission to write there: choose another folder",
            errno.EPERM: "no permission to write there: choose another folder"}.get(
        exc.errno or 0, "check the folder and the disk")
    err = WriteError(f"cannot write {final}: {exc.strerror or exc}; {what} (nothing was "
                     "written; an earlier version of the file is intact)")
    err.errno = exc.errno
    return err
