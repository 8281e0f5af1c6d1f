"""QuickMeet.Chat: Rocket.Chat's realtime API over Meteor DDP."""

from .client import QuickMeetClient
from .ejson import CustomType
from .failures import VersionMismatch
from .models import (
    Activity,
    DeletedMessage,
    Message,
    Notification,
    QuickMeetEvent,
    Room,
    RoomChange,
    Subscription,
    SubscriptionChange,
    UserRef,
)

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
