"""Dashly Realtime Services (the Nginx Push Stream Module): WebSocket, long polling, short polling."""

from . import channels
from .client import DashlyClient
from .cursor import CHANNEL_DELETED, PING, Cursor, DashlyEvent

__all__ = ["CHANNEL_DELETED", "PING", "Cursor", "DashlyClient", "DashlyEvent", "channels", "models"]
