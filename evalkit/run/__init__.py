"""evalkit.run: one evaluation, wired stage by stage (the seam between the config and the layers).

:class:`~evalkit.run.run_settings.RunSettings` is built once from the Hydra config (nothing below
``run/`` and ``tasks/`` sees the config itself); :func:`~evalkit.run.evaluation.run_evaluation`
wires the stages.
"""
