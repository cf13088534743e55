"""Real traffic from sandbox workspaces through roost's gateway, never leaving this machine.

A test host lives in its own network namespace (network_lab.LabHost: HTTP, HTTPS, UDP echo) and a
test DNS answers `*.test` with its address; the gateway forwards the workspace's allowed lookups
there (ROOST_NETWORK_RESOLVERS). Each test drives a real sandbox workspace through the SDK: its
own lookups (/etc/resolv.conf names roost's resolver), HTTP, TLS and UDP from python3 inside it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from network_lab import LINK_PREFIX, NAME_PREFIX, LabDns, LabHost, leftovers

from helpers import roost_client
from roost import Roost, RoostError, Workspace
from roost.backends import get_backend
from roost.network.attachment import network_available

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

# Run inside the workspace by its own python3: each step's outcome, or the error's class name.
CLIENT = r"""
import json, socket, ssl, sys

def http(address, host):
    with socket.create_connection((address, 80), timeout=5) as s:
        s.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode() if data else "refused"

def https(address, name):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    with socket.create_connection((address, 443), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname=name) as s:
            s.sendall(f"GET / HTTP/1.1\r\nHost: {name}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
    return data.split(b"\r\n\r\n", 1)[1].decode() if data else "refused"

def udp(address, text):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.sendto(text.encode(), (address, 7))
        return s.recv(65535).decode()

def tcp(address, port):
    with socket.create_connection((address, port), timeout=5) as s:
        return s.recv(100).decode() or "refused"

def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return "written"

STEPS = {"resolve": socket.gethostbyname, "http": http, "https": https, "udp": udp, "tcp": tcp, "write": write}
results = []
for kind, *args in json.loads(sys.argv[1]):
    try:
        results.append(STEPS[kind](*args))
    except (OSError, ssl.SSLError, UnicodeDecodeError) as exc:
        results.append(type(exc).__name__)
print(json.dumps(results))
"""


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "the test host's namespace needs root"
    if not get_backend("sandbox").availability().available:
        return "the sandbox backend is not available here"
    ok, why = network_available()
    return None if ok else why


@pytest.fixture
def test_host(tmp_path: Path) -> Iterator[LabHost]:
    """One per test: torn down with the test itself (a module's would wait for the xdist worker's
    exit, which may be cut short, and leave the namespace behind)."""
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    host = LabHost(tmp_path, ["allowed.test", "other.test", "web.test"])
    dns = LabDns(host.address)
    before = os.environ.get("ROOST_NETWORK_RESOLVERS")
    os.environ["ROOST_NETWORK_RESOLVERS"] = f"127.0.0.1:{dns.port}"  # the gateways started here ask it
    try:
        yield host
    finally:
        if before is None:
            os.environ.pop("ROOST_NETWORK_RESOLVERS", None)
        else:
            os.environ["ROOST_NETWORK_RESOLVERS"] = before
        dns.close()
        host.close()
        assert leftovers(host.netns, (host.host_link, host.inner_link)) == []


@pytest.fixture
def roost(tmp_path: Path, test_host: LabHost) -> Iterator[Roost]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "images").symlink_to(Path(os.environ.get("ROOST_IMAGES") or REPO / ".cache" / "images"))
    with roost_client(home, "sandbox") as client:
        yield client


def _run(ws: Workspace, *steps: list[Any]) -> list[Any]:
    result = ws.exec(["python3", "-c", CLIENT, json.dumps(list(steps))], timeout=60)
    assert result.exit_code == 0, result.stderr
    found: list[Any] = json.loads(result.stdout)
    return found


def _gateway_pid(ws: Workspace) -> int:
    detail = ws.network.show().detail
    assert "pid" in detail, detail
    return int(detail.split("pid ")[1].split(")")[0])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _assert_free(port: int) -> None:
    """Nothing listens on 127.0.0.1:`port` (connections it served may linger in TIME_WAIT, as for any server)."""
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))


def test_egress_reaches_the_test_host_by_name_over_tcp_and_udp(roost: Roost, test_host: LabHost) -> None:
    with roost.create_workspace("debian:12", network_policy="egress") as ws:
        assert ws.info().network is not None and ws.info().network.enforced  # type: ignore[union-attr]
        found = _run(ws, ["resolve", "web.test"], ["http", "web.test", "web.test"], ["udp", test_host.address, "hi"])
        assert found == [test_host.address, "host=web.test", "hi"]
        verdicts = {(d.protocol, d.verdict) for d in ws.network.log()}
        assert {("dns", "allowed"), ("tcp", "allowed"), ("udp", "allowed")} <= verdicts


def test_an_allowlist_admits_its_names_and_refuses_the_rest_and_logs_why(roost: Roost, test_host: LabHost) -> None:
    with roost.create_workspace("debian:12", network_policy="allowlist", allow=["allowed.test"]) as ws:
        found = _run(
            ws,
            ["resolve", "allowed.test"],
            ["http", "allowed.test", "allowed.test"],
            ["https", test_host.address, "allowed.test"],
            ["resolve", "other.test"],
            ["http", test_host.address, "other.test"],  # an allowed address, a foreign Host
            ["https", test_host.address, "other.test"],  # and a foreign SNI
            ["udp", test_host.address, "hi"],  # resolved for allowed.test, but port 7 is allowed too
        )
        assert found[:3] == [test_host.address, "host=allowed.test", "host=allowed.test"]
        assert found[3] == "gaierror"  # a denied name does not resolve
        # Refused: the connection is closed before the test host sees it (how depends on the client's timing).
        assert found[4] in ("refused", "ConnectionResetError")
        assert found[5] in ("SSLEOFError", "SSLZeroReturnError", "ConnectionResetError")
        denied = ws.network.log(denied=True)
        assert {d.verdict for d in denied} == {"denied"}
        assert any(d.protocol == "dns" and d.name == "other.test" for d in denied)
        assert any(d.protocol == "tcp" and d.port in (80, 443) for d in denied)
        assert all(d.verdict == "allowed" for d in ws.network.log() if d.name == "allowed.test" and d.port != 80)


def test_a_live_policy_change_takes_effect_without_a_restart(roost: Roost, test_host: LabHost) -> None:
    with roost.create_workspace("debian:12") as ws:
        assert ws.info().network.enforced is False  # type: ignore[union-attr]
        assert _run(ws, ["resolve", "web.test"]) == ["gaierror"]
        agent = ws.exec("echo $PPID").stdout
        shown = ws.network.set("allowlist", allow=["web.test"])
        assert (shown.policy, shown.allow, shown.enforced) == ("allowlist", ("web.test",), True)
        assert _run(ws, ["http", "web.test", "web.test"], ["resolve", "other.test"]) == ["host=web.test", "gaierror"]
        ws.network.set("egress")
        assert _run(ws, ["http", "other.test", "other.test"]) == ["host=other.test"]
        assert ws.exec("echo $PPID").stdout == agent  # the same agent: nothing restarted
        gateway = _gateway_pid(ws)
        assert ws.network.set("off").enforced is False
        assert not Path(f"/proc/{gateway}").exists()


def test_a_fork_child_runs_the_kept_service_but_publishes_none_of_its_ports(roost: Roost) -> None:
    with roost.create_workspace("debian:12") as ws:
        serve = ["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1"]
        ws.services.start("web", serve, publish=["8000"], restart="always")

        forked = ws.fork()

        (child,) = forked
        assert forked.result.ports_not_copied == 1
        info = child.info()
        assert info.last_start is not None and info.last_start.services == ("web",)
        assert child.services.status("web").ports == ()
        assert child.network.show().ports == ()
        assert len(ws.network.show().ports) == 1  # the parent's stays its own
        child.delete()


def test_a_published_port_answers_on_127_0_0_1_and_stop_frees_it(roost: Roost, test_host: LabHost) -> None:
    with roost.create_workspace("debian:12") as ws:
        ws.files.write("index.html", "from the workspace\n")
        service = ws.services.start(
            "web", ["python3", "-m", "http.server", "8000", "--bind", "127.0.0.1"], publish=["8000"]
        )
        assert service.state == "ready" or service.state == "starting"
        (port,) = service.ports
        assert (port.host_address, port.guest_port, port.service) == ("127.0.0.1", 8000, "web")
        assert port.host_port > 0
        body = urllib.request.urlopen(f"http://127.0.0.1:{port.host_port}/index.html", timeout=10).read()
        assert body == b"from the workspace\n"
        assert ws.services.status("web").ports == (port,)
        with pytest.raises(OSError):  # bound on loopback only: not on the test host's link
            socket.create_connection((test_host.host_side, port.host_port), timeout=2).close()
        ws.services.stop("web")
        assert ws.network.show().ports == ()
        _assert_free(port.host_port)


def test_a_taken_host_port_is_port_in_use_before_anything_starts(roost: Roost) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        with pytest.raises(RoostError) as caught:
            roost.create_workspace("debian:12", publish=[f"{busy}:8000"])
        assert caught.value.code == "port_in_use" and caught.value.hint
        assert roost.list_workspaces() == []
        with roost.create_workspace("debian:12") as ws:
            with pytest.raises(RoostError) as refused:
                ws.services.start("web", "sleep 60", publish=[f"{busy}:8000"])
            assert refused.value.code == "port_in_use"
            assert ws.services.list() == []  # nothing started


def test_a_port_taken_while_the_workspace_was_stopped_is_port_in_use_at_start_saying_how_out(roost: Roost) -> None:
    host_port = _free_port()
    with roost.create_workspace("debian:12", network_policy="egress", publish=[f"{host_port}:8000"]) as ws:
        ws.stop()
        with socket.create_server(("127.0.0.1", host_port)):  # another process takes it meanwhile
            with pytest.raises(RoostError) as caught:
                ws.start()
            assert caught.value.code == "port_in_use"
            assert f"roost.workspace({ws.id!r}).network.set(publish=['HOST_PORT:GUEST_PORT'])" in caught.value.hint
            assert ws.info().state == "stopped"
            ws.network.set(publish=["0:8000"])  # as the hint says: another host port, and start again
            ws.start()
            (moved,) = ws.network.show().ports
            assert moved.host_port != host_port and ws.info().state == "running"


def _links_and_namespaces() -> set[str]:
    """Every link and named namespace of the host but the test labs' own (tests running beside this one make them)."""
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout.splitlines()
    names = {line.split(": ")[1].split("@")[0] for line in links if ": " in line}
    listed = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout.splitlines()
    namespaces = [line.split()[0] for line in listed if line.strip()]  # a line may end in "(id: N)"
    found = names | {f"netns:{name}" for name in namespaces}
    return {name for name in found if not name.startswith((LINK_PREFIX, f"netns:{NAME_PREFIX}"))}


def test_delete_frees_the_port_and_the_gateway_and_leaves_no_namespace_or_link(roost: Roost) -> None:
    before = _links_and_namespaces()
    host_port = _free_port()
    ws = roost.create_workspace("debian:12", network_policy="egress", publish=[f"{host_port}:8000"])
    assert [p.host_port for p in ws.network.show().ports] == [host_port]
    assert _links_and_namespaces() == before  # the workspace's network lives in its own namespace only
    gateway = _gateway_pid(ws)
    ws.delete()
    assert not Path(f"/proc/{gateway}").exists()
    _assert_free(host_port)
    assert _links_and_namespaces() == before


def test_stop_takes_the_gateway_down_and_start_brings_it_back(roost: Roost, test_host: LabHost) -> None:
    host_port = _free_port()
    with roost.create_workspace("debian:12", network_policy="egress", publish=[f"{host_port}:8000"]) as ws:
        gateway = _gateway_pid(ws)
        stopped = ws.stop()
        assert stopped.network is not None and not stopped.network.enforced
        assert not Path(f"/proc/{gateway}").exists()
        ws.start()
        assert ws.network.show().enforced
        assert [p.host_port for p in ws.network.show().ports] == [host_port]
        assert _run(ws, ["http", "web.test", "web.test"]) == ["host=web.test"]


def test_the_workspace_cannot_reach_the_host_or_an_address_it_did_not_resolve_or_change_its_resolver(
    roost: Roost, test_host: LabHost
) -> None:
    with socket.create_server(("0.0.0.0", 0)) as on_host:  # the host's own service, on all its addresses
        port = on_host.getsockname()[1]
        on_host.settimeout(0.5)
        with roost.create_workspace("debian:12", network_policy="egress") as ws:
            # Egress is the world, never the host itself (its own link address here).
            assert _run(ws, ["tcp", test_host.host_side, port]) in (["refused"], ["ConnectionResetError"])
            with pytest.raises(TimeoutError):
                on_host.accept()  # nothing got through
            denied = [d for d in ws.network.log() if d.address == test_host.host_side]
            assert denied and denied[0].verdict == "denied" and denied[0].reason == "host_local", denied
        with roost.create_workspace("debian:12", network_policy="allowlist", allow=["allowed.test"]) as ws:
            # An address roost never resolved for an allowed name is refused, whatever the workspace knows.
            assert _run(ws, ["http", test_host.address, "allowed.test"]) in (["refused"], ["ConnectionResetError"])
            # Its root cannot point the workspace at another resolver: resolv.conf is read-only.
            assert _run(ws, ["write", "/etc/resolv.conf", "nameserver 10.0.0.1\n"]) == ["OSError"]
            refused = [d for d in ws.network.log(denied=True) if d.address == test_host.address]
            assert refused and refused[0].reason == "address_not_resolved", refused


def test_a_gateway_that_died_shows_as_gone_and_setting_the_network_starts_a_new_one(
    roost: Roost, test_host: LabHost
) -> None:
    with roost.create_workspace("debian:12", network_policy="allowlist", allow=["web.test"]) as ws:
        gateway = _gateway_pid(ws)
        os.kill(gateway, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while ws.network.show().enforced and time.monotonic() < deadline:
            time.sleep(0.05)
        gone = ws.network.show()
        assert not gone.enforced and "gone" in gone.detail
        assert _run(ws, ["http", "web.test", "web.test"]) == ["gaierror"]  # it fails closed: no way out
        again = ws.network.set()  # nothing changed but the gateway
        assert again.enforced and _gateway_pid(ws) != gateway
        assert _run(ws, ["http", "web.test", "web.test"]) == ["host=web.test"]


TRUSTING_CLIENT = r"""
import json, os, sys, urllib.request
request = urllib.request.Request("https://allowed.test/echo", headers={"Authorization": "Bearer " + sys.argv[1]})
with urllib.request.urlopen(request, timeout=10) as answer:  # the default trust store, nothing given
    echoed = json.loads(answer.read())
with open("/etc/ssl/certs/ca-certificates.crt") as bundle:
    last = bundle.read().rsplit("-----BEGIN CERTIFICATE-----", 1)[1]
print(json.dumps({"authorization": echoed["authorization"], "ssl_cert_file": os.environ.get("SSL_CERT_FILE"),
                  "bundle_tail": last, "environment": dict(os.environ)}))
"""


def test_a_proxy_secret_reaches_its_host_while_the_workspace_holds_only_its_placeholder(
    roost: Roost, test_host: LabHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from roost.network.authority import CA_CERT_NAME
    from roost.network.intercept import UPSTREAM_CA_VARIABLE

    monkeypatch.setenv(UPSTREAM_CA_VARIABLE, str(test_host.cert))  # before create: its gateway inherits it
    value = os.urandom(12).hex()
    roost.secrets.set("API_TOKEN", value.encode(), modes=["proxy"], hosts=["allowed.test"])
    with roost.create_workspace("debian:12", network_policy="egress", secrets=["API_TOKEN:proxy"]) as ws:
        (attached,) = ws.secrets.list()
        assert attached.placeholder is not None and attached.placeholder.startswith("roost-secret-")
        client = 'import os, sys; sys.argv = ["client", os.environ["API_TOKEN"]]; exec(sys.stdin.read())'
        result = ws.exec(["python3", "-c", client], stdin=TRUSTING_CLIENT, secret_env=["API_TOKEN"], timeout=60)
        assert result.exit_code == 0, result.stderr
        seen = json.loads(result.stdout)
        # The value, fed on stdin (so no process's environment gets it from here), is nowhere inside.
        search = "grep -rlsF -f /dev/stdin /proc/[0-9]*/environ /workspace /tmp /dev/shm; echo searched"
        memory = ws.exec(["sh", "-c", search], stdin=value)
        ca_pem = (roost._engine.store.dir(ws.id) / "network" / CA_CERT_NAME).read_text()
    # The host got the value and echoed it back (shown redacted); the process had only the placeholder.
    assert seen["authorization"] == "Bearer [redacted:API_TOKEN]"
    assert seen["environment"]["API_TOKEN"] == attached.placeholder
    assert value not in json.dumps(seen["environment"])
    assert memory.stdout == "searched\n", memory.stdout
    assert seen["ssl_cert_file"] == "/etc/ssl/certs/ca-certificates.crt"
    assert ca_pem.rsplit("-----BEGIN CERTIFICATE-----", 1)[1] == seen["bundle_tail"]


def test_proxy_secrets_follow_live_attach_rotation_and_detach(
    roost: Roost, test_host: LabHost, monkeypatch: pytest.MonkeyPatch
) -> None:
    from roost.network.intercept import UPSTREAM_CA_VARIABLE

    monkeypatch.setenv(UPSTREAM_CA_VARIABLE, str(test_host.cert))
    value = os.urandom(12).hex()
    roost.secrets.set("API_TOKEN", value.encode(), modes=["proxy"], hosts=["allowed.test"])
    client = 'import os, sys; sys.argv = ["client", os.environ["API_TOKEN"]]; exec(sys.stdin.read())'
    with roost.create_workspace("debian:12", network_policy="egress") as ws:
        (attached,) = ws.secrets.add("API_TOKEN:proxy")
        first = ws.exec(["python3", "-c", client], stdin=TRUSTING_CLIENT, secret_env=["API_TOKEN"], timeout=60)
        assert json.loads(first.stdout)["authorization"] == "Bearer [redacted:API_TOKEN]", first.stderr
        rotated = os.urandom(12).hex()  # set again in the store: the running gateway sends the new value
        roost.secrets.set("API_TOKEN", rotated.encode(), modes=["proxy"], hosts=["allowed.test"])
        second = ws.exec(["python3", "-c", client], stdin=TRUSTING_CLIENT, secret_env=["API_TOKEN"], timeout=60)
        # Redaction hides the store's value now; the old one would show as it is.
        assert json.loads(second.stdout)["authorization"] == "Bearer [redacted:API_TOKEN]", second.stderr
        assert value not in second.stdout
        ws.secrets.remove("API_TOKEN")
        gone = ws.exec(["python3", "-c", TRUSTING_CLIENT, attached.placeholder or ""], timeout=60)
        assert gone.exit_code != 0 and value not in gone.stdout + gone.stderr  # not intercepted: the real host's
        # certificate is not one the workspace trusts, and the placeholder is all it could have sent
