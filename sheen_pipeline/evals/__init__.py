"""Measuring what the builder is for: suites of app requests with hidden acceptance steps."""
