"""Voxsig: a Chatwoot-style Rails ActionCable RoomChannel."""

from .client import VoxsigClient

__all__ = ["VoxsigClient"]
