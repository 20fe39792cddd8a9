"""Hydra configs, shipped as the package ``demosaic.configs`` (see pyproject.toml)."""
