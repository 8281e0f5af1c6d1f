"""Pydantic views of Doshii's thin event payloads (ids, status, uri); unknown fields are kept."""

from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from ...events import register_view

__all__ = ["Notification", "Transaction"]


class Notification(BaseModel):
    """What every Doshii event carries at most: fetch the full resource from `uri` over REST."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    id: Optional[Union[str, int]] = None
    status: Optional[str] = None
    location_id: Optional[str] = Field(default=None, alias="locationId")
    pos_ref: Optional[str] = Field(default=None, alias="posRef")
    uri: Optional[str] = None
    version: Optional[Any] = None


class Transaction(Notification):
    order_id: Optional[Union[str, int]] = Field(default=None, alias="orderId")
    pos_terminal_id: Optional[str] = Field(default=None, alias="posTerminalId")


register_view("doshii", "transaction_*", Transaction)
register_view("doshii", "*", Notification)
