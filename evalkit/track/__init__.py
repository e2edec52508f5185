"""evalkit.track"""
