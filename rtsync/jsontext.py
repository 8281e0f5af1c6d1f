"""JSON text for every vendor's decoder: orjson when installed, json's verdict, one nesting limit on every Python."""

from __future__ import annotations

import json
from typing import Any, Callable, Optional

__all__ = ["MAX_DEPTH", "QUICK", "loads", "more_brackets_than", "quick_loads", "shallow"]

_fast_loads: Optional[Callable[[str], Any]]
try:  # the `fast` extra: several times quicker than json on every frame
    from orjson import JSONDecodeError as _FastError
    from orjson import loads as _fast_loads
except ImportError:  # pragma: no cover - depends on the environment
    _fast_loads = None

#: How deep a frame's JSON may nest. json's own limit follows the interpreter (about 1000 levels on
#: 3.9-3.12, tens of thousands on 3.13) and orjson's is 1024, so one limit of ours gives every Python
#: the same verdict, and keeps what we hand on (EJSON, pydantic, users' code) far from the stack's end.
MAX_DEPTH = 500
_SHORT = 2 * MAX_DEPTH  # no text this short holds MAX_DEPTH + 1 opening brackets and their closes

#: For a hot path's own call, skipping `loads`'s: what orjson returns for a text of at most `QUICK`
#: characters is `loads`'s answer; where it raises (or is not installed), call `loads` for the verdict.
quick_loads = _fast_loads
QUICK = _SHORT


def loads(text: str) -> Any:
    """`json.loads`, through orjson when installed, with json's verdict on every input but two:
    orjson reads integers beyond 64 bits as floats, and JSON nested deeper than `MAX_DEPTH`
    raises RecursionError on every Python. What orjson refuses and json takes (NaN, Infinity,
    lone surrogates, nesting beyond orjson's 1024 levels) goes to json."""
    if _fast_loads is None:
        return shallow(json.loads(text), text)
    try:
        value = _fast_loads(text)
    except _FastError:
        value = json.loads(text)
    # Most frames are too short to nest that deep: no call for them (this runs once per frame).
    return value if len(text) <= _SHORT else shallow(value, text)


def _may_nest_deeply(text: str) -> bool:
    """Whether `text` holds more than MAX_DEPTH opening brackets (all that deep nesting needs)."""
    return len(text) > _SHORT and more_brackets_than(text, MAX_DEPTH)


def more_brackets_than(text: str, limit: int) -> bool:
    """Whether `text` holds more than `limit` opening brackets (`[` and `{`, in strings too).

    Counted with `find`, which skips with memchr, and only up to the limit: `count` reads every
    character and took longer than orjson's whole decode of a 64 KB frame."""
    seen = 0
    for bracket in "[{":
        at = text.find(bracket)
        while at >= 0:
            seen += 1
            if seen > limit:
                return True
            at = text.find(bracket, at + 1)
    return False


def shallow(value: Any, text: str) -> Any:
    """`value` (decoded from `text`), or RecursionError if it nests deeper than MAX_DEPTH.

    Only a text with that many brackets pays for the walk (done without recursion)."""
    if not _may_nest_deeply(text):
        return value
    stack = [(value, 1)] if isinstance(value, (dict, list)) else []
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise RecursionError(f"JSON nested deeper than {MAX_DEPTH} levels")
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return value
