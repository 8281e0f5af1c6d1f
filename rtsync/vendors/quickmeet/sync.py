"""Room and subscription changes missed while a link was down, recovered with `rooms/get` / `subscriptions/get`.

DDP replays nothing, but both methods answer `{update, remove}` since a
`{"$date"}` (reference section 10, step 4). A `ChangeLog` per kind remembers
each item's newest `_updatedAt`: the first answer (the array form) is the
baseline and delivers nothing; after a reconnect the answer since the newest
known change is delivered as the `[action, item]` events the stream itself
would have carried. What we already hold (the same `_updatedAt` and the same
content), live or fetched, is a repeat and dropped.
"""

from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional, Tuple

__all__ = ["ChangeLog", "kind_of"]

#: `<uid>/<kind>` on stream-notify-user, and the method that lists that kind
METHODS = {"rooms-changed": "rooms/get", "subscriptions-changed": "subscriptions/get"}


def kind_of(stream: str, event_name: str) -> Optional[str]:
    """"rooms-changed" or "subscriptions-changed" for the streams a ChangeLog can repair, else None."""
    if stream != "stream-notify-user":
        return None
    kind = event_name.rsplit("/", 1)[-1]
    return kind if kind in METHODS else None


def _stamp(item: Dict[str, Any]) -> Tuple[int, str]:
    """(`_updatedAt` ms, content): two changes may share a millisecond, never both."""
    updated = item.get("_updatedAt")
    date = updated.get("$date") if isinstance(updated, dict) else None
    ms = int(date) if isinstance(date, (int, float)) and not isinstance(date, bool) and math.isfinite(date) else -1
    try:
        content = json.dumps(item, sort_keys=True, default=str)
    except (ValueError, TypeError, RecursionError):  # too deep to compare: never taken for a repeat
        content = f"undecodable:{id(item)}"
    return ms, content


class ChangeLog:
    """What we know of one kind of item: id -> the stamp of its newest version."""

    def __init__(self, kind: str) -> None:
        self.method = METHODS[kind]
        self.known: Dict[str, Tuple[int, str]] = {}
        self.baselined = False
        self.pending = False  # a request is out on the current link

    def params(self) -> List[Any]:
        if not self.baselined:
            return []
        # `$gt` in whole milliseconds: one earlier, so a change sharing the newest known
        # millisecond is not skipped (the map drops what we already had).
        return [{"$date": max((ms for ms, _ in self.known.values()), default=0) - 1}]

    def live(self, args: Any) -> bool:
        """Record a change the stream delivered; False if it is a repeat of one we have."""
        if not (isinstance(args, list) and len(args) >= 2 and isinstance(args[1], dict)):
            return True
        action, item = args[0], args[1]
        key = str(item.get("_id"))
        if action == "removed":
            self.known.pop(key, None)
            return True
        return self._take(key, item)

    def _take(self, key: str, item: Dict[str, Any]) -> bool:
        """Record `item` if it is news: newer than what we hold, or different at the same millisecond."""
        stamp, held = _stamp(item), self.known.get(key)
        if held is not None and (stamp[0] < held[0] or stamp == held):
            return False
        self.known[key] = stamp
        return True

    def answer(self, result: Any) -> List[List[Any]]:
        """The `[action, item]` changes an answer holds that we had missed (none for the baseline)."""
        self.pending = False
        updates: List[Any] = []
        removes: List[Any] = []
        if isinstance(result, list):
            updates = result
        elif isinstance(result, dict):
            updates, removes = result.get("update") or [], result.get("remove") or []
            # Ill-typed halves count as empty (never iterate a string or a number as items).
            updates = updates if isinstance(updates, list) else []
            removes = removes if isinstance(removes, list) else []
        baseline, self.baselined = not self.baselined, True
        missed: List[List[Any]] = []
        for item in updates:
            if not isinstance(item, dict):
                continue
            key = str(item.get("_id"))
            action = "updated" if key in self.known else "inserted"
            if self._take(key, item) and not baseline:
                missed.append([action, item])
        for gone in removes:
            key = str(gone.get("_id")) if isinstance(gone, dict) else ""
            if key in self.known:
                del self.known[key]
                if not baseline:
                    missed.append(["removed", {"_id": key}])
        return missed
