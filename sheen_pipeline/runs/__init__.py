"""Driving runs of the code location from outside it (CLI, API, sensors, ops): how runs are
named and tagged, created with origins the UI can re-execute, launched, executed here,
re-executed from failure, and how the webserver is asked to show new jobs. Jobs are reached by
name through the code location module, so nothing here imports `sheen_pipeline.defs`."""
