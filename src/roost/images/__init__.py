"""Environments: the catalog of known envs (and, later, building and pulling their images)."""
