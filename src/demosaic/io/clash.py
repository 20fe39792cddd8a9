"""An output is never an input: every command checks the files it plans to write against the
files it reads, before any work.

Two paths are the same file when they are the same path after resolving symbolic links, the
same existing file (device and inode: a hard link, or a name that a case-insensitive file
system maps onto the source), or the same name under case folding in a folder whose file
system ignores case (macOS and Windows by default). The last is detected per folder by a probe
file (:func:`is_case_insensitive`), never assumed from the operating system.

A clash raises :class:`OutputClashError` naming the files and the way out; ``--overwrite``
never lifts it (it replaces earlier outputs, never sources).
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from demosaic.errors import ConfigError
from demosaic.io.atomic import temp_prefix

log = logging.getLogger(__name__)


class OutputClashError(ConfigError):
    """A planned output is one of the inputs, or two planned outputs are one file."""


def _existing_ancestor(folder: Path) -> Path:
    p = folder.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


@functools.lru_cache(maxsize=64)
def _probe_case_insensitive(folder: str) -> bool:
    try:
        fd, name = tempfile.mkstemp(prefix=temp_prefix(Path("case-probe")), suffix=".tmp",
                                    dir=folder)
    except OSError:  # read-only or full: look at the folder's own name instead
        return _name_case_insensitive(Path(folder))
    os.close(fd)
    try:
        probe = Path(name)
        return os.path.exists(probe.with_name(probe.name.upper()))
    finally:
        os.unlink(name)


def _name_case_insensitive(folder: Path) -> bool:
    """Fallback of :func:`is_case_insensitive` for a folder that takes no probe file: whether
    the folder's own name, its case swapped, names the same folder (False when no component
    has letters: such a folder cannot be written to anyway)."""
    for p in (folder, *folder.parents):
        swapped = p.with_name(p.name.swapcase())
        if p.name and swapped != p:
            try:
                return os.path.samefile(p, swapped)
            except OSError:
                return False
    return False


def is_case_insensitive(folder: str | os.PathLike[str]) -> bool:
    """Whether the file system of ``folder`` (or of its nearest existing ancestor, for a folder
    still to be made) looks names up ignoring case. Probed once per folder and process."""
    return _probe_case_insensitive(str(_existing_ancestor(Path(folder)).resolve()))


@dataclass(frozen=True)
class _Keys:
    """What identifies a file: its resolved path, that path case-folded (only in a folder
    that ignores case) and, for an existing file, its device and inode."""

    path: str
    folded: str | None
    inode: tuple[int, int] | None

    @classmethod
    def of(cls, path: Path, fold: bool) -> _Keys:
        real = os.path.realpath(path)
        try:
            st = os.stat(real)
            inode: tuple[int, int] | None = (st.st_dev, st.st_ino)
        except OSError:
            inode = None
        return cls(real, real.casefold() if fold else None, inode)

    def all(self) -> tuple[object, ...]:
        return tuple(k for k in (self.path, self.folded, self.inode) if k is not None)


def _first(keys: _Keys, index: dict[object, Path]) -> Path | None:
    return next((index[k] for k in keys.all() if k in index), None)


def check_outputs(inputs: Iterable[str | os.PathLike[str]],
                  outputs: Sequence[str | os.PathLike[str]], *, hint: str) -> None:
    """Refuse, before any work, a plan whose outputs replace an input or each other.

    Args:
        inputs: Every file the command reads (sources, checkpoints, manifests).
        outputs: Every file it will write.
        hint: What the user can do instead (appended to the error), e.g. ``"write to another
            folder or pass --suffix _dm"``.

    Raises:
        OutputClashError: naming each clash (the first five) and ``hint``.
    """
    outs = [Path(o) for o in outputs]
    folders = {os.path.dirname(os.path.realpath(o)) for o in outs}
    folding = {f.casefold() for f in folders if is_case_insensitive(f)}

    def keys(p: Path) -> _Keys:  # fold names only in output folders that ignore case
        return _Keys.of(p, os.path.dirname(os.path.realpath(p)).casefold() in folding)

    sources: dict[object, Path] = {}
    for p in map(Path, inputs):
        for k in keys(p).all():
            sources.setdefault(k, p)
    planned: dict[object, Path] = {}
    clashes = []
    for o in outs:
        ko = keys(o)
        src, twin = _first(ko, sources), _first(ko, planned)
        if src is not None:
            clashes.append(f"{o} would replace the input {src}")
        elif twin is not None:
            clashes.append(f"{twin} and {o} are one file here")
        for k in ko.all():
            planned.setdefault(k, o)
    if clashes:
        more = f" (and {len(clashes) - 5} more)" if len(clashes) > 5 else ""
        raise OutputClashError(f"refusing to write: {'; '.join(clashes[:5])}{more}. An output "
                               f"never replaces a source file, --overwrite included; {hint}. "
                               "Nothing was written")
    log.debug("checked %d output(s) against their inputs", len(outs))
