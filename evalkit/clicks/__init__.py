"""evalkit.clicks: click logs as evidence about model versions (code map: evalkit/README.md)."""
