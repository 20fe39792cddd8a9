"""Experiment files of candidates that lost their rules (``configs/candidates/experiment/``),
found by ``demosaic-train +experiment=NAME`` through ``hydra.searchpath`` in ``train.yaml``."""
