"""Shared pytest fixtures. Keep them generic and small: other test files use them too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded numpy generator (same numbers in every test)."""
    return np.random.default_rng(1234)


@pytest.fixture
def make_dng(tmp_path: Path, rng: np.random.Generator) -> Callable[..., tuple[Path, np.ndarray]]:
    """Factory writing a small synthetic CFA DNG with :func:`demosaic.io.dng.write_dng`.

    ``make_dng(layout="xtrans", size=(36, 48), name="x.dng", cfa=None, **write_dng_kwargs)``
    returns ``(path, cfa)`` where ``cfa`` is what was written: a ``(H, W)`` uint16 array of
    random data numbers between the black and white levels unless ``cfa`` is given.
    ``layout`` is a pattern name or a ``(P, P)`` array of channel indices of the top-left.
    """
    from demosaic.io.dng import write_dng

    def factory(layout: Any = "xtrans", size: tuple[int, int] = (36, 48), name: str = "x.dng",
                cfa: np.ndarray | None = None, **kwargs: Any) -> tuple[Path, np.ndarray]:
        black = int(kwargs.get("black_level", 0))
        white = int(kwargs.get("white_level", 65535))
        if cfa is None:
            cfa = rng.integers(black, white + 1, size=size).astype(np.uint16)
        path = write_dng(tmp_path / name, cfa, layout, **kwargs)
        return path, cfa

    return factory


@pytest.fixture
def xtrans_dng(make_dng: Callable[..., tuple[Path, np.ndarray]]) -> Path:
    """A 36x48 X-Trans DNG in a non-canonical phase (visible top-left at pattern (2, 3)),
    8/10/4/2 px margins, black 1024, white 15000, as-shot neutral (0.5, 1, 0.625)."""
    from demosaic.cfa import XTRANS

    path, _ = make_dng(XTRANS.shifted(2, 3), black_level=1024, white_level=15000,
                       margins=(8, 10, 4, 2), as_shot_neutral=(0.5, 1.0, 0.625),
                       make="TestMake", model="X-Test 1", name="xtrans.dng")
    return path
