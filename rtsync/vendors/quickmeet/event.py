"""`QuickMeetEvent`: a QuickMeet event whose `typed` picks the pydantic view by stream and event name."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ...events import Event

if TYPE_CHECKING:
    from pydantic import BaseModel

__all__ = ["QuickMeetEvent"]


class QuickMeetEvent(Event):
    """A QuickMeet event: `typed` picks the view by stream and event name (`<uid>/notification` ...)."""

    @property
    def typed(self) -> Optional[BaseModel]:
        """`data` as Message, Notification, RoomChange, SubscriptionChange, Activity or
        DeletedMessage (unknown fields kept), or None for other streams and lifecycle events."""
        from .models import _VIEWS  # pydantic loads here, not with the client

        views = _VIEWS.get(self.name)
        if views is None:
            return None
        model = views.get("*") or views.get((self.channel or "").rsplit("/", 1)[-1])
        return model.model_validate(self.data) if model is not None else None
