"""Evaluation against ground truth: the clean protocol (:mod:`.clean`: noise-free mosaics) and
the camera protocol (:mod:`.camera`: simulated raw files, :mod:`.capture`, through the user's
path), both on one loop (:mod:`.loop`) and one report module (:mod:`.report`: results.json,
results.md, worst-region crops, Markdown tables)."""
