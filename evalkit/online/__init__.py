"""The online A/B (canary): read the gateway log, compare its two arms, give the rollout verdict.

    read (streamed, per-unit sums) -> stats (SRM, clustered ratio intervals, sequential
    intervals) -> analysis (figures + gates) -> verdict -> track / report

``evalkit task=online`` (:mod:`evalkit.tasks.online`) runs it.
"""
