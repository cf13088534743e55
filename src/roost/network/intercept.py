"""Proxy-mode secrets on the wire: the admitted flows the gateway opens, rewrites and carries itself.

With substitutions set, an admitted TCP flow is intercepted when its first
bytes are

- a TLS ClientHello whose SNI is a host some secret may go to: TLS is ended
  here with a leaf certificate from the workspace's CA (ALPN http/1.1
  only), and opened again to the same address with full verification for
  that name (the host's trust store, or the file UPSTREAM_CA_VARIABLE
  names: a test or enterprise knob); requests are rewritten for the name
  the upstream certificate proved;
- a plain HTTP/1.x request: rewritten for its Host only when roost's
  resolver answered that name with this address (a Host header alone
  proves nothing).

Every other flow is not this module's: it is spliced untouched. A
placeholder headed elsewhere goes out unchanged and is logged
(`placeholder_to_unlisted_host`, with the secret's name). Failures close
the connection without a word in any log: what a client sent is never
written down.

Imports: roost.network.authority, decision_log, decisions, rewrite, sniff,
substitution and the standard library.
"""

from __future__ import annotations

import os
import select
import socket
import ssl
import threading
from collections.abc import Callable
from typing import Protocol

from roost.network.authority import Authority
from roost.network.decision_log import DecisionLog
from roost.network.decisions import AddressBook
from roost.network.rewrite import RequestRewriter
from roost.network.sniff import is_client_hello, server_name
from roost.network.substitution import Substitution

__all__ = ["UPSTREAM_CA_VARIABLE", "Interceptor", "upstream_context"]

UPSTREAM_CA_VARIABLE = "ROOST_NETWORK_UPSTREAM_CA"
HANDSHAKE_SECONDS = 10.0
_READ = 65_536


def upstream_context() -> ssl.SSLContext:
    """How the gateway checks the real server: the default trust store, or UPSTREAM_CA_VARIABLE's file instead."""
    context = ssl.create_default_context(cafile=os.environ.get(UPSTREAM_CA_VARIABLE) or None)
    context.set_alpn_protocols(["http/1.1"])
    return context


class _End(Protocol):
    sock: socket.socket

    def receive(self, raw: bytes) -> bytes: ...
    def send(self, plain: bytes) -> None: ...
    def close_write(self) -> None: ...


class _Plain:
    """A socket carrying bytes as they are."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def receive(self, raw: bytes) -> bytes:
        return raw

    def send(self, plain: bytes) -> None:
        self.sock.sendall(plain)

    def close_write(self) -> None:
        self.sock.shutdown(socket.SHUT_WR)


class _Tls:
    """One TLS end over a blocking socket, through memory BIOs (so one thread drives both directions)."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, *, server_name: str | None, first: bytes) -> None:
        self.sock = sock
        self._incoming, self._outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        server_side = server_name is None
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side, server_name)
        self._incoming.write(first)

    def handshake(self) -> None:
        """Raises: ssl.SSLError (e.g. verification failed), OSError: no handshake within HANDSHAKE_SECONDS."""
        self.sock.settimeout(HANDSHAKE_SECONDS)
        while True:
            try:
                self._tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                raw = self.sock.recv(_READ)
                if not raw:
                    raise ConnectionResetError("closed during the TLS handshake") from None
                self._incoming.write(raw)
        self._flush()
        self.sock.settimeout(None)

    def receive(self, raw: bytes) -> bytes:
        self._incoming.write(raw)
        plain = []
        try:
            while True:
                data = self._tls.read(_READ)
                if not data:
                    break
                plain.append(data)
        except ssl.SSLWantReadError:
            pass
        except ssl.SSLZeroReturnError:
            pass  # close_notify: the socket's end of file follows
        self._flush()  # post-handshake messages (tickets, key updates)
        return b"".join(plain)

    def send(self, plain: bytes) -> None:
        self._tls.write(plain)
        self._flush()

    def close_write(self) -> None:
        try:
            self._tls.unwrap()
        except ssl.SSLError:
            pass
        self._flush()
        self.sock.shutdown(socket.SHUT_WR)

    def _flush(self) -> None:
        data = self._outgoing.read()
        if data:
            self.sock.sendall(data)


