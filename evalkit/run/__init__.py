"""evalkit.run: one evaluation, wired stage by stage (the seam between the config and the layers).

- :mod:`~evalkit.run.run_settings` - :class:`RunSettings`, built once from the Hydra config; nothing
  below ``run/`` and ``tasks/`` sees the config itself;
- :mod:`~evalkit.run.load` - the model versions and the data;
- :mod:`~evalkit.run.version` - one version: the engine embeds and searches, then scoring;
- :mod:`~evalkit.run.retrieved_pairs`, :mod:`~evalkit.run.latency_stage`, :mod:`~evalkit.run.reindex_stage`,
  :mod:`~evalkit.run.click_stage`, :mod:`~evalkit.run.compare` - the stages over every version;
- :mod:`~evalkit.run.observer` - the hooks a run calls; :mod:`~evalkit.run.mlflow_observer`
  implements them with MLflow;
- :mod:`~evalkit.run.evaluation` - :func:`run_evaluation`, which only wires the above.
"""
