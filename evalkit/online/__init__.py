"""The online A/B (canary): read the gateway log, compare its two arms, give the rollout verdict
(read -> stats -> analysis -> verdict -> track / report); ``evalkit task=online`` runs it.
"""
