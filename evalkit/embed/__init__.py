"""evalkit.embed"""
