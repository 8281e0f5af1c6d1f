"""Dialpad's event payloads (as its docs and real fixtures show them) and its subscriptions' rules, for the local Dialpad."""

from __future__ import annotations

import itertools
import time
from typing import Any, Dict, List, Optional

__all__ = ["CALL_STATES", "KINDS", "REQUIRED", "agent_status_event", "call_event", "call_sequence",
           "changelog_event", "contact_event", "invalid", "kind_of", "sms_event", "wants"]

_ids = itertools.count(5071678191976448)


def call_event(state: str, call_id: Optional[int] = None, **extra: Any) -> Dict[str, Any]:
    """A call event with the field set of the vendor's real fixture; ms timestamps."""
    now = int(time.time() * 1000)
    return {
        "call_id": call_id or next(_ids), "state": state, "direction": "inbound",
        "date_started": now - 5000, "date_rang": now if state == "ringing" else None,
        "date_connected": now if state == "connected" else None,
        "date_ended": now if state == "hangup" else None, "event_timestamp": now,
        "external_number": "+15102609745", "internal_number": "+15106666687",
        "contact": {"email": "", "id": 6131436978913280, "name": "Alameda, CA", "phone": "+15105105100",
                    "type": "local"},
        "target": {"email": "", "id": 5527348325810176, "name": "Oasis Legal Services", "type": "office"},
        "duration": 0, "total_duration": 0, "labels": [], **extra,
    }


def call_sequence(call_id: Optional[int] = None, **extra: Any) -> List[Dict[str, Any]]:
    """One call's events in order: ringing, connected, hangup (same call_id, growing timestamps)."""
    call_id = call_id or next(_ids)
    events = [call_event(state, call_id, **extra) for state in ("ringing", "connected", "hangup")]
    for n, event in enumerate(events):
        event["event_timestamp"] += n  # each later than the one before, even within one millisecond
    return events


def sms_event(text: str = "Hello", **extra: Any) -> Dict[str, Any]:
    now = int(time.time() * 1000)
    return {"id": next(_ids), "direction": "inbound", "from_number": "+15109260499",
            "to_number": ["+15106666687"], "text": text, "message_status": "pending", "mms": False,
            "created_date": now, "event_timestamp": now, "contact": {}, "target": {"type": "office"}, **extra}


def agent_status_event(status: str = "available", **extra: Any) -> Dict[str, Any]:
    now = int(time.time() * 1000)
    return {"availability_status": "open", "call_center_ids": ["4"], "date": now, "event_timestamp": now,
            "on_duty_status": status, "target": {"id": next(_ids), "name": "Ann", "type": "user"}, **extra}


def contact_event(event: str = "Created", contact_type: str = "shared", **contact: Any) -> Dict[str, Any]:
    """A contact event as Dialpad's contact-events doc shows it: `event` (Created, Updated, Deleted)
    and the `contact` (string id, `type` shared or local, e164 phones)."""
    return {"event": event, "contact": {
        "id": str(next(_ids)), "type": contact_type, "first_name": "sample", "last_name": "test",
        "display_name": "sample test", "phones": ["+16043111111"], "primary_phone": "+16043111111",
        "emails": ["sample@example.com"], "primary_email": "sample@example.com", "company_name": "Awesome company",
        "job_title": "Awesome job", "urls": ["https://example.com"], "trunk_group": "TEST", "extension": "12345",
        **contact}}


def changelog_event(action: str = "operator_removed", **extra: Any) -> Dict[str, Any]:
    """A change-log event as Dialpad's change-log doc shows it (`date` in ms, no id of its own)."""
    return {"action": action, "additional_data": {"name": "Dialpedia Ltd", "operator_name": "Mary Sue"},
            "changed_by": {"name": "John Doe", "id": next(_ids), "type": "User"},
            "date": int(time.time() * 1000), "note": "Operator removed",
            "target": {"type": "Office", "id": next(_ids)}, **extra}


#: fields a subscription of each kind must be created with (Dialpad answers 400 without them)
REQUIRED = {"agent_status": ("agent_type",), "contact": ("contact_type",)}
KINDS = ("call", "sms", "agent_status", "contact", "changelog")
#: the call states a call subscription may ask for (the spec's enum)
CALL_STATES = frozenset((
    "admin", "admin_recording", "ai_playbook", "all", "barge", "blocked", "call_transcription", "calling",
    "connected", "csat", "dispositions", "eavesdrop", "hangup", "hold", "merged", "missed", "monitor", "parked",
    "pcsat", "postcall", "preanswer", "queued", "recap_action_items", "recap_outcome", "recap_purposes",
    "recap_summary", "recording", "ringing", "takeover", "transcription", "voicemail", "voicemail_uploaded"))


def invalid(kind: str, body: Dict[str, Any]) -> Optional[str]:
    """Why Dialpad would answer a subscription's create body with 400, or None."""
    missing = [name for name in REQUIRED.get(kind, ()) if not body.get(name)]
    if missing:
        return f"{missing[0]} is required"
    states = body.get("call_states") or []
    if kind == "call" and (not isinstance(states, list) or not all(isinstance(x, str) and x in CALL_STATES
                                                                     for x in states)):
        return "call_states has an unknown call state"
    if not isinstance(body.get("enabled", True), bool):
        return "enabled must be true or false"
    for name in ("direction", "contact_type", "agent_type"):
        if body.get(name) is not None and not isinstance(body[name], str):
            return f"{name} must be a string"
    return None


def kind_of(event: Dict[str, Any]) -> str:
    """The subscription family an event belongs to, by its shape (Dialpad sends no type field)."""
    if "call_id" in event:
        return "call"
    if "message_status" in event or "from_number" in event:
        return "sms"
    if "on_duty_status" in event:
        return "agent_status"
    if isinstance(event.get("contact"), dict) and "event" in event:
        return "contact"
    return "changelog"


def wants(sub: Dict[str, Any], event: Dict[str, Any]) -> bool:
    """A subscription's filters: `enabled`, `call_states` (or "all"), `direction` (or "all"),
    `contact_type` (a contact event's `contact.type`)."""
    if not sub.get("enabled", True):
        return False
    states = sub.get("call_states")
    if "call_id" in event and states and "all" not in states and event.get("state") not in states:
        return False
    if sub.get("contact_type") and isinstance(event.get("contact"), dict) and "event" in event:
        return bool(event["contact"].get("type") == sub["contact_type"])
    direction = sub.get("direction", "all")
    return direction in ("all", None) or event.get("direction") == direction
