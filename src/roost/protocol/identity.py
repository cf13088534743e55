"""Proof of which workspace an agent serves, given in the handshake.

The host keeps a random key per workspace and hands it to that
workspace's agent when it starts. In its HELLO the host sends a fresh
nonce; an agent that holds a key answers with its workspace id and an
HMAC over both, which the host checks before it sends any request. An
agent of another workspace (reached through a swapped path, say) cannot
produce the proof, so the host refuses it instead of running commands in
the wrong workspace. The key never crosses the wire.

Standard library only: the guest agent imports it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field

KEY_BYTES = 32
NONCE_MAX = 128
_CONTEXT = b"roost agent identity v1\0"
_MACHINE_ID_CONTEXT = b"roost machine-id v1\0"


@dataclass(frozen=True)
class AgentIdentity:
    """Which workspace an agent serves and the key that proves it."""

    workspace_id: str
    key: bytes = field(repr=False)

    def prove(self, nonce: str) -> str:
        """The proof for `nonce` (hex)."""
        message = _CONTEXT + nonce.encode() + b"\0" + self.workspace_id.encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()

    def check(self, nonce: str, hello: dict[str, object]) -> str | None:
        """None when `hello` proves this identity for `nonce`, else what is wrong."""
        claimed = hello.get("workspace_id")
        proof = hello.get("proof")
        if not isinstance(claimed, str) or not isinstance(proof, str):
            return "it offered no proof of identity"
        if claimed != self.workspace_id:
            return f"it serves workspace {claimed!r}"
        if not hmac.compare_digest(proof.encode(), self.prove(nonce).encode()):
            return "its proof of identity is wrong"
        return None

    @property
    def machine_id(self) -> str:
        """The workspace's machine-id (/etc/machine-id: 32 hex digits): its own, kept across restarts,
        and not guessable from its id (it comes from the key, which the id does not reveal)."""
        message = _MACHINE_ID_CONTEXT + self.workspace_id.encode()
        return hmac.new(self.key, message, hashlib.sha256).hexdigest()[:32]


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def new_nonce() -> str:
    return secrets.token_hex(16)
