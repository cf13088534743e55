"""Secrets of a workspace: attaching them (names and modes in its record), granting them to one process, and
the redactor every output channel of the workspace goes through.

A secret is attached as `NAME[:MODE]` (the mode among those the store allows
for it; none given: its env and file modes). A process asks for attached
secrets by use: `NAME[=VAR]` in env mode (the value, or a proxy-mode
secret's placeholder, in VAR, default NAME) or in file mode (a 0400 file on
a tmpfs whose path is in VAR, default ROOST_SECRET_FILE_NAME). Everything is
checked before the agent is called; values are read from the store only to
be sent in that one request.

`proxy` mode needs roost's network gateway to put values in place of the
placeholders (`proxy_substitutions`, which the gateway holds in memory) and
a workspace that trusts its CA: where the backend cannot
(`Backend.proxy_refusal`) or the workspace has no network, it is refused
(`secret_mode_unsupported`) before anything starts.

Imports: backends.base, errors, models, network.substitution (lazily), protocol's op messages, secrets and
store.records.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from roost.backends.base import Backend
from roost.errors import InvalidArgument, Remedy, SecretError, SecretNotFound
from roost.protocol import OpError
from roost.protocol.ops.message import GUEST_ROOT
from roost.protocol.ops.secrets import SecretGrant, check_env_name, file_variable
from roost.protocol.redaction import Redactor
from roost.secrets.model import check_name
from roost.secrets.placeholders import placeholder_for
from roost.secrets.store import SecretStore, not_found
from roost.store.records import WorkspaceRecord

if TYPE_CHECKING:
    from roost.network.substitution import Substitution

__all__ = [
    "SecretUse",
    "SecretUses",
    "attachments",
    "detach",
    "grants",
    "grants_for",
    "parse_attachment",
    "parse_uses",
    "proxy_substitutions",
    "redactor_for",
]

_PROCESS_MODES = ("env", "file")
# What a caller names for one process: `NAME[=VAR]` entries, or NAME -> VAR.
SecretUses = Iterable[str] | Mapping[str, str]


@dataclass(frozen=True)
class SecretUse:
    """One process asks for secret `name` in `mode` (env or file), in variable `variable`; a file-mode one
    at `path` when it names one."""

    name: str
    mode: str
    variable: str
    path: str | None = None


def parse_attachment(text: str) -> tuple[str, str | None]:
    """`NAME[:MODE]` as (name, mode or None).

    Raises:
        InvalidArgument: a bad name or mode.
    """
    name, colon, mode = str(text).partition(":")
    check_name(name)
    if colon and mode not in ("env", "file", "proxy"):
        raise InvalidArgument(
            f"unknown secret mode {mode!r} in {text!r}", hint="use NAME, NAME:env, NAME:file or NAME:proxy"
        )
    return name, (mode if colon else None)


def attachments(
    home: Path,
    backend: Backend[Any],
    network_mode: str,
    requested: Iterable[str],
    current: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[str]]:
    """The secrets a workspace has once `requested` (`NAME[:MODE]` each) are attached to `current`.

    `network_mode`: the workspace's network policy's mode (proxy mode needs a network).

    Raises:
        InvalidArgument: a malformed entry. SecretNotFound: a name the store does not hold.
        SecretError: secret_mode_unsupported for a mode the secret does not allow or the workspace cannot serve.
    """
    if isinstance(requested, str):
        raise InvalidArgument("secrets must be a list of NAME[:MODE]", hint=f"e.g. [{requested!r}]")
    attached = {name: list(modes) for name, modes in (current or {}).items()}
    store = SecretStore(home)
    for text in requested:
        name, mode = parse_attachment(text)
        info = store.get(name)
        wanted = [mode] if mode is not None else [m for m in info.modes if m in _PROCESS_MODES]
        if not wanted:
            raise SecretError(
                f"secret {name!r} allows only {', '.join(info.modes)} mode", hint=f"attach it as {name}:{info.modes[0]}"
            )
        for each in wanted:
            if each not in info.modes:
                raise SecretError(
                    f"secret {name!r} may not be used in {each} mode (it allows {', '.join(info.modes)})",
                    hint=f"set it again with that mode allowed, or attach it as {name}:{info.modes[0]}",
                )
            if each == "proxy":
                _check_proxy(name, backend, network_mode)
        attached[name] = [m for m in ("env", "file", "proxy") if m in {*attached.get(name, ()), *wanted}]
    return attached


def _check_proxy(name: str, backend: Backend[Any], network_mode: str) -> None:
    """Raises: SecretError: secret_mode_unsupported where roost's gateway cannot put the value in requests."""
    if backend.proxy_refusal is not None:
        raise SecretError(
            f"secret {name!r} cannot be used in proxy mode on the {backend.name} backend: {backend.proxy_refusal}",
            hint=f"attach it in env or file mode ({name}:env), where the workspace holds the value",
        )
    if network_mode == "off":
        raise SecretError(
            f"secret {name!r} in proxy mode needs a network: the workspace's policy is off",
            hint="give the workspace the egress or allowlist policy (allowing the secret's hosts)",
        )


