"""Training: the loop (:mod:`.loop`), the state and hook interface it shares
(:mod:`.state`), the hooks (:mod:`.hooks`), what a run writes (:mod:`.outputs`), the seeded
data order (:mod:`.data_order`), the learning-rate schedule and time budget
(:mod:`.schedule`), device/seed/distributed/precision set-up (:mod:`.runtime`), starting
weights (:mod:`.warm_start`), EMA weights (:mod:`.ema`) and the trainer's config schema
(:mod:`.config`).

Imports run one way: ``loop -> hooks -> outputs -> state, ema``; nothing here imports
:mod:`.loop`, and nothing imports :mod:`demosaic.research` (its hooks register through
``trainer.plugins``)."""
