"""One package per vendor: protocol.py (sans-I/O), models.py (payloads), client.py (the public client)."""
