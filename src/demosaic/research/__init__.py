"""Research toolbox: the research log's open questions as one command each.

Modules (each small, plain Python arguments, no Hydra):

- :mod:`.hooks`        the research behaviours of the training loop, as hooks
- :mod:`.adversarial`  small patch discriminator and hinge losses (``trainer.adversarial``)
- :mod:`.curriculum`   patch-size curriculum (``trainer.curriculum``)
- :mod:`.distill`      knowledge distillation from a teacher checkpoint (``trainer.distill``)
- :mod:`.cfa_stats`    synthetic-CFA vs raw-teacher CFA statistics, written as PNG plots
- :mod:`.plots`        line plots with matplotlib (the ``plots`` extra)
- :mod:`.forgetting`   forgetting report from before/after evaluation runs
- :mod:`.speed`        quality/speed pairs: INT8 quantization, adaptive tiling

See docs/RESEARCH.md for the commands and what they measured.
"""
