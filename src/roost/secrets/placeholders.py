"""What a workspace sees in place of a proxy-mode secret: `roost-secret-<hex>`, unique per workspace and secret.

A placeholder is derived (HMAC-SHA256) from a random per-workspace key, the
workspace's `secret_salt` (kept in its record as hex), the workspace's id
and the secret's name, so every face and the gateway derive the same one
without storing it. Placeholders are not secret: knowing one gives nothing
but the name of the thing it stands for; a placeholder of one workspace
means nothing to the proxy of another.

Imports: the standard library only.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

__all__ = ["PLACEHOLDER_PREFIX", "new_salt", "placeholder_for"]

PLACEHOLDER_PREFIX = "roost-secret-"
_SALT_BYTES = 32


def new_salt() -> str:
    """A fresh per-workspace key for placeholders, as the record keeps it (hex)."""
    return secrets.token_hex(_SALT_BYTES)


def placeholder_for(ws_id: str, name: str, key: bytes) -> str:
    """The placeholder of secret `name` in workspace `ws_id`, from the workspace's `key` (its salt's bytes)."""
    digest = hmac.new(key, f"{ws_id}\0{name}".encode(), hashlib.sha256).hexdigest()
    return PLACEHOLDER_PREFIX + digest[:32]
