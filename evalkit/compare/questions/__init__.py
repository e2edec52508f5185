"""The three questions a comparison answers apart, one module each.

- :mod:`.quality` - is B at least as good as A?  Paired tests per metric, the fixed-sequence
  family (primary at full alpha, secondaries Holm-corrected), calls and the quality gates.
- :mod:`.behaviour` - how differently does B rank and score?  Top-k agreement, RBO, score drift,
  unjudged@k, the score-threshold mapping and the behaviour gates (follow-ups by default).
- :mod:`.contract` - does B keep its contracts, at what cost?  Vector norms, endpoint checks,
  the latency probe and the contract gates.

:func:`evalkit.compare.verdict.compare_pair` asks all three and adds slices, actions and the
worst regressions.
"""
