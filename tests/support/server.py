"""Run an ASGI app with uvicorn on a loopback port, in a thread, for the length of a test (the
package's own loopback server, which the browser checks use too)."""

from sheen_pipeline.checks.loopback import serving

__all__ = ["serving"]