def proxy_substitutions(home: Path, record: WorkspaceRecord) -> tuple[Substitution, ...]:
    """What the workspace's gateway puts in requests for its proxy-mode secrets (values read from the store now;
    one gone from the store, or set again without proxy mode, is left out: its placeholder goes out as it is)."""
    names = [name for name, modes in sorted(record.secrets.items()) if "proxy" in modes]
    if not names:
        return ()
    from roost.network.substitution import Substitution  # only where a workspace has proxy secrets

    store = SecretStore(home)
    proxied = {info.name: info for info in store.list() if "proxy" in info.modes and info.hosts}
    values = store.values(names)
    salt = bytes.fromhex(record.secret_salt or "")
    return tuple(
        Substitution(
            name, placeholder_for(record.id, name, salt), values[name], proxied[name].hosts, proxied[name].in_body
        )
        for name in names
        if name in values and name in proxied
    )


def detach(record: WorkspaceRecord, name: str) -> dict[str, list[str]]:
    """The record's secrets without `name`.

    Raises:
        SecretNotFound: `name` is not attached to the workspace.
    """
    if name not in record.secrets:
        raise _not_attached(record, check_name(name))
    return {other: modes for other, modes in record.secrets.items() if other != name}


def parse_uses(
    env: Iterable[str] | Mapping[str, str] = (), files: Iterable[str] | Mapping[str, str] = ()
) -> list[SecretUse]:
    """The secrets a process asks for: `NAME[=VAR]` entries (or NAME -> VAR mappings) in env and file mode;
    a file-mode one may name an absolute path instead of VAR (`NAME=/run/token`: on a tmpfs, outside the
    workspace), its path then in ROOST_SECRET_FILE_NAME.

    Raises:
        InvalidArgument: a bad name or variable, or one variable given twice.
    """
    uses: list[SecretUse] = []
    for mode, given in (("env", env), ("file", files)):
        if isinstance(given, str | bytes):
            raise InvalidArgument(f"secret {mode} uses must be a list of NAME[=VAR]", hint=f"e.g. [{given!r}]")
        pairs = given.items() if isinstance(given, Mapping) else (_split_use(text) for text in given)
        for name, variable in pairs:
            check_name(name)
            path = variable if mode == "file" and variable and variable.startswith("/") else None
            chosen = variable if variable and path is None else (name if mode == "env" else file_variable(name))
            try:
                check_env_name(chosen)
            except OpError as exc:
                raise InvalidArgument(exc.message, hint=exc.hint) from None
            if path is not None:
                _check_file_path(name, path)
            uses.append(SecretUse(name, mode, chosen, path))
    variables = [use.variable for use in uses]
    if len(set(variables)) != len(variables):
        twice = next(v for v in variables if variables.count(v) > 1)
        raise InvalidArgument(f"variable {twice} is given two secrets", hint="name a different variable for each")
    return uses


def grants_for(
    home: Path, record: WorkspaceRecord, env: SecretUses = (), files: SecretUses = ()
) -> tuple[SecretGrant, ...]:
    """`grants` for the uses `parse_uses` reads from `env` and `files`.

    Raises:
        InvalidArgument, SecretNotFound, SecretError: as `parse_uses` and `grants`.
    """
    return grants(home, record, parse_uses(env, files))


def _check_file_path(name: str, path: str) -> None:
    """Raises: InvalidArgument: a path inside the workspace (the agent checks it is on a tmpfs)."""
    normal = posixpath.normpath(path)
    if "\0" in path or normal == GUEST_ROOT or normal.startswith(GUEST_ROOT + "/"):
        raise InvalidArgument(
            f"secret {name!r} may not be written in the workspace ({path})",
            hint="name a file on a tmpfs outside it (e.g. /dev/shm/token), or leave the path out",
        )


def _split_use(text: str) -> tuple[str, str | None]:
    name, equals, variable = str(text).partition("=")
    return name, (variable if equals else None)


def grants(home: Path, record: WorkspaceRecord, uses: Sequence[SecretUse]) -> tuple[SecretGrant, ...]:
    """The grants one process gets for `uses`, values read from the store now.

    Raises:
        SecretNotFound: a secret not attached to the workspace, or gone from the store.
        SecretError: secret_mode_unsupported for a mode it is not attached in.
        InvalidArgument: an env-mode value with a NUL byte.
    """
    if not uses:
        return ()
    for use in uses:
        modes = record.secrets.get(use.name)
        if modes is None:
            raise _not_attached(record, use.name)
        if use.mode not in modes and not (use.mode == "env" and "proxy" in modes):
            raise SecretError(
                f"secret {use.name!r} is attached to {record.id} in {', '.join(modes)} mode, not {use.mode}",
                hint=f"attach it in {use.mode} mode too ({use.name}:{use.mode})",
            )
    values = SecretStore(home).values({use.name for use in uses})
    made: list[SecretGrant] = []
    for use in uses:
        value = values.get(use.name)
        if value is None:
            raise not_found(use.name)
        if use.mode == "env" and "env" not in record.secrets[use.name]:
            value = placeholder_for(record.id, use.name, bytes.fromhex(record.secret_salt or "")).encode()
        try:
            made.append(SecretGrant.of(use.name, use.mode, use.variable, value, use.path))
        except OpError as exc:
            raise InvalidArgument(exc.message, hint=exc.hint) from None
    return tuple(made)


def redactor_for(home: Path, record: WorkspaceRecord) -> Redactor | None:
    """The redactor of the workspace's attached secrets (None: it has none to hide)."""
    if not record.secrets:
        return None
    redactor = Redactor(SecretStore(home).values(record.secrets))
    return redactor if redactor.active else None


def _not_attached(record: WorkspaceRecord, name: str) -> SecretNotFound:
    return SecretNotFound(
        f"secret {name!r} is not attached to workspace {record.id}",
        remedy=Remedy("attach it to the workspace first", "workspace_secret_add", record.id, arguments=(name,)),
    )
