"""Doshii: the App (partner) WebSocket v3."""

from .client import DoshiiClient

__all__ = ["DoshiiClient"]
