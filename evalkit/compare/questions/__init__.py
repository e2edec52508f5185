"""The three questions a comparison answers apart, one module each: quality (is B at least as
good?), behaviour (how differently does B rank and score?) and contract (does B keep its
contracts, at what cost?); :func:`evalkit.compare.verdict.compare_pair` asks all three.
"""
