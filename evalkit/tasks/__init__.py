"""The ``evalkit`` command's tasks (``task=<name>``), each with its terminal output.

One module per task, each with ``run(cfg, overrides) -> outcome`` (the
:class:`evalkit.sweep.JobOutcome` fields) that :mod:`evalkit.cli` dispatches to:
:mod:`~evalkit.tasks.evaluate` (the default), :mod:`~evalkit.tasks.check`,
:mod:`~evalkit.tasks.log`, :mod:`~evalkit.tasks.runs`, :mod:`~evalkit.tasks.vectors`.  A task
module is imported only when its task runs (this package imports none of them).
"""
