"""Inference: a raw file to an EXR, TIFF or linear DNG, one module per job.

:mod:`.settings` (one :class:`~.settings.InferSettings` per run), :mod:`.colour` (one colour
plan per file: white balances, matrix, primaries, ICC), :mod:`.develop` (raw -> balanced
mosaic -> network -> highlights -> output balance), :mod:`.writers` (EXR, TIFF, linear DNG
and their metadata), :mod:`.run` (:func:`~.run.infer_file`: one file), :mod:`.batch`
(:func:`~.batch.infer_batch`: folders, the threaded pipeline), :mod:`.tiling` (exact tiles
aligned to the CFA period), :mod:`.highlights` (clipped raw channels). Which model runs is
:mod:`demosaic.models.zoo`."""
