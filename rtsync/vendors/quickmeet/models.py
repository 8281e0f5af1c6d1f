"""Pydantic views of QuickMeet.Chat (Rocket.Chat) messages and notifications; unknown fields are kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Message", "Notification", "UserRef"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class UserRef(_Model):
    id: Optional[str] = Field(default=None, alias="_id")
    username: Optional[str] = None
    name: Optional[str] = None


class Message(_Model):
    """A room message (`stream-room-messages` args[0], `loadHistory`, `sendMessage`); dates are UTC datetimes."""

    id: Optional[str] = Field(default=None, alias="_id")
    rid: Optional[str] = None
    msg: Optional[str] = None
    ts: Optional[datetime] = None
    u: Optional[UserRef] = None
    updated_at: Optional[datetime] = Field(default=None, alias="_updatedAt")
    tmid: Optional[str] = None
    t: Optional[str] = None
    mentions: List[Any] = []


class Notification(_Model):
    """`stream-notify-user` `<uid>/notification` args[0]."""

    title: Optional[str] = None
    text: Optional[str] = None
    duration: Optional[int] = None
    payload: Dict[str, Any] = {}
