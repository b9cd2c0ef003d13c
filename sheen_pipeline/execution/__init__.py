"""Running planned tasks: safe workspace writes and per-type task handlers."""
