"""Pydantic views of QuickMeet.Chat (Rocket.Chat) stream payloads; unknown fields are kept."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict, List, Optional, Type

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["Activity", "DeletedMessage", "Message", "Notification", "Room", "RoomChange",
           "Subscription", "SubscriptionChange", "UserRef"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


class _FirstArg(_Model):
    """A stream event's `args` list carries the object first; a bare object is taken as it is."""

    @model_validator(mode="before")
    @classmethod
    def _first(cls, data: Any) -> Any:
        return data[0] if isinstance(data, list) and data else data


class _Change(_Model):
    """`[action, item]` args."""

    @model_validator(mode="before")
    @classmethod
    def _change(cls, data: Any) -> Any:
        if isinstance(data, list) and len(data) >= 2:
            return {"action": data[0], "item": data[1]}
        return data


class UserRef(_Model):
    id: Optional[str] = Field(default=None, alias="_id")
    username: Optional[str] = None
    name: Optional[str] = None


class Message(_Model):
    """A room message (`stream-room-messages` args[0], `loadHistory`, `sendMessage`); dates are UTC datetimes.

    From `__my_messages__`, `room` holds the second arg (`roomParticipant`, `roomType`, `roomName`)."""

    id: Optional[str] = Field(default=None, alias="_id")
    rid: Optional[str] = None
    msg: Optional[str] = None
    ts: Optional[datetime] = None
    u: Optional[UserRef] = None
    updated_at: Optional[datetime] = Field(default=None, alias="_updatedAt")
    tmid: Optional[str] = None
    t: Optional[str] = None
    alias: Optional[str] = None
    emoji: Optional[str] = None
    attachments: List[Any] = []
    reactions: Dict[str, Any] = {}
    mentions: List[Any] = []
    room: Optional[Dict[str, Any]] = None

    @model_validator(mode="before")
    @classmethod
    def _args(cls, data: Any) -> Any:
        if isinstance(data, list) and data and isinstance(data[0], dict):
            extra = data[1] if len(data) > 1 and isinstance(data[1], dict) else None
            return {**data[0], "room": extra} if extra is not None else data[0]
        return data


class Notification(_FirstArg):
    """`stream-notify-user` `<uid>/notification` args[0]."""

    title: Optional[str] = None
    text: Optional[str] = None
    duration: Optional[int] = None
    payload: Dict[str, Any] = {}


class Room(_FirstArg):
    id: Optional[str] = Field(default=None, alias="_id")
    name: Optional[str] = None
    fname: Optional[str] = None
    t: Optional[str] = None
    updated_at: Optional[datetime] = Field(default=None, alias="_updatedAt")


class Subscription(_Model):
    id: Optional[str] = Field(default=None, alias="_id")
    rid: Optional[str] = None
    name: Optional[str] = None
    unread: Optional[int] = None
    alert: Optional[bool] = None
    open: Optional[bool] = None
    updated_at: Optional[datetime] = Field(default=None, alias="_updatedAt")


class RoomChange(_Change):
    """`<uid>/rooms-changed`: `action` is inserted, updated, removed or changed."""

    action: str
    item: Room


class SubscriptionChange(_Change):
    """`<uid>/subscriptions-changed`: `action` is inserted, updated or removed."""

    action: str
    item: Subscription


class Activity(_Model):
    """`<rid>/user-activity` (`[username, ["user-typing"], {}]`) or legacy `<rid>/typing` (`[username, bool]`)."""

    username: str
    activities: List[str] = []

    @model_validator(mode="before")
    @classmethod
    def _args(cls, data: Any) -> Any:
        if isinstance(data, list) and len(data) >= 2:
            what = data[1]
            if isinstance(what, bool):  # the legacy typing flag
                what = ["user-typing"] if what else []
            return {"username": data[0], "activities": what}
        return data

    @property
    def typing(self) -> bool:
        return "user-typing" in self.activities


class DeletedMessage(_FirstArg):
    """`<rid>/deleteMessage` args[0]."""

    id: str = Field(alias="_id")


# (stream, the event name's last part or "*" for any) -> model
_VIEWS: Dict[str, Dict[str, Type[BaseModel]]] = {
    "stream-room-messages": {"*": Message},
    "stream-notify-user": {"notification": Notification, "rooms-changed": RoomChange,
                           "subscriptions-changed": SubscriptionChange},
    "stream-notify-room": {"typing": Activity, "user-activity": Activity, "deleteMessage": DeletedMessage},
}
