"""Opening our outputs with the tools photographers and VFX artists use.

Thin wrappers around command-line programs from Debian's packages (``darktable`` for
``darktable-cli``, ``rawtherapee`` for ``rawtherapee-cli``, ``openimageio-tools`` for
``oiiotool``, ``libimage-exiftool-perl`` for ``exiftool``), used by ``scripts/figures/darktable_compare.py`` and the integration tests
(``tests/io/test_tools.py``) to check that what we write is understood by them. None of them is
needed by the toolkit itself.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from demosaic.errors import DemosaicError

log = logging.getLogger(__name__)

#: Debian package of each tool.
PACKAGES = {"darktable-cli": "darktable", "oiiotool": "openimageio-tools",
            "exiftool": "libimage-exiftool-perl", "rawtherapee-cli": "rawtherapee"}


def have(tool: str) -> bool:
    """Whether ``tool`` is on the PATH."""
    return shutil.which(tool) is not None


def _run(cmd: list[str], timeout: float) -> str:
    if not have(cmd[0]):
        raise DemosaicError(f"{cmd[0]} is not installed; apt-get install {PACKAGES.get(cmd[0], cmd[0])}")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DemosaicError(f"{' '.join(cmd)} took longer than {timeout:g} s") from exc
    if done.returncode != 0:
        raise DemosaicError(f"{' '.join(cmd)} failed ({done.returncode}): "
                            f"{(done.stderr or done.stdout).strip()[-800:]}")
    return done.stdout


#: darktable's workflows (preference ``plugins/darkroom/workflow``).
DARKTABLE_WORKFLOWS = ("display-referred", "scene-referred", "none")


def darktable_render(source: str | os.PathLike[str], output: str | os.PathLike[str], *,
                     workflow: str = "display-referred", width: int = 0,
                     timeout: float = 300.0) -> Path:
    """Develop ``source`` with ``darktable-cli`` into ``output``.

    Each call uses a fresh, empty configuration folder and an in-memory library, with the
    given ``workflow`` (darktable's preference that decides which modules are switched on for
    a new image; its own default is ``"scene-referred"``), camera white balance and the file's
    colour matrix. In the scene-referred workflow darktable switches on some of its default
    modules for mosaic raws only (``darktable-cli -d params`` shows filmic processing the
    source raw's pipe and not the linear DNG's), so the two get *different* settings there;
    ``"display-referred"`` and ``"none"`` treat both alike.
    A ``.tif`` output is 16-bit sRGB.

    Returns:
        ``Path(output)``.

    Raises:
        DemosaicError: darktable-cli is missing, fails or writes nothing.
    """
    if workflow not in DARKTABLE_WORKFLOWS:
        raise DemosaicError(f"darktable workflow {workflow!r} unknown; use one of {DARKTABLE_WORKFLOWS}")
    out = Path(output)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="darktable-") as config:
        cmd = ["darktable-cli", os.fspath(source), os.fspath(out), "--width", str(width),
               "--apply-custom-presets", "false", "--core", "--configdir", config,
               "--library", ":memory:", "--conf", "plugins/imageio/format/tiff/bpp=16",
               "--conf", f"plugins/darkroom/workflow={workflow}"]
        _run(cmd, timeout)
    if not out.exists():
        raise DemosaicError(f"darktable-cli wrote no {out} for {source}")
    return out


def rawtherapee_render(source: str | os.PathLike[str], output: str | os.PathLike[str], *,
                       timeout: float = 300.0) -> Path:
    """Develop ``source`` with ``rawtherapee-cli`` and its default raw profile into a 16-bit
    sRGB TIFF ``output`` (a fresh settings folder through ``HOME``)."""
    out = Path(output)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="rawtherapee-") as home:
        cmd = ["rawtherapee-cli", "-o", os.fspath(out), "-b16", "-t", "-Y", "-d", "-c",
               os.fspath(source)]
        env = {**os.environ, "HOME": home, "XDG_CONFIG_HOME": home, "XDG_CACHE_HOME": home}
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                                  env=env, check=False)
        except subprocess.TimeoutExpired as exc:
            raise DemosaicError(f"rawtherapee-cli took longer than {timeout:g} s") from exc
    if done.returncode != 0 or not out.exists():
        raise DemosaicError(f"rawtherapee-cli failed on {source} ({done.returncode}): "
                            f"{(done.stderr or done.stdout).strip()[-800:]}")
    return out


def oiio_info(path: str | os.PathLike[str]) -> str:
    """``oiiotool --info -v PATH``: what OpenImageIO reads from a file's header."""
    return _run(["oiiotool", "--info", "-v", os.fspath(path)], 60.0)


def exiftool_tags(path: str | os.PathLike[str]) -> dict[str, object]:
    """All tags exiftool reads, as ``{"Group:Tag": value}`` (``exiftool -j -G1 -n``)."""
    return dict(json.loads(_run(["exiftool", "-j", "-G1", "-n", os.fspath(path)], 60.0))[0])


__all__ = ["darktable_render", "rawtherapee_render", "DARKTABLE_WORKFLOWS", "oiio_info", "exiftool_tags", "have", "PACKAGES"]
