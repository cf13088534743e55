"""The dashboard's door: every HTTP request and WebSocket passes here before any route.

What it holds (docs/ui.md, "Security model"):
- Host must name this server on loopback (`127.0.0.1:PORT` or `localhost:PORT`): a page on
  another site that rebinds its DNS name to 127.0.0.1 still sends its own name, and is refused.
- Origin, when a browser sends one (and always on a WebSocket upgrade), must be this server's.
- The per-start token: `/?token=...` once (then an HttpOnly, SameSite=Strict cookie and a
  redirect that strips it from the address bar and history), the cookie on everything after.
  Compared in constant time. No token: 401; wrong Host or Origin: 403.

Imports: starlette's ASGI types and responses, and the standard library.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Headers every answer carries: no framing, no referrer (the first URL holds the token),
# scripts and styles from this server only.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}


def new_token() -> str:
    """A fresh secret for one start of the server (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Door:
    """What a request must show to come in: this port on loopback and this start's token."""

    port: int
    token: str

    @property
    def cookie_name(self) -> str:
        # Cookies ignore ports: two dashboards on one host must not overwrite each other's.
        return f"roost_ui_{self.port}"

    def hosts(self) -> frozenset[str]:
        return frozenset({f"127.0.0.1:{self.port}", f"localhost:{self.port}"})

    def origins(self) -> frozenset[str]:
        return frozenset(f"http://{host}" for host in self.hosts())

    def token_matches(self, given: str | None) -> bool:
        return given is not None and hmac.compare_digest(given.encode(), self.token.encode())


class DoorGuard:
    """ASGI middleware that lets a request through only with the right Host, Origin and token."""

    def __init__(self, app: ASGIApp, door: Door) -> None:
        self.app = app
        self.door = door

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        refusal = self._refusal(scope)
        if refusal is not None:
            if scope["type"] == "websocket":
                await _refuse_handshake(scope, send, refusal)
                return
            await refusal(scope, receive, send)
            return
        login = self._login(scope)
        if login is not None:
            await login(scope, receive, send)
            return
        await self.app(scope, receive, _with_headers(send))

    def _refusal(self, scope: Scope) -> Response | None:
        headers = Headers(scope=scope)
        if headers.get("host", "") not in self.door.hosts():
            return _refuse(403, "this dashboard answers only on its own loopback address")
        origin = headers.get("origin")
        if origin is None and scope["type"] == "websocket":
            return _refuse(403, "a WebSocket needs an Origin")
        if origin is not None and origin not in self.door.origins():
            return _refuse(403, "cross-origin requests are refused")
        if self._query_token(scope) is not None and scope["path"] == "/":
            return None  # checked by _login
        if not self.door.token_matches(_cookie(headers, self.door.cookie_name)):
            return _refuse(401, "open the URL `roost ui` printed (it carries this start's token)")
        return None

    def _login(self, scope: Scope) -> Response | None:
        given = self._query_token(scope)
        if given is None or scope["path"] != "/":
            return None
        if not self.door.token_matches(given):
            return _refuse(401, "wrong token: open the URL `roost ui` printed for this start")
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(self.door.cookie_name, self.door.token, httponly=True, samesite="strict", path="/")
        _add_security_headers(response.headers.raw)
        return response

    def _query_token(self, scope: Scope) -> str | None:
        if scope["type"] != "http":
            return None
        values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("token")
        return values[0] if values else None


async def _refuse_handshake(scope: Scope, send: Send, refusal: Response) -> None:
    """Refuse a WebSocket before its handshake completes: the browser sees the HTTP status."""
    if "websocket.http.response" in scope.get("extensions", {}):
        start = {"type": "websocket.http.response.start", "status": refusal.status_code, "headers": []}
        await send(start)
        await send({"type": "websocket.http.response.body", "body": refusal.body})
    else:
        await send({"type": "websocket.close", "code": 1008})  # the server answers 403


def _cookie(headers: Headers, name: str) -> str | None:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(headers.get("cookie", ""))
    except Exception:  # a malformed Cookie header is the same as none
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def _refuse(status: int, why: str) -> Response:
    response = PlainTextResponse(f"{status}: {why}\n", status_code=status)
    _add_security_headers(response.headers.raw)
    return response


def _add_security_headers(raw: list[tuple[bytes, bytes]]) -> None:
    present = {name for name, _ in raw}
    raw.extend((k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items() if k.encode() not in present)


def _with_headers(send: Send) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            raw = list(message.get("headers", []))
            _add_security_headers(raw)
            message = {**message, "headers": raw}
        await send(message)

    return sending
