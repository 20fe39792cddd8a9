"""``demosaic-eval``: measure a checkpoint or a baseline on an evaluation set.

Examples::

    demosaic-eval ckpt=checkpoints/experiments/v4.0_base/best.pt evalset=kodak24
    demosaic-eval ckpt=best.pt evalset=torture                 # per pattern type
    demosaic-eval baseline=markesteijn3 evalset=mcmaster       # LibRaw Markesteijn 3-pass
    demosaic-eval baseline=demosaicnet evalset=kodak24         # needs the 'baselines' extra
    demosaic-eval baseline=menon2007 cfa=bayer_rggb evalset=kodak24
    demosaic-eval baseline=bilinear evalset=folder evalset.root=/path/to/pngs
    demosaic-eval model=bilinear                               # a configs/model entry, no weights
    demosaic-eval ckpt=best.pt evalset=kodak24 save_exr=true compare=[markesteijn3,demosaicnet]
    demosaic-eval evalset=kodak24 protocol=camera iso=800      # simulated raw files (below)
    demosaic-eval baseline=markesteijn3 evalset=kodak24 protocol=camera iso=3200 camera=X-T4

Which method: ``ckpt=PATH``, ``baseline=NAME`` or ``model=NAME`` (at most one); with none of
them the packaged default model ``src/demosaic/assets/default.pt`` is evaluated. Results go
to ``out_dir`` (default ``logs/eval/<method>_<set>/``): ``results.json``, ``results.md``,
``crops/*.png``. A checkpoint whose run has a record in ``logs/runs`` gets the summary
attached (``demosaic-report`` shows it in the dashboard).

``protocol=camera`` measures the method on simulated raw files instead of clean mosaics
(:mod:`demosaic.evaluation.camera`): each truth image becomes a DNG of body ``camera``
(null = X-T3 / ILCE-7M3) at ISO ``iso`` with a random CFA phase and margins (seeded by
``protocol_seed``), developed exactly as ``demosaic-infer`` does (highlights off) or by LibRaw
on the same file; PSNR is measured in balanced camera RGB. The DNGs are cached in
``raw_cache`` (default ``<out_dir>/raws/<set>_iso<ISO>``); results go to ``out_dir`` (default
``logs/eval/<method>_<set>_camera_iso<ISO>/``).

Tests call :func:`run_evaluation` with a config composed through Hydra's compose API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from demosaic.cli.common import report_errors
from demosaic.errors import ConfigError

log = logging.getLogger(__name__)

@dataclass
class EvalSchema:
    """Top level of ``configs/eval.yaml`` (struct mode: unknown keys fail)."""

    evalset: Any = None
    model: Any = None
    ckpt: Optional[str] = None
    baseline: Optional[str] = None
    cfa: str = "xtrans"
    border: int = 12
    compare: Any = "auto"
    worst_crops: int = 4
    crop_size: int = 96
    zoom: int = 2
    save_exr: bool = False
    hdr_gain: float = 4.0
    hdr_probe_size: int = 256
    device: str = "auto"
    out_dir: Optional[str] = None
    set_name: Optional[str] = None
    runs_dir: Optional[str] = None
    progress: bool = True
    protocol: str = "clean"
    iso: float = 800.0
    camera: Optional[str] = None
    protocol_seed: int = 0
    raw_cache: Optional[str] = None
    highlights: str = "none"
    denoise: float = 1.0
    conditions: Any = None


#: Values of the ``protocol`` key.
PROTOCOLS = ("clean", "camera")


def register_schemas() -> None:
    """Register ``eval_schema`` in Hydra's ConfigStore (idempotent). Call before composing."""
    ConfigStore.instance().store(name="eval_schema", node=EvalSchema)


def _device(name: str) -> str:
    """``device=``: :func:`demosaic.devices.resolve_device`, as a string."""
    from demosaic.devices import resolve_device

    return str(resolve_device(name, key="device"))


def set_name(cfg: dict[str, Any], choice: str | None) -> str:
    """Report name of the evaluation set: ``set_name``, else the folder's name when a root
    was given to ``folder``/``bundled``, else the evalset choice."""
    if cfg.get("set_name"):
        return str(cfg["set_name"])
    root = (cfg.get("evalset") or {}).get("root")
    if root and isinstance(root, str) and (choice in (None, "folder", "bundled")):
        return Path(root).name or "folder"
    return choice or str((cfg.get("evalset") or {}).get("name", "images"))


