"""QuickMeet.Chat: Rocket.Chat's realtime API over Meteor DDP."""

from typing import TYPE_CHECKING, Any, List

from .client import QuickMeetClient
from .ejson import CustomType
from .event import QuickMeetEvent
from .failures import VersionMismatch

if TYPE_CHECKING:  # the views load (and pydantic with them) on first use
    from .models import (
        Activity,
        DeletedMessage,
        Message,
        Notification,
        Room,
        RoomChange,
        Subscription,
        SubscriptionChange,
        UserRef,
    )

_VIEWS = {"Activity", "DeletedMessage", "Message", "Notification", "Room", "RoomChange", "Subscription",
          "SubscriptionChange", "UserRef"}


def __getattr__(name: str) -> Any:
    if name in _VIEWS:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(__all__)


__all__ = [
    "Activity",
    "CustomType",
    "DeletedMessage",
    "Message",
    "Notification",
    "QuickMeetClient",
    "QuickMeetEvent",
    "Room",
    "RoomChange",
    "Subscription",
    "SubscriptionChange",
    "UserRef",
    "VersionMismatch",
]
