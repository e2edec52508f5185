"""evalkit.metrics"""
