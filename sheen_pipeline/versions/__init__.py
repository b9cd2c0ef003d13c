"""Versions of an app: a build may change an earlier succeeded build of its project (its base).
Resolving a base, what the planner is shown of it, and the diff between a version and its base."""
