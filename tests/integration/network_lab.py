"""A network lab that never leaves the machine: a test host in its own namespace, a test DNS, a workspace namespace.

- `LabHost`: `ip netns add roost-t-XXXX`, a veth pair to the root namespace
  (10.233.N.1/30 on the host side, .2 inside), and HTTP, HTTPS (a
  self-signed certificate made here), UDP echo and stream servers inside.
- `LabDns`: a dnslib server on 127.0.0.1 answering `*.test` names with the
  test host's address (and NXDOMAIN otherwise); the gateway is pointed at
  it with ROOST_NETWORK_RESOLVERS.
- `WorkspaceNamespace`: `unshare --user --map-root-user --net` holding a
  sleep: a network namespace with only lo, owned by a user namespace, as a
  sandbox workspace's is. `run` drives `network_client.py` inside it.

Everything made is removed at close; `leftovers` lists what is not.
"""

from __future__ import annotations

import datetime
import json
import os
import random
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dnslib import QTYPE, RCODE, RR, A, DNSRecord
from dnslib.dns import DNSError

HERE = Path(__file__).parent
NAME_PREFIX = "roost-t-"
LINK_PREFIX = "rt"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def make_certificate(directory: Path, names: list[str]) -> tuple[Path, Path]:
    """A self-signed certificate for `names` (also its own CA): the cert and key files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


class LabHost:
    """A host on a private link from the root namespace, with HTTP, HTTPS, UDP echo and stream servers."""

    def __init__(self, directory: Path, names: list[str]) -> None:
        tag = f"{os.getpid() % 10000:04d}{random.randrange(16**4):04x}"
        self.netns = NAME_PREFIX + tag
        self.host_link, self.inner_link = f"{LINK_PREFIX}{tag}h", f"{LINK_PREFIX}{tag}n"
        subnet = random.randrange(1, 255)
        self.host_side, self.address = f"10.233.{subnet}.1", f"10.233.{subnet}.2"
        self.cert, key = make_certificate(directory, names)
        _ip("netns", "add", self.netns)
        try:
            _ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.inner_link)
            _ip("link", "set", self.inner_link, "netns", self.netns)
            _ip("addr", "add", f"{self.host_side}/30", "dev", self.host_link)
            _ip("link", "set", self.host_link, "up")
            inside = ["ip", "netns", "exec", self.netns]
            for command in (
                ["ip", "addr", "add", f"{self.address}/30", "dev", self.inner_link],
                ["ip", "link", "set", self.inner_link, "up"],
                ["ip", "link", "set", "lo", "up"],
            ):
                subprocess.run([*inside, *command], check=True, capture_output=True)
            self.servers = subprocess.Popen(
                [*inside, sys.executable, str(HERE / "network_servers.py"), str(self.cert), str(key)],
                stdout=subprocess.PIPE,
                text=True,
            )
            assert self.servers.stdout is not None and self.servers.stdout.readline().strip() == "ready"
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        servers = getattr(self, "servers", None)
        if servers is not None:
            servers.kill()
            servers.wait()
        _ip("link", "del", self.host_link, check=False)
        _ip("netns", "del", self.netns, check=False)


class LabDns:
    """Answers `*.test` (and `names`) with `address` from 127.0.0.1:PORT; everything else NXDOMAIN."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.queries: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(65535)
            except OSError:
                return
            try:
                request = DNSRecord.parse(data)
            except DNSError:
                if self.sock.fileno() < 0:
                    return  # closed under the blocked read, which then returns nothing
                continue  # not a DNS query: a real server ignores it too
            name = str(request.q.qname).rstrip(".")
            self.queries.append(name)
            reply = request.reply()
            if name.endswith(".test") and request.q.qtype == QTYPE.A:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(self.address), ttl=30))
            elif not name.endswith(".test"):
                reply.header.rcode = RCODE.NXDOMAIN
            self.sock.sendto(reply.pack(), peer)

    def close(self) -> None:
        self.sock.close()


class WorkspaceNamespace:
    """A user-owned network namespace with only lo, held by a sleep; `pid` is what the gateway joins."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(["unshare", "--user", "--map-root-user", "--net", "sleep", "infinity"])
        self.pid = self.process.pid
        deadline = 100
        while os.readlink(f"/proc/{self.pid}/ns/net") == os.readlink("/proc/self/ns/net") and deadline:
            threading.Event().wait(0.01)
            deadline -= 1

    def start(self, *steps: list[Any]) -> subprocess.Popen[str]:
        """Start `network_client.py` steps inside the namespace; `results` collects them."""
        inside = ["nsenter", "-t", str(self.pid), "-U", "-n", "--preserve-credentials"]
        command = [*inside, sys.executable, str(HERE / "network_client.py"), json.dumps(list(steps))]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    @staticmethod
    def results(client: subprocess.Popen[str], timeout: float = 60) -> list[Any]:
        stdout, stderr = client.communicate(timeout=timeout)
        assert client.returncode == 0, stderr
        results: list[Any] = json.loads(stdout)
        return results

    def run(self, *steps: list[Any], timeout: float = 60) -> list[Any]:
        """Run `network_client.py` steps inside the namespace; their results."""
        return self.results(self.start(*steps), timeout)

    def close(self) -> None:
        self.process.kill()
        self.process.wait()


# One egress check for every path a workspace reaches the network by (gateway, guest link): what the
# client in the workspace runs against the lab host, what it must get back, and the decisions logged.
EGRESS_DECISIONS = [
    ("allowed.test", 53, "allowed", "egress"),
    ("allowed.test", 80, "allowed", "egress"),
    ("allowed.test", 443, "allowed", "egress"),
    ("allowed.test", 7, "allowed", "egress"),
]


def egress_probes(host: LabHost) -> list[list[Any]]:
    """Resolve a name, then HTTP, HTTPS (SNI other.test) and UDP echo to the lab host."""
    return [
        ["resolve", "allowed.test"],
        ["http", host.address, 80, "allowed.test"],
        ["https", host.address, "other.test", str(host.cert)],
        ["udp", host.address, 7, "ping"],
    ]


def egress_results(host: LabHost) -> list[Any]:
    """What `egress_probes` must get back under egress: the address, each server's view of the name, the echo."""
    return [[host.address], "host=allowed.test", "host=other.test", "ping"]


def leftovers(netns: str, links: tuple[str, ...]) -> list[str]:
    """Which of these namespaces and links still exist."""
    namespaces = _ip("netns", "list").stdout
    all_links = _ip("-o", "link").stdout
    return [
        name for name in (netns, *links) if name in namespaces or f" {name}@" in all_links or f" {name}:" in all_links
    ]
