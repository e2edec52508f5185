"""evalkit.compare"""
