"""Capture metadata of a raw file (EXIF), carried into the EXR, TIFF and DNG we write.

Read and written with `pyexiv2 <https://github.com/LeoHsiao1/pyexiv2>`_, a binding of Exiv2
(0.28), which reads the EXIF of every raw format LibRaw opens (RAF, DNG, NEF, CR2, ARW, ORF,
RW2 ...) and writes EXIF into TIFF and DNG files. It is GPL-3.0 licensed, so this MIT package
lists it as the optional extra ``metadata`` (in the README's install command). Without it only
make and model are carried (from the file header), and one warning says what to install.

:class:`CaptureMetadata` holds the fields a photographer expects to survive: make, model, ISO,
exposure time, f-number, focal length, lens, capture date (with its UTC offset), orientation
and body serial number, plus, for DNG sources, the colour tags a raw converter needs
(``ColorMatrix2``, ``CameraCalibration``, ``ForwardMatrix``, ``BaselineExposure`` ...). It maps
them to the standard OpenEXR attributes (:meth:`CaptureMetadata.exr_attributes`) and to EXIF
keys (:meth:`CaptureMetadata.exif`), which :func:`write_exif` stores in a TIFF or DNG.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field, fields
from fractions import Fraction
from pathlib import Path
from typing import Any

from demosaic.errors import ImageIOError

log = logging.getLogger(__name__)

#: The extra that installs the metadata library.
EXTRA_HINT = "pip install 'demosaic[metadata]' (pyexiv2) to carry the camera's EXIF"

#: DNG colour tags copied from a DNG source into a linear DNG (valid unchanged: the linear
#: DNG holds the same camera RGB, normalised to its own black and white levels).
DNG_COLOUR_TAGS = (
    "ColorMatrix1", "ColorMatrix2", "CalibrationIlluminant1", "CalibrationIlluminant2",
    "CameraCalibration1", "CameraCalibration2", "ForwardMatrix1", "ForwardMatrix2",
    "AnalogBalance", "BaselineExposure", "CameraCalibrationSignature", "ProfileName",
)

# EXIF keys read, first found wins (Exif.Photo = the EXIF IFD, Exif.Image = TIFF/EP IFD0).
_READ_KEYS: dict[str, tuple[str, ...]] = {
    "make": ("Exif.Image.Make",),
    "model": ("Exif.Image.Model",),
    "iso": ("Exif.Photo.ISOSpeedRatings", "Exif.Photo.RecommendedExposureIndex",
            "Exif.Image.ISOSpeedRatings"),
    "exposure_time": ("Exif.Photo.ExposureTime", "Exif.Image.ExposureTime"),
    "f_number": ("Exif.Photo.FNumber", "Exif.Image.FNumber"),
    "focal_length": ("Exif.Photo.FocalLength", "Exif.Image.FocalLength"),
    "lens_make": ("Exif.Photo.LensMake",),
    "lens_model": ("Exif.Photo.LensModel", "Exif.Image.LensModel"),
    "capture_date": ("Exif.Photo.DateTimeOriginal", "Exif.Image.DateTimeOriginal",
                     "Exif.Image.DateTime"),
    "utc_offset": ("Exif.Photo.OffsetTimeOriginal",),
    "orientation": ("Exif.Image.Orientation",),
    "serial": ("Exif.Photo.BodySerialNumber", "Exif.Image.CameraSerialNumber"),
}
_DATE = re.compile(r"^\d{4}:\d\d:\d\d \d\d:\d\d:\d\d$")
_OFFSET = re.compile(r"^([+-])(\d\d):(\d\d)$")


def _pyexiv2() -> Any:
    """The pyexiv2 module, or None (logged once) when the extra is not installed."""
    try:
        import pyexiv2
    except ImportError:
        if not getattr(_pyexiv2, "warned", False):
            log.warning("camera EXIF (ISO, exposure, lens, date ...) is not carried into the "
                        "output: %s", EXTRA_HINT)
            _pyexiv2.warned = True  # type: ignore[attr-defined]
        return None
    return pyexiv2


def _fraction(text: str) -> Fraction | None:
    try:
        first = text.split()[0]
        value = Fraction(first)
    except (ValueError, ZeroDivisionError, IndexError):
        return None
    return value if value > 0 else None


def _rational(value: float | Fraction) -> str:
    f = value if isinstance(value, Fraction) else Fraction(value).limit_denominator(10000)
    return f"{f.numerator}/{f.denominator}"


@dataclass(frozen=True)
class CaptureMetadata:
    """What the camera recorded about one shot ("" / None where the source has nothing).

    Attributes:
        make, model: Camera maker and model as EXIF spells them.
        iso: ISO speed. exposure_time: seconds. f_number: aperture. focal_length: mm.
        lens_make, lens_model: The lens. serial: Body serial number.
        capture_date: ``"YYYY:MM:DD HH:MM:SS"`` (EXIF ``DateTimeOriginal``, local time).
        utc_offset: ``"+HH:MM"`` of the capture date (EXIF ``OffsetTimeOriginal``).
        orientation: TIFF orientation code 1..8 of the source (1 if not recorded).
        dng_colour: ``{tag name: Exiv2 value}`` of :data:`DNG_COLOUR_TAGS` found in a DNG
            source (empty for other formats).
    """

    make: str = ""
    model: str = ""
    iso: float | None = None
    exposure_time: Fraction | None = None
    f_number: float | None = None
    focal_length: float | None = None
    lens_make: str = ""
    lens_model: str = ""
    capture_date: str = ""
    utc_offset: str = ""
    orientation: int = 1
    serial: str = ""
    dng_colour: dict[str, str] = field(default_factory=dict, compare=False)

    def present(self) -> dict[str, Any]:
        """The recorded fields (empty and ``None`` ones left out; ``dng_colour`` too)."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name != "dng_colour" and getattr(self, f.name) not in ("", None)}

    def exr_attributes(self) -> dict[str, Any]:
        """Standard OpenEXR attributes (``ImfStandardAttributes.h``): strings and floats.

        ``utcOffset`` follows OpenEXR's sign: UTC = local time + ``utcOffset`` seconds. The
        orientation is not among them (EXR pixels are written upright).
        """
        out: dict[str, Any] = {}
        for key, value in (("cameraMake", self.make), ("cameraModel", self.model),
                           ("lensMake", self.lens_make), ("lensModel", self.lens_model),
                           ("cameraSerialNumber", self.serial), ("capDate", self.capture_date)):
            if value:
                out[key] = value
        for key, num in (("isoSpeed", self.iso), ("expTime", self.exposure_time),
                         ("aperture", self.f_number), ("nominalFocalLength", self.focal_length)):
            if num is not None:
                out[key] = float(num)
        m = _OFFSET.match(self.utc_offset)
        if m:
            seconds = int(m.group(2)) * 3600 + int(m.group(3)) * 60
            out["utcOffset"] = float(-seconds if m.group(1) == "+" else seconds)
        return out

    def exif(self, orientation: int | None = None) -> dict[str, str]:
        """Exiv2 key -> value strings for :func:`write_exif`.

        Args:
            orientation: The output's TIFF orientation (default: the source's, for outputs
                whose pixels stay in sensor orientation, like a linear DNG).
        """
        out: dict[str, str] = {"Exif.Image.Orientation": str(orientation or self.orientation)}
        for key, text in (("Exif.Image.Make", self.make), ("Exif.Image.Model", self.model),
                          ("Exif.Photo.LensMake", self.lens_make),
                          ("Exif.Photo.LensModel", self.lens_model),
                          ("Exif.Photo.BodySerialNumber", self.serial),
                          ("Exif.Photo.DateTimeOriginal", self.capture_date),
                          ("Exif.Photo.OffsetTimeOriginal", self.utc_offset)):
            if text:
                out[key] = text
        if self.iso is not None:
            out["Exif.Photo.ISOSpeedRatings"] = str(int(round(self.iso)))
        for key, num in (("Exif.Photo.ExposureTime", self.exposure_time),
                         ("Exif.Photo.FNumber", self.f_number),
                         ("Exif.Photo.FocalLength", self.focal_length)):
            if num is not None:
                out[key] = _rational(num)
        return out


