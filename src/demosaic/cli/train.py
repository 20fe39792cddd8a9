"""``demosaic-train``: compose the training config with Hydra and call :func:`train`.

Examples::

    demosaic-train +experiment=quickstart          # the README's main job (bundled data, CPU)
    demosaic-train +experiment=v4_ssim trainer.max_steps=2000
    demosaic-train -m +experiment=quickstart trainer.optim.lr=1e-3,3e-4   # sweep
    torchrun --nproc_per_node=2 -m demosaic.cli.train +experiment=v4      # DDP
    demosaic-train --cfg job +experiment=v4        # print the composed config, train nothing

In a multirun sweep each job's run name gets ``_<job number>`` appended so jobs never share
a checkpoint folder.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import hydra
from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from demosaic.allocator import keep_freed_memory
from demosaic.cli.common import EXIT_INTERRUPTED, report_errors
from demosaic.training.config import TrainSchema, validate_components

log = logging.getLogger(__name__)


def register_schemas() -> None:
    """Register ``train_schema`` (:class:`demosaic.training.config.TrainSchema`) in Hydra's
    ConfigStore (idempotent). Call before composing ``configs/train.yaml``."""
    ConfigStore.instance().store(name="train_schema", node=TrainSchema)


def run_training(cfg: DictConfig, job_num: int | None = None) -> Any:
    """Validate a composed training config and train. Tests call this with a composed config."""
    from demosaic.training.loop import train, trainer_config_from

    container: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore[assignment]
    validate_components(container)
    trainer = trainer_config_from(container["trainer"])
    if job_num is not None:
        trainer.run_name = f"{trainer.run_name}_{job_num}"
        container["trainer"]["run_name"] = trainer.run_name
    return train(dataset_cfg=container["dataset"], model_cfg=container["model"],
                 loss_cfg=container["loss"], trainer=trainer, full_config=container)


@hydra.main(config_path="pkg://demosaic.configs", config_name="train", version_base="1.3")
@report_errors
def _hydra_main(cfg: DictConfig) -> None:
    hc = HydraConfig.get()
    job_num = hc.job.num if hc.mode == RunMode.MULTIRUN else None
    result = run_training(cfg, job_num)
    if result.interrupted:
        sys.exit(EXIT_INTERRUPTED)
    log.info("done: %s at step %d, best val PSNR %.3f dB (%s)", result.run_name, result.step,
             result.best_metric, result.best_path)


def main() -> None:
    """Console-script entry point. Freed memory stays in the process (:mod:`demosaic.allocator`):
    every step allocates the same activations again, which glibc would otherwise fault in anew
    (docs/BENCHMARKS.md, "Training throughput")."""
    keep_freed_memory()
    register_schemas()
    _hydra_main()


if __name__ == "__main__":
    main()
