"""HTTP: the preview server (and, later, the build API)."""
