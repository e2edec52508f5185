"""evalkit.clicks: click logs as evidence about model versions.

One concept per module:

- :mod:`evalkit.data.click_log` (a data type: ``EvalData.clicks``) - ``ClickLog``, the
  pair-level log (clicks, impressions, positions, ``measure`` = click rate or click share,
  ``simulated``, ``digest()``);
- :mod:`~evalkit.clicks.ingest` - :func:`load_click_log`: event-level or aggregated files through
  ``datasets``, configurable columns, validation with file / row / field errors;
- :mod:`~evalkit.clicks.judgments` - COEC / CTR / click-share graded :class:`Judgments`
  (``ClickJudgments``: the cut-offs used - click share's derived from the log - and the grade
  histogram);
- :mod:`~evalkit.clicks.correlation` - similarity-vs-click Spearman / Kendall / Pearson (pooled
  and within query) with query-bootstrap intervals and paired differences (the pairs' similarities:
  :mod:`evalkit.pairs`);
- :mod:`~evalkit.clicks.plot` - the similarity vs click rate / share scatter plot;
- :mod:`evalkit.data.click_simulation` (synthetic data, like the demo) - position-based and
  cascade click simulation, ``simulate_demo_clicks``; :mod:`evalkit.retrieve.bm25` - the BM25
  "production" ranking;
- :mod:`~evalkit.clicks.stage` - the ``clicks`` config group driving all of the above for the
  pipeline: :func:`load_clicks`, :func:`click_report`.

Modules are imported on use (this package imports nothing heavy).
"""