def _header_identity(path: Path) -> tuple[str, str]:
    """Make/model from the file header alone: Fujifilm RAF, or TIFF-based raws (DNG, NEF ...)."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(64)
        if head.startswith(b"FUJIFILMCCD-RAW"):
            return "FUJIFILM", head[28:60].split(b"\0", 1)[0].decode(errors="replace").strip()
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages.first.tags
            make, model = tags.get("Make"), tags.get("Model")
            return (str(make.value).strip() if make else "", str(model.value).strip() if model else "")
    except Exception as exc:  # noqa: BLE001 - any parse failure means "unknown"
        log.debug("no make/model in the header of %s: %s", path, exc)
        return "", ""


def _parse(raw: dict[str, str], path: Path) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name, keys in _READ_KEYS.items():
        text = next((raw[k].strip() for k in keys if raw.get(k, "").strip()), "")
        if not text:
            continue
        if name in ("iso", "f_number", "focal_length"):
            num = _fraction(text)
            if num is not None:
                found[name] = float(num)
        elif name == "exposure_time":
            found[name] = _fraction(text)
        elif name == "orientation":
            if text.isdigit() and 1 <= int(text) <= 8:
                found[name] = int(text)
        elif name == "capture_date":
            if _DATE.match(text):
                found[name] = text
            else:
                log.debug("%s: ignoring a malformed capture date %r", path, text)
        elif name == "utc_offset":
            if _OFFSET.match(text):
                found[name] = text
        else:
            found[name] = text.replace("\x00", "").strip()
    return {k: v for k, v in found.items() if v not in ("", None)}


def read_metadata(path: str | os.PathLike[str]) -> CaptureMetadata:
    """The capture metadata of a raw (or any TIFF/JPEG-based) file.

    Never fails on a file LibRaw could read: unreadable or missing EXIF gives the fields the
    header has (make, model) and a debug message.

    Returns:
        :class:`CaptureMetadata`.
    """
    p = Path(path)
    lib = _pyexiv2()
    if lib is None:
        return CaptureMetadata(*_header_identity(p))
    try:
        with lib.Image(os.fspath(p)) as img:
            raw = img.read_exif()
    except Exception as exc:  # noqa: BLE001 - Exiv2 raises RuntimeError and others
        log.debug("Exiv2 cannot read the EXIF of %s (%s); using the header only", p, exc)
        return CaptureMetadata(*_header_identity(p))
    found = _parse(raw, p)
    if not (found.get("make") and found.get("model")):  # only then parse the header again
        make, model = _header_identity(p)
        found = {"make": make, "model": model, **found}
    colour = {t: raw[f"Exif.Image.{t}"] for t in DNG_COLOUR_TAGS if f"Exif.Image.{t}" in raw}
    if colour and "Exif.Image.DNGVersion" not in raw:
        colour = {}
    return CaptureMetadata(**found, dng_colour=colour)


def write_exif(path: str | os.PathLike[str], exif: dict[str, str]) -> bool:
    """Store EXIF keys (Exiv2 names, e.g. ``Exif.Photo.ExposureTime``) in a TIFF or DNG.

    Call it on the temporary file before the atomic rename, so a failure leaves no output.

    Returns:
        ``True`` when written, ``False`` when pyexiv2 is not installed (warned once).

    Raises:
        ImageIOError: Exiv2 could not write the file.
    """
    lib = _pyexiv2()
    if lib is None or not exif:
        return False
    p = Path(path)
    try:
        with lib.Image(os.fspath(p)) as img:
            img.modify_exif(exif)
    except Exception as exc:  # noqa: BLE001 - Exiv2 raises RuntimeError and others
        raise ImageIOError(f"cannot write EXIF into {p}: {exc}") from exc
    return True


__all__ = ["CaptureMetadata", "read_metadata", "write_exif", "DNG_COLOUR_TAGS", "EXTRA_HINT"]
