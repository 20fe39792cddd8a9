"""Inference: a raw file to an EXR, TIFF or linear DNG. :mod:`.develop` (raw -> balanced mosaic ->
network -> colour), :mod:`.tiling` (exact tiles aligned to the CFA period), :mod:`.highlights`
(clipped raw channels)."""
