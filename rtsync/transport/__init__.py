"""Vendor-agnostic I/O: a WebSocket link and a cancellable HTTP client."""
