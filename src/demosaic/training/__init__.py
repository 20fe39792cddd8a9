"""Training: the loop (:mod:`.loop`), its hooks and state (:mod:`.hooks`), what a run writes
(:mod:`.outputs`), the seeded data order (:mod:`.data_order`) and the trainer's config schema
(:mod:`.config`)."""
