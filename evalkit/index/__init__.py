"""evalkit.index"""
