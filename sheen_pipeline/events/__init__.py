"""Build events: stored first (outbox), then pushed as signed webhooks and served over HTTP."""
