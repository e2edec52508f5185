"""evalkit.clicks: click logs as evidence about model versions: ingestion, click judgments,
similarity-vs-click correlation, the scatter plot and the ``clicks`` stage (the ``ClickLog`` type
and click simulation are data: :mod:`evalkit.data.click_log`, :mod:`evalkit.data.click_simulation`).
"""
