"""What a workspace does on the network in the tests, run inside its namespace: `python network_client.py JSON`.

JSON is a list of steps; the output is one JSON list of their results:

- `["resolve", NAME]` -> the addresses roost's resolver answers, or "NXDOMAIN";
- `["http", ADDRESS, PORT, HOST]` -> the body of GET / with that Host, or "refused";
- `["https", ADDRESS, NAME, CA_FILE]` -> the body of GET / over TLS with SNI NAME, or "refused";
- `["resolve_tcp", NAME]` -> the same over DNS's TCP transport;
- `["echo", ADDRESS, PORT, NAME, CA_FILE, REQUESTS]` -> what the test host's /echo received for each
  of REQUESTS (`[METHOD, HEADERS, BODY]`) on one kept-alive connection (TLS with SNI NAME when CA_FILE
  is given, else plain HTTP with Host NAME), or "refused";
- `["udp", ADDRESS, PORT, TEXT]` -> the echoed text, or "timeout";
- `["udp_twice", ADDRESS, PORT, TEXT, PAUSE]` -> two such exchanges from one socket, PAUSE s apart;
- `["connect_ms", ADDRESS, PORT, COUNT]` -> connection setup times in ms (connect + one HTTP exchange);
- `["download", ADDRESS, PORT, SECONDS]` -> Gbit/s read from a server that sends without end.
"""

from __future__ import annotations

import json
import socket
import ssl
import sys
import time
from http.client import HTTPConnection
from typing import Any

from dnslib import QTYPE, RCODE, DNSRecord

RESOLVER = ("100.96.0.1", 53)


def resolve(name: str) -> Any:
    reply = DNSRecord.parse(DNSRecord.question(name, "A").send(*RESOLVER, timeout=5))
    if reply.header.rcode == RCODE.NXDOMAIN:
        return "NXDOMAIN"
    return [str(record.rdata) for record in reply.rr if record.rtype == QTYPE.A]


def _exchange(sock: socket.socket, host: str) -> str:
    sock.sendall(f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    if not data:
        return "refused"
    return data.split(b"\r\n\r\n", 1)[1].decode()


def http(address: str, port: int, host: str) -> str:
    try:
        with socket.create_connection((address, port), timeout=5) as sock:
            return _exchange(sock, host)
    except OSError:
        return "refused"


def http_paused(address: str, port: int, host: str, pause: float) -> str:
    """An HTTP request whose first byte goes alone, `pause` seconds before the rest."""
    request = f"GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()
    try:
        with socket.create_connection((address, port), timeout=5) as sock:
            sock.sendall(request[:1])
            time.sleep(pause)
            sock.sendall(request[1:])
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
    except OSError:
        return "refused"
    return data.split(b"\r\n\r\n", 1)[1].decode() if data else "refused"


def https(address: str, name: str, ca_file: str) -> str:
    context = ssl.create_default_context(cafile=ca_file)
    try:
        with (
            socket.create_connection((address, 443), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=name) as sock,
        ):
            return _exchange(sock, name)
    except OSError:
        return "refused"


def echo(address: str, port: int, name: str, ca_file: str | None, requests: list[list[Any]]) -> Any:
    connection = HTTPConnection(address, port, timeout=5)
    try:
        raw = socket.create_connection((address, port), timeout=5)
        if ca_file:
            raw = ssl.create_default_context(cafile=ca_file).wrap_socket(raw, server_hostname=name)
        connection.sock = raw
        answers = []
        for method, headers, body in requests:
            connection.request(method, "/echo", body=body or None, headers={"Host": name, **headers})
            answers.append(json.loads(connection.getresponse().read()))
        return answers
    except OSError:
        return "refused"
    finally:
        connection.close()


def udp(address: str, port: int, text: str) -> str:
    with socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        sock.sendto(text.encode(), (address, port))
        try:
            return sock.recv(65535).decode()
        except TimeoutError:
            return "timeout"


def udp_twice(address: str, port: int, text: str, pause: float) -> list[str]:
    """Two exchanges from one socket (one flow), `pause` seconds apart."""
    answers = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2)
        for index in range(2):
            if index:
                time.sleep(pause)
            sock.sendto(text.encode(), (address, port))
            try:
                answers.append(sock.recv(65535).decode())
            except TimeoutError:
                answers.append("timeout")
    return answers


def resolve_tcp(name: str) -> Any:
    reply = DNSRecord.parse(DNSRecord.question(name, "A").send(*RESOLVER, tcp=True, timeout=5))
    if reply.header.rcode == RCODE.NXDOMAIN:
        return "NXDOMAIN"
    return [str(record.rdata) for record in reply.rr if record.rtype == QTYPE.A]


def connect_ms(address: str, port: int, count: int) -> list[float]:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        with socket.create_connection((address, port), timeout=5) as sock:
            _exchange(sock, "allowed.test")
        times.append((time.perf_counter() - start) * 1000)
    return times


def download(address: str, port: int, seconds: float) -> float:
    buffer = bytearray(1 << 20)
    total = 0
    with socket.create_connection((address, port), timeout=5) as sock:
        start = time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds:
            total += sock.recv_into(buffer)
    return total * 8 / elapsed / 1e9


STEPS = {
    "resolve": resolve,
    "resolve_tcp": resolve_tcp,
    "udp_twice": udp_twice,
    "http": http,
    "http_paused": http_paused,
    "https": https,
    "echo": echo,
    "udp": udp,
    "connect_ms": connect_ms,
    "download": download,
}

if __name__ == "__main__":
    print(json.dumps([STEPS[step[0]](*step[1:]) for step in json.loads(sys.argv[1])]))
