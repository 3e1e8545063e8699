"""Hydra config files (YAML); a package so that Hydra finds them after install."""
