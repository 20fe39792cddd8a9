"""Name -> (config dataclass, factory) registries with validated construction.

Every buildable component (dataset, model, loss term) registers a dataclass describing its
arguments. :meth:`Registry.build` merges the user's mapping onto that dataclass with
OmegaConf, so a misspelt key or a value of the wrong type fails with a
:class:`~demosaic.errors.ConfigError` that names the key, instead of being silently ignored.
Library code receives plain Python values, never a ``DictConfig``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from demosaic.errors import ConfigError
from demosaic.schema import merge_into

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    config_cls: type
    factory: Callable[..., T]


class Registry(Generic[T]):
    """A named collection of factories, each with a config dataclass.

    Example::

        MODELS = Registry("model")

        @dataclass
        class UNetConfig:
            width: int = 32

        @MODELS.register("unet", UNetConfig)
        def make_unet(width: int) -> nn.Module: ...

        MODELS.build({"name": "unet", "width": 48})
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, config_cls: type) -> Callable[[Callable[..., T]], Callable[..., T]]:
        if not dataclasses.is_dataclass(config_cls):
            raise TypeError(f"{self.kind} {name!r}: config_cls must be a dataclass")

        def deco(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._entries[name] = Entry(name, config_cls, factory)
            return factory

        return deco

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entry(self, name: str) -> Entry[T]:
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; registered: {self.names()}")
        return self._entries[name]

    def validate(self, cfg: Mapping[str, Any], where: str | None = None) -> tuple[str, dict[str, Any]]:
        """Check ``cfg`` (with a ``name`` key) against the entry's dataclass.

        Returns:
            ``(name, kwargs)`` with defaults filled in, as plain Python containers.

        Raises:
            ConfigError: naming ``where.key`` for unknown keys, wrong types or a missing name.
        """
        from omegaconf import OmegaConf

        where = where or self.kind
        data = OmegaConf.to_container(cfg, resolve=True) if OmegaConf.is_config(cfg) else dict(cfg)
        if "name" not in data:
            raise ConfigError(f"{where}: missing key 'name'; choose one of {self.names()}")
        data = dict(data)
        name = data.pop("name")
        entry = self.entry(name)
        merged = merge_into(entry.config_cls, data, where, hint=f"{self.kind} {name!r}")
        kwargs = OmegaConf.to_container(merged, resolve=True)
        return name, dict(kwargs)  # type: ignore[arg-type]

    def rebuild(self, name: str, kwargs: Mapping[str, Any], where: str | None = None) -> T:
        """Build again from the arguments a :meth:`build` recorded (a checkpoint's model
        spec): their types were checked when they were first built and the factory checks
        their values, so only the keys are checked here, against the dataclass's fields.
        No OmegaConf: loading a model for ``demosaic-infer`` does not import it.

        Raises:
            ConfigError: an unknown name or key, naming ``where``.
        """
        entry = self.entry(name)
        known = sorted(f.name for f in dataclasses.fields(entry.config_cls))
        unknown = sorted(set(kwargs) - set(known))
        if unknown:
            raise ConfigError(f"{where or self.kind}: unknown key(s) {unknown} for {self.kind} "
                              f"{name!r}; valid keys: {known}")
        log.debug("rebuilding %s %r with %s", self.kind, name, dict(kwargs))
        return entry.factory(**kwargs)

    def build(self, cfg: Mapping[str, Any], where: str | None = None, **extra: Any) -> T:
        """Validate ``cfg`` and call the factory with its keys plus ``extra``."""
        name, kwargs = self.validate(cfg, where)
        kwargs.update(extra)
        log.debug("building %s %r with %s", self.kind, name, kwargs)
        return self._entries[name].factory(**kwargs)
