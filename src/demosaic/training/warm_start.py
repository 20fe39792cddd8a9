"""The starting weights of a run: ``trainer.init_from`` (strict, or ``init_partial`` to grow
a network), and ``trainer.freeze`` (parameter-name prefixes kept fixed).

A fine-tune's starting checkpoint must exist before any data is read (:func:`check_init`);
its EMA weights are loaded when it has them (:func:`load_init`).
"""

from __future__ import annotations

import logging
from pathlib import Path

from torch import nn

from demosaic.errors import CheckpointError, ConfigError
from demosaic.models.checkpoint import load_checkpoint
from demosaic.training.config import TrainerConfig

log = logging.getLogger(__name__)


def check_init(t: TrainerConfig) -> Path:
    """The existing ``trainer.init_from`` file; a missing one is a :class:`CheckpointError`
    naming the command that produces it (``trainer.init_from_hint``)."""
    path = Path(t.init_from or "")
    if not path.is_file():
        hint = f" It is produced by `{t.init_from_hint}`." if t.init_from_hint else ""
        raise CheckpointError(f"trainer.init_from={t.init_from} does not exist: this is a fine-tune "
                              f"and needs its starting checkpoint.{hint} Or pass trainer.init_from=PATH.")
    return path


def load_init(model: nn.Module, t: TrainerConfig) -> None:
    """Load ``trainer.init_from`` into ``model`` (its EMA weights when it has them): strict,
    or with ``trainer.init_partial`` new model tensors keep their initialisation (the
    checkpoint must still fit inside the model)."""
    path = check_init(t)
    ckpt = load_checkpoint(path)
    state = ckpt.get("ema_state_dict") or ckpt["state_dict"]
    try:
        result = model.load_state_dict(state, strict=not t.init_partial)
    except RuntimeError as exc:
        raise CheckpointError(f"trainer.init_from={path} does not fit the configured model "
                              f"({ckpt['model']['name']} {ckpt['model']['kwargs']} in the checkpoint): "
                              f"{' '.join(str(exc).split())[:400]}. Use the same model=... as the run "
                              "that produced it.") from None
    if t.init_partial:
        if result.unexpected_keys:  # the checkpoint has weights the model has no place for
            raise CheckpointError(
                f"trainer.init_from={path}: trainer.init_partial=true lets the model have new "
                f"parameters, but the checkpoint has {len(result.unexpected_keys)} tensors the "
                f"model lacks (first: {result.unexpected_keys[0]}); the model must contain the "
                "checkpoint's network")
        log.info("initialised from %s (step %s); %d new tensors keep their initialisation: %s",
                 path, ckpt.get("step"), len(result.missing_keys),
                 ", ".join(result.missing_keys[:6]) + (" ..." if len(result.missing_keys) > 6 else ""))
        return
    log.info("initialised from %s (step %s)", path, ckpt.get("step"))


def apply_freeze(model: nn.Module, prefixes: list[str]) -> dict[str, nn.Parameter]:
    """Freeze parameters whose names start with any prefix; return the trainable ones."""
    names = [n for n, _ in model.named_parameters()]
    for prefix in prefixes:
        if not any(n.startswith(prefix) for n in names):
            raise ConfigError(f"trainer.freeze: no parameter name starts with {prefix!r}; "
                              f"top-level parts are {sorted({n.split('.')[0] for n in names})}")
    trainable = {}
    for n, p in model.named_parameters():
        frozen = any(n.startswith(prefix) for prefix in prefixes)
        p.requires_grad_(not frozen)
        if not frozen:
            trainable[n] = p
    if prefixes:
        log.info("froze %d of %d parameter tensors (%s)", len(names) - len(trainable), len(names), prefixes)
    if not trainable:
        raise ConfigError("trainer.freeze froze every parameter; nothing left to train")
    return trainable


__all__ = ["check_init", "load_init", "apply_freeze"]
