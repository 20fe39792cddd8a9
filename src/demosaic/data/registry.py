"""The dataset registry: ``name`` -> (config dataclass, factory) of every dataset kind.

Each dataset module (:mod:`.synthetic`, :mod:`.raw_teacher`, :mod:`.torture`,
:mod:`.mixture`, :mod:`.folder`) registers its kind here with ``@DATASETS.register``; the
package :mod:`demosaic.data` imports them all, so code outside the package uses
``demosaic.data.DATASETS`` (every kind registered) and the modules inside use this one
(no import cycle between the package and its modules).
"""

from __future__ import annotations

import logging

from torch.utils.data import Dataset

from demosaic.registry import Registry

log = logging.getLogger(__name__)

#: name -> (config dataclass, factory) of every dataset kind.
DATASETS: Registry[Dataset] = Registry("dataset")

__all__ = ["DATASETS"]