def run_evaluation(cfg: DictConfig | dict[str, Any], evalset_choice: str | None = None) -> Any:
    """Evaluate what a composed ``eval`` config asks for; returns the
    :class:`~demosaic.evaluation.report.EvalResult` (and writes it to ``out_dir``)."""
    from demosaic import tracking
    from demosaic.data import DATASETS
    from demosaic.evaluation.clean import evaluate, images_from_dataset
    from demosaic.models.baselines import default_baselines

    if OmegaConf.is_config(cfg):
        missing = sorted(OmegaConf.missing_keys(cfg))
        if missing:
            raise ConfigError(f"missing value for {', '.join(missing)}: give it on the command "
                              f"line, e.g. {missing[0]}=/path/to/images")
        c: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    else:
        c = dict(cfg)
    c.pop("hydra", None)
    device = _device(str(c.get("device", "auto")))
    from demosaic.models.zoo import method_from_config

    chosen = method_from_config(c, device)  # ckpt= | baseline= | model= | cfa=
    method, name, kind, info = chosen.demosaicker, chosen.name, chosen.kind, chosen.info
    pattern = method.pattern
    protocol = check_protocol(c, pattern.family)
    if not isinstance(c.get("evalset"), dict):
        raise ConfigError("evalset is not a dataset mapping; pick one with evalset=kodak24 "
                          "(bundled, cbsd68, kodak24, mcmaster, torture, folder)")
    dataset = DATASETS.build(c["evalset"], where="evalset", pattern=pattern.name, split="val", seed=0)
    sname = set_name(c, evalset_choice)
    compare = c.get("compare")
    if compare == "auto":
        compare = default_baselines(pattern.name)
    elif compare in (None, "", "none"):
        compare = []
    elif isinstance(compare, str):
        compare = [s.strip() for s in compare.split(",") if s.strip()]
    info = {**info, "config": c, "evalset_choice": evalset_choice}
    if protocol == "camera":
        return _run_camera(c, method, name, kind, info, dataset, sname, device)
    out_dir = Path(c.get("out_dir") or Path("logs") / "eval" / f"{name}_{sname}")
    result = evaluate(
        method, images_from_dataset(dataset), pattern, border=int(c.get("border", 12)),
        report=report_spec(c, sname, name, kind, out_dir, info), compare=list(compare),
        save_exr=bool(c.get("save_exr", False)), hdr_gain=float(c.get("hdr_gain", 4.0)),
        hdr_probe_size=int(c.get("hdr_probe_size", 256)), device=device)
    if kind == "checkpoint" and info.get("run_name"):
        rec = tracking.record_eval(info["run_name"], sname, result.summary,
                                   str(out_dir / "results.json"), runs_dir=c.get("runs_dir"))
        if rec is not None:
            log.info("attached the %s results to run record %s", sname, rec.name)
    log.info("results: %s", out_dir / "results.md")
    return result


def _evaluation_inputs(c: dict[str, Any]) -> list[Path]:
    """The files an evaluation reads: the checkpoint and the evaluation set's files."""
    found = [Path(c["ckpt"])] if c.get("ckpt") else []
    roots = (c.get("evalset") or {}).get("root") or []
    for root in [roots] if isinstance(roots, str) else roots:
        if Path(root).is_dir():
            found += [f for f in Path(root).iterdir() if f.is_file()]
    return found


def report_spec(c: dict[str, Any], sname: str, name: str, kind: str, out_dir: Path,
                info: dict[str, Any]) -> Any:
    """The :class:`~demosaic.evaluation.report.ReportSpec` of the config's report keys
    (``worst_crops``, ``crop_size``, ``zoom``, ``progress``), the same for both protocols.
    Its reports must not replace the evaluation's inputs (checked here, before any work)."""
    from demosaic.evaluation.report import ReportSpec
    from demosaic.io.clash import check_outputs

    check_outputs(_evaluation_inputs(c), [out_dir / "results.json", out_dir / "results.md"],
                  hint="give another out_dir=")

    return ReportSpec(evalset=sname, name=name, kind=kind, worst_crops=int(c.get("worst_crops", 4)),
                      crop_size=int(c.get("crop_size", 96)), zoom=int(c.get("zoom", 2)),
                      out_dir=out_dir, progress=bool(c.get("progress", True)), info=info)


