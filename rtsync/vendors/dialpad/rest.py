"""Dialpad's REST API v2 (`/api/v2/...`): Bearer key, JSON in and out, `cursor` pages, 429s waited out.

Usable before `start()` and after `stop()`: it has its own HTTP client, not
the engine's. `stop()` interrupts its requests and its rate-limit waits
(`interrupt()`), then lets it serve calls again (`resume()`).
"""

from __future__ import annotations

import json
import logging
import threading
from typing import Any, Callable, Dict, List, Optional
from urllib.parse import quote

from ...errors import ConnectionLost, ProtocolError, RateLimited
from ...wire import Verify
from ...wire.http import HttpClient
from ...wire.network import Network

__all__ = ["DialpadRest"]

log = logging.getLogger("rtsync.dialpad")

#: 429s one call waits out before it gives up (Dialpad allows 20 requests a second per company)
MAX_RETRIES = 5
#: pages one listing follows at most: a server handing out new cursors forever must not hold us forever
MAX_PAGES = 10_000


class _Interruptible(HttpClient):
    """An HttpClient whose `cancel()` also ends the rate-limit waits of the calls begun before it
    (counted in `generation`, so a call whose wait starts just after the cancel still sees it)."""

    def __init__(self, *, verify: Verify = True, network: Optional[Network] = None) -> None:
        super().__init__(verify=verify, network=network)
        self.generation = 0
        self._changed = threading.Condition()

    def cancel(self) -> None:
        with self._changed:
            self.generation += 1
            self._changed.notify_all()
        super().cancel()

    def pause(self, since: int, seconds: float) -> bool:
        """Wait `seconds`; True (at once) if `cancel()` ran after generation `since`."""
        with self._changed:
            return self._changed.wait_for(lambda: self.generation != since, seconds)


class DialpadRest:
    """One request per call; statuses become rtsync errors (401/403 final, 404 rejected).

    An HTTP 429 is waited out (the server's Retry-After, else 1, 2, 4 ... s) and the call
    sent again, at most `MAX_RETRIES` times and `max_wait` seconds in all; a longer wait
    raises `RateLimited` with the server's `retry_after` at once. `key` is called for
    each request: the API key may rotate (a callable credential).
    """

    def __init__(self, base_url: str, key: Callable[[], str], verify: Verify = True,
                 max_wait: float = 60.0, network: Optional[Network] = None) -> None:
        self.base_url = base_url
        self._key = key
        self.max_wait = max_wait
        self.http = _Interruptible(verify=verify, network=network)

    def interrupt(self) -> None:
        """End the requests and waits in flight (from any thread); new ones fail until `resume()`."""
        self.http.cancel()

    def resume(self) -> None:
        self.http.reset()

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None, *,
             wait: bool = True) -> Dict[str, Any]:
        """One request; the answer, which Dialpad always gives as a JSON object.

        With `wait` (the default) a 429 is waited out as the class says; without it (the
        engine's own refreshes, whose reconnect policy already honours Retry-After) it raises.
        """
        waited, since = 0.0, self.http.generation
        for attempt in range(MAX_RETRIES + 1):
            try:
                return self._once(method, path, body)
            except RateLimited as exc:
                delay = exc.retry_after if exc.retry_after is not None else float(2 ** attempt)
                if not wait or attempt == MAX_RETRIES or waited + delay > self.max_wait:
                    raise
                log.info("Dialpad %s /api/v2/%s was rate limited; sending it again in %.1f s",
                         method, _shown(path), delay)
                if self.http.pause(since, delay):
                    raise ConnectionLost(f"the client is stopping: Dialpad {method} /api/v2/{_shown(path)} "
                                         "was rate limited and is not sent again") from None
                waited += delay
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def _once(self, method: str, path: str, body: Optional[Dict[str, Any]]) -> Dict[str, Any]:
        response = self.http.request(
            method, f"{self.base_url}/api/v2/{path}", json=body, timeout=30.0,
            headers={"Authorization": f"Bearer {self._key()}", "Accept": "application/json"},
            what=f"Dialpad {method} /api/v2/{_shown(path)}",
        )
        try:
            answer = json.loads(response.body or b"{}")
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            raise ProtocolError(f"Dialpad answered {method} /api/v2/{_shown(path)} with something "
                                "that is not a JSON object")
        return answer

    def pages(self, path: str) -> List[Dict[str, Any]]:
        """Every item of a listing, following its `cursor` pages."""
        items: List[Dict[str, Any]] = []
        cursor: Optional[str] = None
        seen = set()
        for _ in range(MAX_PAGES):
            page = self.call("GET", path + (f"?cursor={quote(cursor, safe='')}" if cursor else ""))
            found = page.get("items", [])
            if not isinstance(found, list) or not all(isinstance(item, dict) for item in found):
                raise ProtocolError(f"Dialpad answered GET /api/v2/{path} with something that is not a page")
            items.extend(found)
            cursor = page.get("cursor")
            if cursor is not None and not isinstance(cursor, str):
                raise ProtocolError(f"Dialpad answered GET /api/v2/{path} with a cursor that is not a string")
            if not cursor:
                return items
            if cursor in seen:  # a server handing out the same page again would loop us forever
                raise ProtocolError(f"Dialpad answered GET /api/v2/{path} with a cursor it gave before")
            seen.add(cursor)
        raise ProtocolError(f"Dialpad's listing GET /api/v2/{path} went on past {MAX_PAGES} pages; giving up")


def _shown(path: str) -> str:
    return path.split("?")[0]
