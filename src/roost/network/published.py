"""Published ports: listeners on the host's loopback whose connections reach a port inside the workspace.

Each `PublishedPort` becomes a listening socket on its 127.0.0.0/8 address
(never another) in the gateway's, that is the host's, namespace. Each
connection accepted there gets a socket from the inner helper connected to
127.0.0.1:GUEST_PORT inside the workspace, and the two are relayed. Nothing
is published on any other address, so the workspace's port cannot be
reached from the network.

`PortTable.apply` changes the set live: listeners that stay are kept (their
connections too), new ones are bound first (all or none: a port in use
fails the change and leaves the old set), removed ones are closed. A
host port the table holds already and is asked to serve another guest
port (or service) keeps its listener, which then leads to the new guest
port: rebinding it would find it taken by the table itself.

Imports: roost.errors, roost.network.accepting, inner, policy, relay and the standard library.
"""

from __future__ import annotations

import errno
import select
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from roost.errors import PortInUse
from roost.network.accepting import accept_each
from roost.network.inner import SocketFactory
from roost.network.policy import PublishedPort
from roost.network.relay import relay

__all__ = ["BoundPort", "PortTable", "bind_published"]

_GUEST_CONNECT_SECONDS = 5.0


@dataclass(frozen=True)
class BoundPort:
    """A published port with its host port resolved (a request for any port got this one)."""

    host_address: str
    host_port: int
    guest_port: int
    service: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "host_address": self.host_address,
            "host_port": self.host_port,
            "guest_port": self.guest_port,
            "service": self.service,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BoundPort:
        service = data.get("service")
        return cls(
            str(data["host_address"]),
            int(data["host_port"]),
            int(data["guest_port"]),
            None if service is None else str(service),
        )


def bind_published(port: PublishedPort) -> socket.socket:
    """A listening socket for `port` on the host's loopback.

    Raises:
        PortInUse: the host port is taken (or cannot be bound).
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind((port.host_address, port.host_port))
        listener.listen(128)
    except OSError as exc:
        listener.close()
        taken = exc.errno == errno.EADDRINUSE
        raise PortInUse(
            f"host port {port.host_address}:{port.host_port} is {'in use' if taken else 'not available'}: {exc.strerror}",
            details={"host_address": port.host_address, "host_port": port.host_port},
        ) from None
    return listener


class PortTable:
    """The published ports a gateway serves, changed live by `apply`."""

    def __init__(self, factory: SocketFactory) -> None:
        self._factory = factory
        self._listeners: dict[BoundPort, socket.socket] = {}
        self._lock = threading.Lock()

    @property
    def bound(self) -> tuple[BoundPort, ...]:
        with self._lock:
            return tuple(self._listeners)

    def apply(self, wanted: Sequence[tuple[PublishedPort, str | None]]) -> tuple[BoundPort, ...]:
        """Serve exactly `wanted`; the ports as bound, in the order given.

        Raises:
            PortInUse: a new host port is taken; nothing changed.
        """
        with self._lock:
            kept: dict[BoundPort, socket.socket] = {}
            fresh: dict[BoundPort, socket.socket] = {}
            order: list[BoundPort] = []
            try:
                for port, service in wanted:
                    existing = self._find(port, service, kept)
                    if existing is not None:
                        kept[existing] = self._listeners[existing]
                        order.append(existing)
                        continue
                    moved = self._find_host_port(port, kept)
                    if moved is not None:
                        bound = BoundPort(moved.host_address, moved.host_port, port.guest_port, service)
                        kept[bound] = self._listeners[moved]
                        order.append(bound)
                        continue
                    listener = bind_published(port)
                    address, host_port = listener.getsockname()[:2]
                    bound = BoundPort(address, host_port, port.guest_port, service)
                    fresh[bound] = listener
                    order.append(bound)
            except PortInUse:
                for listener in fresh.values():
                    listener.close()
                raise
            staying = {id(listener) for listener in kept.values()}
            for listener in self._listeners.values():
                if id(listener) not in staying:
                    _stop_listening(listener)
            for listener in fresh.values():
                handle = partial(self._connect, listener=listener)
                threading.Thread(target=accept_each, args=(listener, handle), daemon=True).start()
            self._listeners = {**kept, **fresh}
            return tuple(order)

    def close(self) -> None:
        with self._lock:
            for listener in self._listeners.values():
                _stop_listening(listener)
            self._listeners = {}

    def _find(
        self, port: PublishedPort, service: str | None, taken: dict[BoundPort, socket.socket]
    ) -> BoundPort | None:
        for bound in self._listeners:
            if (
                bound not in taken
                and bound.host_address == port.host_address
                and bound.guest_port == port.guest_port
                and bound.service == service
                and port.host_port in (0, bound.host_port)
            ):
                return bound
        return None

    def _find_host_port(self, port: PublishedPort, taken: dict[BoundPort, socket.socket]) -> BoundPort | None:
        """The listener already on `port`'s host address and (named) host port, to lead elsewhere now."""
        if port.host_port == 0:
            return None
        taken_listeners = {id(listener) for listener in taken.values()}
        for bound, listener in self._listeners.items():
            if id(listener) not in taken_listeners and (bound.host_address, bound.host_port) == (
                port.host_address,
                port.host_port,
            ):
                return bound
        return None

    def _guest_port(self, listener: socket.socket) -> int | None:
        with self._lock:
            return next((bound.guest_port for bound, held in self._listeners.items() if held is listener), None)

    def _connect(self, client: socket.socket, *, listener: socket.socket) -> None:
        guest_port = self._guest_port(listener)
        if guest_port is None:  # the listener was let go while this connection waited
            client.close()
            return
        try:
            _answer, (inside,) = self._factory.request("connect", port=guest_port)
        except (OSError, ValueError):
            client.close()
            return
        poller = select.poll()
        poller.register(inside, select.POLLOUT)
        if not poller.poll(_GUEST_CONNECT_SECONDS * 1000) or inside.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            inside.close()
            client.close()
            return
        relay(client, inside)


def _stop_listening(listener: socket.socket) -> None:
    try:
        listener.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    listener.close()