def check_protocol(c: dict[str, Any], family: str) -> str:
    """Validate ``protocol`` (and, for ``camera``, ``iso``/``camera``/``protocol_seed`` for a
    method of CFA ``family``, through :meth:`CameraProtocol.check`); returns the protocol.
    Raises :class:`ConfigError` naming the key, before any image is read."""
    protocol = str(c.get("protocol") or "clean")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"protocol={protocol!r} is not valid; choose one of {list(PROTOCOLS)} "
                          "(clean: noise-free mosaics; camera: simulated raw files)")
    if protocol == "camera":
        from demosaic.evaluation.capture import CameraProtocol

        CameraProtocol(family=family, iso=c.get("iso", 800), camera=c.get("camera"),
                       seed=c.get("protocol_seed", 0), border=int(c.get("border", 12)),
                       conditions=capture_conditions(c)).check()
        from demosaic.inference.highlights import HIGHLIGHT_MODES
        from demosaic.schema import check_choice

        check_choice(c.get("highlights", "none"), HIGHLIGHT_MODES, "highlights")
        from demosaic.noise.source import check_strength

        check_strength(c.get("denoise", 1.0), "denoise")
    return protocol


def capture_conditions(c: dict[str, Any]) -> Any:
    """The :class:`~demosaic.evaluation.capture.CaptureConditions` of ``conditions=``
    (an unknown key raises :class:`ConfigError` naming it and the valid ones)."""
    import dataclasses

    from demosaic.evaluation.capture import CaptureConditions

    given = c.get("conditions") or {}
    if not isinstance(given, dict):
        raise ConfigError(f"conditions={given!r} must be a mapping, e.g. "
                          "conditions.illuminant=tungsten conditions.bits=12")
    known = [f.name for f in dataclasses.fields(CaptureConditions)]
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise ConfigError(f"conditions.{unknown[0]} is not a capture condition; use {known}")
    return CaptureConditions(**given)


def _run_camera(c: dict[str, Any], method: Any, name: str, kind: str, info: dict[str, Any],
                dataset: Any, sname: str, device: str) -> Any:
    """The ``protocol=camera`` branch of :func:`run_evaluation`."""
    from demosaic import tracking
    from demosaic.evaluation.camera import evaluate_camera
    from demosaic.evaluation.clean import images_from_dataset

    iso = float(c.get("iso", 800))
    conditions = capture_conditions(c)
    iso_tag = f"{iso:g}" + conditions.tag()
    highlights = str(c.get("highlights", "none"))
    denoise = float(c.get("denoise", 1.0))
    run_tag = (iso_tag + ("" if highlights == "none" else f"_{highlights}")
               + ("" if denoise == 1.0 else f"_denoise{denoise:g}"))
    out_dir = Path(c.get("out_dir") or Path("logs") / "eval" / f"{name}_{sname}_camera_iso{run_tag}")
    cache = Path(c.get("raw_cache") or out_dir / "raws") / f"{sname}_iso{iso_tag}"
    result = evaluate_camera(
        method, images_from_dataset(dataset), iso=iso, camera=c.get("camera"),
        seed=int(c.get("protocol_seed", 0)), conditions=conditions, highlights=highlights,
        denoise=denoise, cache_dir=cache,
        border=int(c.get("border", 12)), report=report_spec(c, sname, name, kind, out_dir, info),
        device=device)
    if kind == "checkpoint" and info.get("run_name"):
        rec = tracking.record_eval(info["run_name"], f"{sname}_camera_iso{run_tag}", result.summary,
                                   str(out_dir / "results.json"), runs_dir=c.get("runs_dir"))
        if rec is not None:
            log.info("attached the %s camera-protocol results to run record %s", sname, rec.name)
    log.info("results: %s", out_dir / "results.md")
    return result


@hydra.main(config_path="pkg://demosaic.configs", config_name="eval", version_base="1.3")
@report_errors
def _hydra_main(cfg: DictConfig) -> None:
    choice = HydraConfig.get().runtime.choices.get("evalset")
    run_evaluation(cfg, choice)


def main() -> None:
    """Console-script entry point."""
    register_schemas()
    _hydra_main()


if __name__ == "__main__":
    main()
