"""Experiment files of the shipped models' stages (``configs/lineage/experiment/``), found by
``demosaic-train +experiment=NAME`` through ``hydra.searchpath`` in ``train.yaml``."""
