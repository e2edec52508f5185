"""evalkit: is embedding-model version B safe to ship instead of A? (package map: README.md)"""

__version__ = "0.1.0"
