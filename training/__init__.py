"""Training, in its own room: the run config's schema, the trainer (updates, evaluations, checkpoints with
their training state), optimizer groups, EMA, initialization, the update's fast path, distributed setup, run
directories and the run's summary. It imports what acts (``seqrl.agents``) and the data; nothing that acts
imports it."""
