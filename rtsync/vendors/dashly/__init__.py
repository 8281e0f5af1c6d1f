"""Dashly Realtime Services (the Nginx Push Stream Module): WebSocket, long polling, short polling."""

from .client import DashlyClient
from .protocol import CHANNEL_DELETED, Cursor, DashlyEvent

__all__ = ["CHANNEL_DELETED", "Cursor", "DashlyClient", "DashlyEvent"]
