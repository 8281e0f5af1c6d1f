"""Pydantic views of Dialpad call, SMS, agent-status, contact and change-log events; unknown fields are kept."""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict

from ...events import register_view

__all__ = ["AgentStatus", "Call", "ChangeLog", "Contact", "ContactEvent", "Sms"]


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


class Contact(_Model):
    """A shared or local contact as contact events carry it (`type` is "shared" or "local")."""

    id: Optional[Any] = None
    type: Optional[str] = None
    first_name: Optional[str] = None
    last_name: Optional[str] = None
    display_name: Optional[str] = None
    phones: List[Any] = []
    primary_phone: Optional[str] = None
    emails: List[Any] = []
    primary_email: Optional[str] = None
    company_name: Optional[str] = None
    job_title: Optional[str] = None
    urls: List[Any] = []
    trunk_group: Optional[str] = None
    extension: Optional[str] = None


class ContactEvent(_Model):
    """`contact.created`, `contact.updated`, `contact.deleted`: `event` is Dialpad's "Created", ... ."""

    event: Optional[str] = None
    contact: Contact = Contact()


class ChangeLog(_Model):
    """`changelog.<action>`: a change to the company's Dialpad settings. Dialpad says `note` and
    `additional_data` have no fixed format yet, so they are kept as given."""

    action: Optional[str] = None
    date: Optional[int] = None
    note: Any = None
    additional_data: Any = None
    target: Optional[Dict[str, Any]] = None
    #: redacted (absent) when Dialpad staff made the change on the company's behalf
    changed_by: Optional[Dict[str, Any]] = None


register_view("dialpad", "call.*", Call)
register_view("dialpad", "sms", Sms)
register_view("dialpad", "agent_status", AgentStatus)
register_view("dialpad", "contact.*", ContactEvent)
register_view("dialpad", "changelog", ChangeLog)
register_view("dialpad", "changelog.*", ChangeLog)
