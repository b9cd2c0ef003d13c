"""sheen_pipeline: a prompt becomes a plan, a per-build Dagster job, a built site and a preview URL."""
