"""evalkit.checks"""
