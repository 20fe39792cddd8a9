"""demosaic: neural demosaicking of X-Trans and Bayer raw files.

Subpackages: :mod:`demosaic.cfa` (patterns), :mod:`demosaic.color`, :mod:`demosaic.sim`
(camera simulation), :mod:`demosaic.io` (raw, LibRaw, DNG, images), :mod:`demosaic.data`,
:mod:`demosaic.models` (networks, checkpoints, which weights), :mod:`demosaic.training`,
:mod:`demosaic.inference`, :mod:`demosaic.evaluation`, :mod:`demosaic.export`,
:mod:`demosaic.cli`.
"""

__version__ = "0.1.0"