class Interceptor:
    """The live substitutions and what rewriting flows needs: the CA, the resolver's answers, the log."""

    def __init__(self, authority: Callable[[], Authority], book: AddressBook, log: DecisionLog) -> None:
        self._authority_loader = authority
        self._authority: Authority | None = None
        self._lock = threading.Lock()
        self.book = book
        self.log = log
        self.substitutions: tuple[Substitution, ...] = ()

    def active(self) -> bool:
        return bool(self.substitutions)

    def wants(self, first: bytes) -> bool:
        """Whether a flow opening with `first` is one to intercept (see the module's docstring)."""
        substitutions = self.substitutions
        named = server_name(first) if substitutions else None
        if named is None:
            return False
        if not is_client_hello(first):
            return True
        return any(item.goes_to(named.name) for item in substitutions)

    def carry(self, client: socket.socket, address: str, port: int, first: bytes) -> None:
        """Carry the flow `wants` said yes to, to its end; closes `client`."""
        substitutions = self.substitutions
        named = server_name(first)
        name = named.name if named is not None else None
        upstream: socket.socket | None = None
        try:
            upstream = socket.create_connection((address, port), timeout=HANDSHAKE_SECONDS)
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if is_client_hello(first) and name:
                ends = self._tls_ends(client, upstream, name, first)
                rewriter = self._rewriter(substitutions, address, port, lambda _host: name)
                _pump(ends, rewriter, b"")
            else:
                known = set(self.book.names_for(address))
                rewriter = self._rewriter(substitutions, address, port, lambda host: host if host in known else None)
                _pump((_Plain(client), _Plain(upstream)), rewriter, first)
        except Exception:  # whatever it was, no traceback (which could quote a request) is logged
            _reset(client)  # e.g. the real server's certificate did not verify: the client is refused
        finally:
            client.close()
            if upstream is not None:
                upstream.close()

    def _tls_ends(self, client: socket.socket, upstream: socket.socket, name: str, first: bytes) -> tuple[_Tls, _Tls]:
        # Upstream first: a server that fails verification never sees the client get a certificate.
        outward = _Tls(upstream, upstream_context(), server_name=name, first=b"")
        outward.handshake()
        inward = _Tls(client, self._authority_now().server_context(name), server_name=None, first=first)
        inward.handshake()
        return inward, outward

    def _authority_now(self) -> Authority:
        with self._lock:
            if self._authority is None:
                self._authority = self._authority_loader()
            return self._authority

    def _rewriter(
        self,
        substitutions: tuple[Substitution, ...],
        address: str,
        port: int,
        identity: Callable[[str | None], str | None],
    ) -> RequestRewriter:
        def foreign(item: Substitution, host: str | None) -> None:
            self.log.record(
                name=host,
                address=address,
                port=port,
                protocol="tcp",
                allowed=True,
                reason="placeholder_to_unlisted_host",
                secret=item.name,
            )

        return RequestRewriter(substitutions, identity, foreign)


def _pump(ends: tuple[_End, _End], rewriter: RequestRewriter, first: bytes) -> None:
    """Both directions in one thread until both reach end of file; client bytes go through `rewriter`."""
    client, upstream = ends
    # What came with the handshake's last flight (a request sent along with TLS Finished) is already read.
    early = rewriter.feed(first + client.receive(b""))
    if early:
        upstream.send(early)
    poller = select.poll()
    by_fd: dict[int, tuple[_End, _End]] = {}
    for source, sink in ((client, upstream), (upstream, client)):
        source.sock.setblocking(True)
        poller.register(source.sock, select.POLLIN)
        by_fd[source.sock.fileno()] = (source, sink)
    while by_fd:
        for fd, _events in poller.poll():
            source, sink = by_fd[fd]
            raw = source.sock.recv(_READ)
            if not raw:
                poller.unregister(fd)
                del by_fd[fd]
                sink.close_write()
                continue
            plain = source.receive(raw)
            if source is client:
                plain = rewriter.feed(plain)
            if plain:
                sink.send(plain)


def _reset(client: socket.socket) -> None:
    try:
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    except OSError:
        pass
