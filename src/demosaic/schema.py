"""One way to turn a config mapping into a dataclass, with an error that names the key.

Every structured part of the configuration (the registries' component configs, the loss, the
trainer, ``demosaic-prepare``'s modes) goes through :func:`merge_into`: OmegaConf checks the
keys and types against the dataclass, and any failure becomes a
:class:`~demosaic.errors.ConfigError` naming ``where.key``, the problem and the valid keys.
:func:`check_choice` is the one check of a value against its allowed names.
No Hydra here: only OmegaConf, which the configs are written in, imported when a config is
merged (``demosaic-infer`` never merges one, and does not pay for the import).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from demosaic.errors import ConfigError

if TYPE_CHECKING:
    from omegaconf import DictConfig


def merge_into(schema: type, data: Mapping[str, Any] | DictConfig, where: str,
               hint: str = "") -> DictConfig:
    """``data`` merged over ``schema``'s defaults, type-checked.

    Args:
        schema: A dataclass type.
        data: A mapping (or OmegaConf config) of overrides.
        where: The config path of ``data`` for messages (``"model"``, ``"trainer"`` ...).
        hint: Extra advice appended to the message.

    Returns:
        The merged structured config (``OmegaConf.to_object`` gives the dataclass,
        ``OmegaConf.to_container`` a plain dict).

    Raises:
        ConfigError: an unknown key or a value of the wrong type, naming ``where.key``.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.merge(OmegaConf.structured(schema), data)  # type: ignore[return-value]
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None) or getattr(exc, "key", None) or ""
        valid = [f.name for f in dataclasses.fields(schema)]
        raise ConfigError(f"{where}.{key}: {str(exc).splitlines()[0]}. Valid keys: {valid}"
                          f"{'; ' + hint if hint else ''}") from None


def check_choice(value: Any, choices: Sequence[Any], key: str) -> None:
    """Raise :class:`ConfigError` naming ``key`` (a config path such as
    ``dataset.train.space``, or an argument name) unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise ConfigError(f"{key}={value!r} is not valid; choose one of {list(choices)}")


__all__ = ["check_choice", "merge_into"]
