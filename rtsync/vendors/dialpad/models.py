"""Pydantic views of Dialpad call, SMS and agent-status events; unknown fields are kept."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict

from ...events import register_view

__all__ = ["AgentStatus", "Call", "Sms"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Call(_Model):
    """Timestamps are unix milliseconds (UTC); ids are large integers."""

    call_id: Optional[int] = None
    state: Optional[str] = None
    direction: Optional[str] = None
    date_started: Optional[int] = None
    date_rang: Optional[int] = None
    date_connected: Optional[int] = None
    date_ended: Optional[int] = None
    event_timestamp: Optional[int] = None
    external_number: Optional[str] = None
    internal_number: Optional[str] = None
    contact: Dict[str, Any] = {}
    target: Dict[str, Any] = {}
    duration: Optional[float] = None
    total_duration: Optional[float] = None
    labels: List[Any] = []


class Sms(_Model):
    id: Optional[int] = None
    direction: Optional[str] = None
    from_number: Optional[str] = None
    to_number: List[str] = []
    text: Optional[str] = None
    message_status: Optional[str] = None
    mms: Optional[bool] = None
    created_date: Optional[int] = None
    event_timestamp: Optional[int] = None
    contact: Dict[str, Any] = {}
    target: Dict[str, Any] = {}


class AgentStatus(_Model):
    availability_status: Optional[str] = None
    on_duty_status: Optional[str] = None
    on_duty_status_reason: Optional[str] = None
    call_center_ids: List[str] = []
    date: Optional[int] = None
    event_timestamp: Optional[int] = None
    target: Dict[str, Any] = {}


register_view("dialpad", "call.*", Call)
register_view("dialpad", "sms", Sms)
register_view("dialpad", "agent_status", AgentStatus)
