"""API keys: generation, sha256 hashing and scope lookup. Only hashes are ever stored."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from typing import Literal

Scope = Literal["read", "write"]
KEY_PREFIX = "msk_"
_GRANTS: dict[str, frozenset[str]] = {
    "read": frozenset({"read"}),
    "write": frozenset({"read", "write"}),
}


def hash_key(key: str) -> str:
    """The sha256 hex digest of `key`, as stored in `settings.serving.api_keys`."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def new_key() -> str:
    """A fresh random API key (256 bits of entropy, URL-safe)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def granted_scopes(key: str, api_keys: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Scopes granted to `key` (empty when the key is unknown); 'write' implies 'read'.

    Every stored hash is compared in constant time, so timing says nothing about which matched.
    """
    digest = hash_key(key)
    scopes: set[str] = set()
    for stored, scope in api_keys:
        if hmac.compare_digest(stored, digest):
            scopes |= _GRANTS.get(scope, frozenset())
    return frozenset(scopes)
