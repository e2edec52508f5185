"""The ``evalkit`` command's tasks (``task=<name>``), each with its terminal output.

One module per task, each with ``run(cfg, overrides) -> outcome`` (the
:class:`evalkit.sweep.JobOutcome` fields), imported only when its task runs.
"""
