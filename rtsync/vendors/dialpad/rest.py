"""Dialpad's REST API v2 (`/api/v2/...`): Bearer key, JSON in and out, `cursor` pages.

Usable before `start()` and after `stop()`: it has its own HTTP client, not
the engine's (which `stop()` cancels).
"""

from __future__ import annotations

import json
from typing import Any, Dict, List, Optional

from ...errors import ProtocolError
from ...wire import Verify
from ...wire.http import HttpClient
from ...wire.network import Network

__all__ = ["DialpadRest"]


class DialpadRest:
    """One call per method; statuses become rtsync errors (401/403 final, 429 waits Retry-After)."""

    def __init__(self, base_url: str, api_key: str, verify: Verify = True,
                 network: Optional[Network] = None) -> None:
        self.base_url = base_url
        self._api_key = api_key
        self.http = HttpClient(verify=verify, network=network)

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        """One request; the answer, which Dialpad always gives as a JSON object."""
        response = self.http.request(
            method, f"{self.base_url}/api/v2/{path}", json=body, timeout=30.0,
            headers={"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"},
            what=f"Dialpad {method} /api/v2/{path.split('?')[0]}",
        )
        try:
            answer = json.loads(response.body or b"{}")
        except (ValueError, RecursionError):
            answer = None
        if not isinstance(answer, dict):
            raise ProtocolError(f"Dialpad answered {method} /api/v2/{path.split('?')[0]} with something "
                                "that is not a JSON object")
        return answer

    def pages(self, path: str) -> List[Dict[str, Any]]:
        """Every item of a listing, following its `cursor` pages."""
        items: List[Dict[str, Any]] = []
        cursor: Optional[str] = None
        while True:
            page = self.call("GET", path + (f"?cursor={cursor}" if cursor else ""))
            if not isinstance(page.get("items", []), list):
                raise ProtocolError(f"Dialpad answered GET /api/v2/{path} with something that is not a page")
            items.extend(page.get("items", []))
            cursor = page.get("cursor")
            if not cursor:
                return items
