"""Secrets attached to a workspace, live: add, remove, list (names and modes in its record, never values).

A change takes effect from the next call: processes started from then on
may ask for an added secret, and every output channel of the workspace
redacts the secrets attached when it is read; a running workspace's gateway
is given its proxy-mode secrets at once, and again whenever the store's
value of one changes (`renew_in_gateways`: a rotated token is sent from the
next request on). A running process keeps what it was given; removing a
secret does not take it back from one.

Imports: models, secrets (placeholders), store records, workspace.engine, workspace.network and workspace.secrets.
"""

from __future__ import annotations

from collections.abc import Sequence

from roost.errors import InvalidArgument, RoostError
from roost.models import AttachedSecret
from roost.secrets.placeholders import new_salt, placeholder_for
from roost.store.records import WorkspaceRecord
from roost.workspace import network, secrets
from roost.workspace.engine import Engine

__all__ = ["add", "listed", "remove", "renew_in_gateways"]


def listed(record: WorkspaceRecord) -> list[AttachedSecret]:
    """The workspace's secrets by name, with the placeholder it sees for a proxy-mode one."""
    salt = bytes.fromhex(record.secret_salt or "")
    return [
        AttachedSecret(name, tuple(modes), placeholder_for(record.id, name, salt) if "proxy" in modes else None)
        for name, modes in sorted(record.secrets.items())
    ]


def add(engine: Engine, ws_ref: str, entries: Sequence[str]) -> list[AttachedSecret]:
    """Attach `entries` (`NAME[:MODE]` each) to the workspace; every one is checked before any is.

    Raises:
        InvalidArgument, SecretNotFound, SecretError: as `workspace.secrets.attachments`.
    """
    if isinstance(entries, str) or not entries:
        raise InvalidArgument("give the secrets to attach as a list of NAME[:MODE]", hint="e.g. ['API_TOKEN:env']")
    ws_id = engine.store.resolve(ws_ref)
    record = engine.store.load(ws_id)
    backend = engine.backend(record)
    secrets.attachments(engine.home, backend, record.network_policy.mode, entries, record.secrets)  # before the lock

    def attach(current: WorkspaceRecord) -> WorkspaceRecord:
        merged = secrets.attachments(engine.home, backend, current.network_policy.mode, entries, current.secrets)
        return current.replace(secrets=merged, secret_salt=current.secret_salt or new_salt())

    engine.store.update(ws_id, attach)
    return listed(network.push_secrets(engine, ws_id))


def remove(engine: Engine, ws_ref: str, name: str) -> list[AttachedSecret]:
    """Detach secret `name` from the workspace.

    Raises:
        SecretNotFound: it is not attached.
    """
    ws_id = engine.store.resolve(ws_ref)
    engine.store.update(ws_id, lambda current: current.replace(secrets=secrets.detach(current, name)))
    return listed(network.push_secrets(engine, ws_id))


def renew_in_gateways(engine: Engine, name: str) -> list[str]:
    """After secret `name` was set again or deleted in the store: give every running gateway of a
    workspace that attaches it in proxy mode what the store holds now. Returns their ids.

    A workspace whose gateway cannot take it now (stopped, gone, failing) is left as it is: its
    gateway is given the store's secrets whenever it starts or changes; the store's change stands.
    """
    renewed = []
    for ws_id in engine.store.ids():
        try:
            record = engine.store.load(ws_id)
            if "proxy" in record.secrets.get(name, ()):
                network.push_secrets(engine, ws_id)
                renewed.append(ws_id)
        except RoostError:
            continue
    return renewed
