"""The noise level of a raw file: its profile (:mod:`.profile`), read from a DNG or estimated
from the raw data (:mod:`.estimate`), and the per-pixel standard-deviation map the networks
take as input (:mod:`.noise_map`)."""

from demosaic.noise.profile import NoiseProfile

__all__ = ["NoiseProfile"]
