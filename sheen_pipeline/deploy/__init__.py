"""Putting built files where a browser can reach them."""
