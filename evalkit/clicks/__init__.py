"""evalkit.clicks"""
