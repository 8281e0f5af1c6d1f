"""Dialpad: event subscriptions over a REST-issued WebSocket URL."""

from .client import DialpadClient

__all__ = ["DialpadClient"]
