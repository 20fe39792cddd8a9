"""Evaluation against ground truth: the clean protocol (:mod:`.clean`: noise-free mosaics) and
the camera protocol (:mod:`.camera`: simulated raw files through the user's path)."""
