"""`roost ui`'s door, from outside: loopback only, the token once then a cookie, Host and Origin checked
on every request and WebSocket upgrade. Plain HTTP and WebSocket clients, no browser.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from ui_server import UiServer
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from roost.client import Roost

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shell_path(ui: UiServer) -> Iterator[str]:
    with Roost(home=ui.home, backend="mock") as roost:
        workspace = roost.create_workspace("debian:12", ephemeral=False)
        shell = workspace.shells.open()
        yield f"/api/workspaces/{workspace.id}/shells/{shell.id}/tty"


def test_the_server_listens_on_loopback_only(ui: UiServer) -> None:
    with socket.create_connection(("127.0.0.1", ui.port), timeout=5):
        pass
    outside = _non_loopback_address()
    if outside is None:
        pytest.skip("this host has no non-loopback IPv4 address to try")
    with pytest.raises(OSError), socket.create_connection((outside, ui.port), timeout=2):
        pass


def test_a_request_without_the_token_gets_401(ui: UiServer) -> None:
    assert ui.request("/")[0] == 401
    assert ui.request("/api/workspaces")[0] == 401
    assert ui.request("/static/js/app.js")[0] == 401
    assert ui.request("/?token=not-the-token")[0] == 401
    assert ui.request("/api/workspaces", headers={"Cookie": f"roost_ui_{ui.port}=wrong"})[0] == 401


def test_the_token_url_sets_a_strict_httponly_cookie_and_redirects_without_it(ui: UiServer) -> None:
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", ui.port, timeout=10)
    connection.request("GET", f"/?token={ui.token}")
    response = connection.getresponse()
    cookie = response.getheader("set-cookie") or ""
    assert response.status == 303 and response.getheader("location") == "/"
    assert cookie.startswith(f"roost_ui_{ui.port}={ui.token};")
    assert "HttpOnly" in cookie and "samesite=strict" in cookie.lower()
    assert response.getheader("referrer-policy") == "no-referrer"
    assert ui.request("/api/workspaces", headers={"Cookie": ui.cookie})[0] == 200


def test_a_foreign_host_or_origin_gets_403_even_with_the_cookie(ui: UiServer) -> None:
    foreign_host = {"Cookie": ui.cookie, "Host": f"attacker.example:{ui.port}"}
    foreign_origin = {"Cookie": ui.cookie, "Origin": "http://attacker.example"}
    other_port = {"Cookie": ui.cookie, "Origin": f"http://127.0.0.1:{ui.port + 1}"}
    assert ui.request("/api/workspaces", headers=foreign_host)[0] == 403
    assert ui.request("/api/workspaces", headers=foreign_origin)[0] == 403
    assert ui.request("/api/workspaces", headers=other_port)[0] == 403
    assert ui.request(f"/?token={ui.token}", headers={"Origin": "http://attacker.example"})[0] == 403
    own_origin = {"Cookie": ui.cookie, "Origin": f"http://localhost:{ui.port}", "Host": f"localhost:{ui.port}"}
    assert ui.request("/api/workspaces", headers=own_origin)[0] == 200


@pytest.mark.parametrize(
    ("origin", "cookie", "status"),
    [("http://attacker.example", True, 403), (None, True, 403), ("own", False, 401)],
    ids=["foreign-origin", "no-origin", "no-token"],
)
def test_a_websocket_upgrade_is_refused_without_own_origin_and_token(
    ui: UiServer, shell_path: str, origin: str | None, cookie: bool, status: int
) -> None:
    headers = {"Cookie": ui.cookie} if cookie else {}
    sent_origin = f"http://127.0.0.1:{ui.port}" if origin == "own" else origin
    with pytest.raises(InvalidStatus) as refused:
        connect(
            f"ws://127.0.0.1:{ui.port}{shell_path}", origin=sent_origin, additional_headers=headers, open_timeout=10
        )
    assert refused.value.response.status_code == status


def test_a_websocket_with_own_origin_and_cookie_reaches_the_shell(ui: UiServer, shell_path: str) -> None:
    origin = f"http://127.0.0.1:{ui.port}"
    with connect(
        f"ws://127.0.0.1:{ui.port}{shell_path}", origin=origin, additional_headers={"Cookie": ui.cookie}
    ) as ws:
        ws.send('{"type": "input", "data": "echo $((6 * 7))\\r"}')
        seen = b""
        while b"42\r\n" not in seen:
            frame = ws.recv(timeout=10)
            seen += frame if isinstance(frame, bytes) else frame.encode()


def _non_loopback_address() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
        address = str(probe.getsockname()[0])
    except OSError:
        return None
    finally:
        probe.close()
    return None if address.startswith("127.") else address
