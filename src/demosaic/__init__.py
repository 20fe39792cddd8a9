"""demosaic: neural demosaicking of X-Trans and Bayer raw files.

Subpackages: :mod:`demosaic.cfa` (patterns), :mod:`demosaic.color`, :mod:`demosaic.io`
(raw, DNG, images), :mod:`demosaic.data`, :mod:`demosaic.models`, :mod:`demosaic.engine`,
:mod:`demosaic.cli`.
"""

__version__ = "0.1.0"
