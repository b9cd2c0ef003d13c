"""Turning a workspace into deployable files."""
