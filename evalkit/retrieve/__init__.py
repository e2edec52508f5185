"""evalkit.retrieve"""
