"""A Dashly channel's dedupe window: which ids were delivered and how, which are missing, and gap events (sans-I/O)."""

from __future__ import annotations

from typing import Dict, List, Optional, Set, Tuple

from ...events import GAP, Event
from .cursor import PROVIDER

__all__ = ["Channel", "Print", "digest", "fits", "gap_event"]

# What a delivered id is remembered with: (epoch, tag, digest of the text, link generation).
# None: restored from a checkpoint, known by id only.
Print = Optional[Tuple[int, int, int, int]]


class Channel:
    """One channel's dedupe window: ids delivered (and how), carried across a restart, missing."""

    __slots__ = ("high", "high_key", "high_exact", "seen", "carried", "missing", "floor", "since")

    def __init__(self) -> None:
        self.floor = 0  # ids at or below this were delivered before (restored from a checkpoint)
        # A channel added while running: the newest (epoch, tag) read before it was added. A
        # stepped-back request brings its older messages too; delivered after newer ones they
        # would arrive out of order, and they were published before the channel was asked for.
        self.since: Optional[Tuple[int, int]] = None
        self.high = 0
        self.high_key: Optional[Tuple[int, int]] = None  # (epoch, tag) of the highest id
        self.high_exact = True  # False: high_key is only an upper bound (restored)
        self.seen: Dict[int, Print] = {}
        # ids kept from before a restart only because their id and (time, tag) are above the
        # restart's first message: a restart within the same second (tags from 1 again) gives
        # the old life's ids that too, so another text under such an id is this life's message
        # (it replaces the old one), not one more restart
        self.carried: Set[int] = set()
        self.missing: Dict[int, float] = {}  # id -> when we noticed it was missing


def fits(ch: Channel, msg_id: int, key: Tuple[int, int]) -> bool:
    """Whether `msg_id` at `key` keeps id and (time, tag) order with the channel's ids known to
    be of its present life (not carried, not restored)."""
    for i, m in ch.seen.items():
        if m is None or i == msg_id or i in ch.carried:
            continue
        mkey = (m[0], m[1])
        if (i < msg_id and mkey >= key) or (i > msg_id and mkey <= key):
            return False
    return True


def digest(raw: str) -> int:
    """What identifies a message's text (surrounding whitespace aside). A frame of the module's
    template has none: hash() of the text itself is cached by the str, and strip() is skipped."""
    return hash(raw) if raw and raw[0] == "{" and raw[-1] == "}" else hash(raw.strip())


def gap_event(channel: str, ids: List[int], reason: str) -> Event:
    return Event.make(GAP, provider=PROVIDER, channel=channel,
                      data={"channel": channel, "missing": len(ids), "missing_ids": ids, "reason": reason})

