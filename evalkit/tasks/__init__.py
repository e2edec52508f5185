"""The ``evalkit`` command's tasks: one module per ``task=<name>``, each with
``run(cfg, overrides) -> outcome`` (the :class:`evalkit.sweep.JobOutcome` fields)."""
