"""Workspace records on disk: `$ROOST_HOME/workspaces/<id>/workspace.json`.

Writes are atomic and happen under the workspace's lock; reads need no lock
because a reader only ever sees a whole file. A record that does not parse
is reported as `workspace_corrupt` with the way out, never a traceback.

What a workspace's backend must keep to find, reach, stop and boot it again
is a typed record of that backend's own (`boot`); the store reads it through
the `BootReader` it is given, and never looks inside. Records of an older
schema are read as the current one (see `record_versions`) and written back
as such.

A workspace's owner (the process creating it, or a `run` for its whole
life) holds the flock on `.owner` in its directory; the kernel drops it
when that process dies, however it dies, so any reader can tell an
interrupted create (state `creating`, owner gone) from one in progress.

Imports: arguments, errors, network.policy (plain values), store siblings and the standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from roost.arguments import WORKSPACE_ID_PREFIX
from roost.errors import ConflictError, InvalidArgument, NotFound, Remedy, RoostError, StorageError, WorkspaceError
from roost.network.policy import NetworkPolicy, PublishedPort
from roost.store.atomic import write_atomic
from roost.store.full_disk import state_write
from roost.store.locks import HeldLock, file_lock, hold_lock, lock_is_held
from roost.store.record_versions import SCHEMA_VERSION, current_form
from roost.store.spread import mark_hierarchy_parent
from roost.store.states import STATES, can_move
from roost.store.trash import Trash, remove_tree

RECORD_FILE = "workspace.json"
LOCK_FILE = ".lock"
OWNER_FILE = ".owner"
ID_PATTERN = re.compile(rf"^{WORKSPACE_ID_PREFIX}[0-9a-f]{{10}}$")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


class BootRecord(Protocol):
    """What a backend's boot leaves in a workspace's record (a frozen value of the backend's own)."""

    def to_json(self) -> dict[str, Any]: ...


# A port the workspace publishes, and the service it belongs to (None: the workspace's own).
PortRequest = tuple[PublishedPort, str | None]


def _ports_json(ports: tuple[PortRequest, ...]) -> list[dict[str, Any]]:
    return [{**port.to_json(), "service": service} for port, service in ports]


def _ports_from_json(stored: object) -> tuple[PortRequest, ...]:
    """Raises: ValueError, InvalidArgument: not a list of published ports."""
    if not isinstance(stored, list) or not all(isinstance(item, dict) for item in stored):
        raise ValueError("ports must be a list of objects")
    found = []
    for item in stored:
        service = item.get("service")
        if service is not None and not isinstance(service, str):
            raise ValueError("a port's service must be a name")
        found.append((PublishedPort.from_json(item), service))
    return tuple(found)


class BootReader(Protocol):
    def __call__(self, backend: str, stored: dict[str, Any], /) -> BootRecord:
        """The boot record of backend `backend` from the JSON object its `to_json()` stored.

        Raises:
            ValueError, TypeError or RoostError: it is not one.
        """
        ...


@dataclass(frozen=True)
class WorkspaceRecord:
    """Everything roost knows about one workspace, as persisted.

    `image` is the key of the environment image it was made from (None: it needs none);
    `boot` what its backend's last boot left (None: never booted, a create that did not get that far).
    `ports` are the ports it publishes (its own and its services'), `network` what its running
    network gateway's start left (roost.network.attachment.NetworkBoot's JSON; None: none runs).
    """

    id: str
    env: str
    backend: str
    state: str
    created_at: str
    updated_at: str
    name: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    ttl_seconds: int | None = None
    expires_at: str | None = None
    resources: dict[str, Any] = field(default_factory=dict)
    network_policy: NetworkPolicy = field(default_factory=NetworkPolicy)
    ports: tuple[PortRequest, ...] = ()
    network: dict[str, Any] | None = None
    # Attached secrets by name, with the modes each may be used in here (never a value), and the
    # workspace's key for proxy-mode placeholders (hex; placeholders are not secret).
    secrets: dict[str, list[str]] = field(default_factory=dict)
    secret_salt: str | None = None
    # Services to start again with the workspace (`workspace.services`): name -> how it was started.
    kept_services: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The shells open when it was last stopped (None: unknown, its agent was gone), and what its
    # last start brought back (`workspace.revival`; None: never started again since its create).
    shells_at_stop: list[str] | None = None
    last_start: dict[str, Any] | None = None
    image: str | None = None
    # The workspace this one was forked from (`workspace.fork`), and the snapshot of it (None: its
    # state at the fork); kept after the parent is deleted, which never touches the child.
    parent: str | None = None
    forked_from: str | None = None
    boot: BootRecord | None = None
    reason: str | None = None
    exec_count: int = 0
    schema_version: int = SCHEMA_VERSION

    def replace(self, **changes: Any) -> WorkspaceRecord:
        """The record with `changes` (never its state: see `moved_to`), updated now."""
        if "state" in changes:
            raise TypeError("a workspace changes state through moved_to, which checks the move")
        return dataclasses.replace(self, updated_at=utc_now(), **changes)

    def moved_to(self, state: str, **changes: Any) -> WorkspaceRecord:
        """The record in `state` (with `changes`), updated now.

        Raises:
            ConflictError: workspace_busy when a workspace in its state cannot move there
                (see `roost.store.states`), as when a delete got to it first.
        """
        if not can_move(self.state, state):
            raise ConflictError(
                f"workspace {self.id} is {self.state}: it cannot become {state}",
                code="workspace_busy",
                hint="retry in a moment",
            )
        return dataclasses.replace(self, state=state, updated_at=utc_now(), **changes)

    def to_json(self) -> bytes:
        data = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        data["boot"] = None if self.boot is None else self.boot.to_json()
        data["network_policy"] = self.network_policy.to_json()
        data["ports"] = _ports_json(self.ports)
        return json.dumps(data, indent=2, sort_keys=True).encode() + b"\n"

    @classmethod
    def from_json(cls, raw: bytes, where: str, read_boot: BootReader) -> WorkspaceRecord:
        """Raises: WorkspaceError: workspace_corrupt (with the way out) for anything but a whole record."""
        try:
            data = current_form(json.loads(raw))
            known = {f.name for f in dataclasses.fields(cls)}
            plain = {k: v for k, v in data.items() if k in known and k not in _TYPED_FIELDS}
            record = cls(**plain, **_typed_fields(data))
            for name in ("id", "env", "backend", "state", "created_at", "updated_at"):
                if not isinstance(getattr(record, name), str):
                    raise ValueError(f"field {name!r} is not a string")
            if record.state not in STATES:
                raise ValueError(f"unknown state {record.state!r}")
            if not isinstance(record.labels, dict):
                raise ValueError("labels must be an object")
            for name in ("image", "parent", "forked_from"):
                if getattr(record, name) is not None and not isinstance(getattr(record, name), str):
                    raise ValueError(f"{name} must be a string")
            _check_secrets(record.secrets, record.secret_salt)
            _check_revival(record)
            boot = data.get("boot")
            if boot is not None:
                if not isinstance(boot, dict):
                    raise ValueError("boot must be an object")
                record = dataclasses.replace(record, boot=read_boot(record.backend, boot))
        except (ValueError, TypeError, RoostError) as exc:
            why = exc.message if isinstance(exc, RoostError) else str(exc)
            raise WorkspaceError(
                f"workspace record {where} is corrupt: {why}",
                code="workspace_corrupt",
                remedy=_force_delete(Path(where).parent.name),
            ) from None
        return record


_TYPED_FIELDS = ("boot", "network_policy", "ports", "network")


def _check_secrets(secrets: object, salt: object) -> None:
    """Raises: ValueError: the attached secrets are not names with lists of modes, or the salt is not hex."""
    if not isinstance(secrets, dict) or not all(
        isinstance(name, str) and isinstance(modes, list) and all(isinstance(m, str) for m in modes)
        for name, modes in secrets.items()
    ):
        raise ValueError("secrets must map names to lists of modes")
    if salt is not None and (
        not isinstance(salt, str) or len(salt) % 2 or not all(c in "0123456789abcdef" for c in salt)
    ):
        raise ValueError("secret_salt must be hex")


def _check_revival(record: WorkspaceRecord) -> None:
    """Raises: ValueError: the kept services, shells at stop or last start are not of their types."""
    if not isinstance(record.kept_services, dict) or not all(
        isinstance(name, str) and isinstance(kept, dict) for name, kept in record.kept_services.items()
    ):
        raise ValueError("kept_services must map names to objects")
    shells = record.shells_at_stop
    if shells is not None and not (isinstance(shells, list) and all(isinstance(s, str) for s in shells)):
        raise ValueError("shells_at_stop must be a list of shell ids")
    if record.last_start is not None and not isinstance(record.last_start, dict):
        raise ValueError("last_start must be an object")


def _typed_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The record's network fields from their stored form (the boot is read apart, by its backend).

    Raises:
        ValueError, InvalidArgument: one is not what it should be.
    """
    policy = data.get("network_policy", {})
    network = data.get("network")
    if not isinstance(policy, dict):
        raise ValueError("network_policy must be an object")
    if network is not None and not isinstance(network, dict):
        raise ValueError("network must be an object")
    return {
        "network_policy": NetworkPolicy.from_json(policy),
        "ports": _ports_from_json(data.get("ports", [])),
        "network": network,
    }


def _force_delete(ws_id: str) -> Remedy:
    return Remedy("remove it", "workspace_delete", ws_id, flags=("force",))


def _remove_rest(ws_id: str) -> Remedy:
    return Remedy(
        "check for mounts or immutable files in its directory, then remove the rest",
        "workspace_delete",
        ws_id,
        ("force",),
    )


class WorkspaceStore:
    """The on-disk home of all workspaces under one `$ROOST_HOME`."""

    def __init__(self, home: Path, read_boot: BootReader) -> None:
        self.home = home
        self.root = home / "workspaces"
        self.trash = Trash(home)
        self._read_boot = read_boot
        # The last record read of each workspace, with the bytes it was read from: reading the file
        # is cheap, parsing and checking it is most of a load; the bytes decide, never a timestamp.
        self._parsed: dict[str, tuple[bytes, WorkspaceRecord]] = {}

    def ensure(self) -> None:
        """Create the home and `workspaces/` (0700), tightening them if someone loosened them.

        Raises:
            StorageError: home_unusable when the home cannot be made or is not ours to change
                (disk_full when its disk is full).
        """
        try:
            with state_write("roost's state directory"):
                for directory in (self.home, self.root):
                    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
                    if directory.stat().st_mode & 0o077:
                        os.chmod(directory, 0o700)
        except OSError as exc:
            raise self._unusable(exc) from None
        mark_hierarchy_parent(self.root)  # each workspace's tree in a place of its own (see `spread`)

    def _unusable(self, exc: OSError) -> StorageError:
        return StorageError(
            f"roost's state directory {self.home} is unusable: {exc.strerror or exc}",
            code="home_unusable",
            hint="point ROOST_HOME at a directory you own",
        )

    def open(self) -> None:
        """`ensure`, as far as it goes: run when a client starts, so every later write lands in a
        private home (nested `mkdir(parents=True)` calls would make a missing one 0755) and a home
        an older roost left loose is tightened. A home that cannot be made is reported by the
        first operation that needs it."""
        try:
            self.ensure()
        except RoostError:
            pass
        self.trash.reap()  # what a delete killed midway left behind

    def dir(self, ws_id: str) -> Path:
        return self.root / ws_id

    @staticmethod
    def new_id() -> str:
        return WORKSPACE_ID_PREFIX + secrets.token_hex(5)

    def ids(self) -> list[str]:
        """Raises: StorageError: home_unusable (a home that does not exist yet has no workspaces)."""
        try:
            names = os.listdir(self.root)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise self._unusable(exc) from None
        return sorted(n for n in names if ID_PATTERN.fullmatch(n) and (self.root / n).is_dir())

    @contextmanager
    def lock(self, ws_id: str) -> Iterator[None]:
        directory = self.dir(ws_id)
        if not directory.is_dir():
            raise self._not_found(ws_id)
        with file_lock(directory / LOCK_FILE):
            yield

    @contextmanager
    def global_lock(self) -> Iterator[None]:
        """Serialises creates so names stay unique."""
        self.ensure()
        with file_lock(self.home / LOCK_FILE, what="workspace store"):
            yield

    def load(self, ws_id: str) -> WorkspaceRecord:
        path = self.dir(ws_id) / RECORD_FILE
        try:
            raw = path.read_bytes()
        except FileNotFoundError:
            if self.dir(ws_id).is_dir():
                raise WorkspaceError(
                    f"workspace {ws_id} has no record (an interrupted create or delete)",
                    code="workspace_corrupt",
                    remedy=_force_delete(ws_id),
                    details={"workspace": ws_id},
                ) from None
            raise self._not_found(ws_id) from None
        known = self._parsed.get(ws_id)
        if known is not None and known[0] == raw:
            return known[1]  # records are frozen: the same bytes make the same record
        try:
            record = WorkspaceRecord.from_json(raw, str(path), self._read_boot)
        except WorkspaceError as exc:
            exc.details["workspace"] = ws_id
            raise
        self._parsed[ws_id] = (raw, record)
        return record

    def save(self, record: WorkspaceRecord) -> None:
        """Write a record atomically; callers hold `lock(record.id)`.

        Raises:
            StorageError: disk_full.
        """
        with state_write("the workspace record"):
            write_atomic(self.dir(record.id) / RECORD_FILE, record.to_json())

    def create_dir(self, ws_id: str) -> Path:
        """Raises: StorageError: disk_full."""
        directory = self.dir(ws_id)
        with state_write("a new workspace"):
            directory.mkdir(mode=0o700)
        return directory

    def claim_owner(self, ws_id: str) -> HeldLock:
        """Become the workspace's owner until the returned lock is released or this process ends.

        Raises:
            ConflictError: workspace_busy when another live process owns it.
            StorageError: disk_full.
        """
        with state_write("the workspace's owner lock"):
            held = hold_lock(self.dir(ws_id) / OWNER_FILE)
        if held is None:
            raise ConflictError(f"workspace {ws_id} is owned by another process", code="workspace_busy")
        return held

    def owner_alive(self, ws_id: str) -> bool:
        """True while the process that claimed the workspace still runs."""
        return lock_is_held(self.dir(ws_id) / OWNER_FILE)

    def update(self, ws_id: str, change: Callable[[WorkspaceRecord], WorkspaceRecord]) -> WorkspaceRecord:
        """Read-modify-write one record under its lock (a `change` that returns the record it was
        given writes nothing)."""
        with self.lock(ws_id):
            current = self.load(ws_id)
            record = change(current)
            if record is not current:
                self.save(record)
            return record

    def remove(self, ws_id: str) -> None:
        """Remove the workspace's directory and everything in it, before returning; needs no free space.

        Raises:
            StorageError: delete_incomplete when something could not be removed.
        """
        self._parsed.pop(ws_id, None)
        remove_tree(self.dir(ws_id), f"workspace {ws_id}", _remove_rest(ws_id))

    def discard(self, ws_id: str) -> None:
        """Take the stopped workspace's directory out of sight at once and free its space (see `trash`).

        Raises:
            StorageError: delete_incomplete when it is removed in place (no rename possible, or a
                nearly full disk) and something stays.
        """
        self._parsed.pop(ws_id, None)
        try:
            tomb = self.trash.bury(self.dir(ws_id))
        except FileNotFoundError:
            return
        except OSError:
            self.remove(ws_id)  # not renamable (a mount point, say): remove it where it is
            return
        self.trash.release(tomb, f"workspace {ws_id}")

    def records(self) -> Iterator[WorkspaceRecord | WorkspaceError]:
        """Every record, with corrupt ones yielded as their error instead of raised."""
        for ws_id in self.ids():
            try:
                yield self.load(ws_id)
            except WorkspaceError as exc:
                yield exc
            except NotFound:
                continue  # deleted while we listed

    def resolve(self, ref: str) -> str:
        """Turn an id, a unique id prefix or a name into an id.

        A reference that starts with `ws-` is an id or an id prefix; anything
        else is a name. Names may not start with `ws-` (see
        `roost.arguments.workspace_name`), so the two never overlap.

        Raises:
            InvalidArgument: an empty reference.
            NotFound: workspace_not_found.
            ConflictError: workspace_ambiguous for a prefix matching several.
        """
        if not isinstance(ref, str) or not ref:
            raise InvalidArgument(
                f"a workspace reference must be a non-empty string, not {ref!r}",
                hint="give the workspace's id, a unique id prefix, or its name",
            )
        ids = self.ids()
        if not ref.startswith(WORKSPACE_ID_PREFIX):
            for ws_id in ids:
                try:
                    if self.load(ws_id).name == ref:
                        return ws_id
                except (WorkspaceError, NotFound):
                    continue  # a corrupt or vanishing record has no name to match
            raise self._not_found(ref)
        if ref in ids:
            return ref
        matches = [ws_id for ws_id in ids if ws_id.startswith(ref)]
        if len(matches) > 1:
            raise ConflictError(
                f"{ref!r} matches {len(matches)} workspaces: {', '.join(matches[:5])}",
                code="workspace_ambiguous",
                hint="give more characters of the id",
            )
        if not matches:
            raise self._not_found(ref)
        return matches[0]

    @staticmethod
    def _not_found(ref: str) -> NotFound:
        return NotFound(
            f"no workspace {ref!r}",
            code="workspace_not_found",
            remedy=Remedy("see which workspaces there are", "workspace_list"),
        )
