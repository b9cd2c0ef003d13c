"""Checks of deployed previews in a real browser."""
