"""HS256 compact JWS, signed and verified on PyJWT's primitives: one algorithm only, and no warning per call.

PyJWT's `encode`/`decode` warn (`InsecureKeyLengthWarning`) with a key
shorter than 32 bytes, and vendors hand out such secrets that users cannot
lengthen; a library must not warn about them from deep inside. Verification
accepts `HS256` and nothing else, whatever the token's header claims.
"""

from __future__ import annotations

import json
from typing import Any, Dict

from jwt.algorithms import HMACAlgorithm
from jwt.utils import base64url_decode, base64url_encode

from .sansio import loads  # one nesting limit on every Python

__all__ = ["BadToken", "sign", "verify"]

_HS256 = HMACAlgorithm(HMACAlgorithm.SHA256)
_HEADER = base64url_encode(b'{"alg":"HS256","typ":"JWT"}')


class BadToken(ValueError):
    """Why a token was not accepted (its text never includes the token or the key)."""


def sign(claims: Dict[str, Any], key: bytes) -> str:
    payload = base64url_encode(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
    signing_input = _HEADER + b"." + payload
    return (signing_input + b"." + base64url_encode(_HS256.sign(signing_input, key))).decode("ascii")


def verify(token: str, key: bytes) -> Dict[str, Any]:
    """The claims of a compact HS256 JWS signed with `key`; BadToken says why not."""
    signing_input, _, signature = token.rpartition(".")
    try:
        header = loads(base64url_decode(signing_input.split(".", 1)[0]).decode("utf-8"))
        alg = header.get("alg") if isinstance(header, dict) else None
        if alg != "HS256":
            raise BadToken(f"its algorithm is {alg!r}, not HS256")
        if not _HS256.verify(signing_input.encode("ascii"), key, base64url_decode(signature)):
            raise BadToken("a bad signature (wrong secret, or forged)")
        claims = loads(base64url_decode(signing_input.split(".", 1)[1]).decode("utf-8"))
    except BadToken:
        raise
    except (ValueError, UnicodeError, TypeError, IndexError):
        raise BadToken("malformed (not base64url JSON)") from None
    if not isinstance(claims, dict):
        raise BadToken("its claims are not a JSON object")
    return claims
