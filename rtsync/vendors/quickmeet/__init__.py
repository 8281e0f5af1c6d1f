"""QuickMeet.Chat: Rocket.Chat's realtime API over Meteor DDP."""

from .client import QuickMeetClient

__all__ = ["QuickMeetClient"]
