"""evalkit: is embedding-model version B safe to ship instead of A?

The pipeline's data flow mirrors the package layout::

    data (load) -> embed -> index -> retrieve (replay) -> metrics (score) -> compare -> track

plus ``clicks`` (click logs, click-derived judgments, click simulation) and ``checks``
(endpoint sanity and API-contract checks).
"""

__version__ = "0.1.0"
