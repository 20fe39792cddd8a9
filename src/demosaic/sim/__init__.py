"""Camera simulation (:mod:`.camera`: real bodies' colour matrices, light, white balance,
Poisson-Gaussian noise, levels and clipping) and synthetic raw files."""
