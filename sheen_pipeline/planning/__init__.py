"""Turning a provider's proposed tasks into a valid, acyclic plan."""
