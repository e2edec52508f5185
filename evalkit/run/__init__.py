"""evalkit.run: one evaluation, wired stage by stage (the seam between the config and layers)."""
