"""Secret handles of the SDK: the host's store (`roost.secrets`) and a workspace's attached secrets (`ws.secrets`).

Imports: errors, models, secrets.store, workspace (attached_secrets, engine) and the standard library.
"""

from __future__ import annotations

from collections.abc import Sequence

from roost.errors import InvalidArgument
from roost.models import AttachedSecret, SecretInfo
from roost.secrets.model import DEFAULT_MODES
from roost.secrets.store import SecretStore
from roost.workspace import attached_secrets
from roost.workspace.engine import Engine

__all__ = ["HostSecrets", "WorkspaceSecrets"]


class HostSecrets:
    """The host's encrypted secret store (`roost.secrets`): values go in, never come out."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._store = SecretStore(engine.home)

    def set(
        self,
        name: str,
        value: bytes | str,
        *,
        modes: Sequence[str] = DEFAULT_MODES,
        hosts: Sequence[str] = (),
        in_body: bool = False,
    ) -> SecretInfo:
        """Store (or replace) secret `name`; `modes` it may be used in (env, file, proxy), `hosts` a proxy may
        send it to, `in_body`: the proxy replaces its placeholder in request bodies too (Content-Length fixed).
        Running workspaces that attach it in proxy mode send the new value from their next request.

        Raises:
            InvalidArgument: a bad name, mode or host, an empty or oversized value, proxy mode without
                hosts, in_body without proxy mode.
        """
        if isinstance(modes, str) or isinstance(hosts, str):
            raise InvalidArgument("modes and hosts are lists", hint="e.g. modes=['env'], hosts=['api.example.com']")
        raw = value.encode() if isinstance(value, str) else value
        info = self._store.set(name, raw, modes=modes, hosts=hosts, in_body=in_body is True)
        attached_secrets.renew_in_gateways(self._engine, name)  # a rotated token goes out from the next request
        return info

    def list(self) -> list[SecretInfo]:
        """Every secret's name, modes, hosts and set time, by name (never a value)."""
        return self._store.list()

    def delete(self, name: str) -> None:
        """Raises: SecretNotFound."""
        self._store.delete(name)
        attached_secrets.renew_in_gateways(self._engine, name)  # running gateways stop sending it


class WorkspaceSecrets:
    """The secrets attached to one workspace (`ws.secrets`): by name and mode, never by value."""

    def __init__(self, engine: Engine, ws_id: str) -> None:
        self._engine = engine
        self._id = ws_id

    def add(self, *entries: str) -> list[AttachedSecret]:
        """Attach secrets (`"NAME"` or `"NAME:MODE"` each) from the host's store; all are checked first.

        Raises:
            SecretNotFound, SecretError (secret_mode_unsupported), InvalidArgument.
        """
        return attached_secrets.add(self._engine, self._id, entries)

    def remove(self, name: str) -> list[AttachedSecret]:
        """Raises: SecretNotFound: it is not attached."""
        return attached_secrets.remove(self._engine, self._id, name)

    def list(self) -> list[AttachedSecret]:
        return attached_secrets.listed(self._engine.store.load(self._id))
