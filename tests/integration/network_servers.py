"""The test host's servers, run inside its network namespace: `python network_servers.py CERT KEY`.

HTTP on 80 and HTTPS on 443 answer every GET with 200 and the Host they
were asked for, and GET or POST /echo with a JSON object of what they
received (Host, Authorization, Content-Length, body: what proxy secrets are
checked by); UDP 7 echoes; TCP 5001 discards what it is sent and TCP 5002
sends zeros for as long as it is read (throughput benchmarks). Prints
"ready" once everything listens. Standard library only.
"""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import ssl
import sys
import threading


class Answer(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = self._echo() if self.path == "/echo" else f"host={self.headers.get('Host', '')}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        self.do_GET()

    def _echo(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        received = {
            "host": self.headers.get("Host"),
            "authorization": self.headers.get("Authorization"),
            "content_length": length,
            "body": self.rfile.read(length).decode(errors="replace"),
        }
        return json.dumps(received).encode()

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def udp_echo() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 7))
    while True:
        data, peer = sock.recvfrom(65535)
        sock.sendto(data, peer)


def stream_server(port: int, send: bool) -> None:
    listener = socket.create_server(("0.0.0.0", port), backlog=64)

    def one(conn: socket.socket) -> None:
        buffer = bytearray(1 << 20)
        with conn:
            try:
                while True:
                    if send:
                        conn.sendall(buffer)
                    elif not conn.recv_into(buffer):
                        return
            except OSError:
                return

    while True:
        conn, _peer = listener.accept()
        threading.Thread(target=one, args=(conn,), daemon=True).start()


def main(cert: str, key: str) -> None:
    plain = Server(("0.0.0.0", 80), Answer)
    secure = Server(("0.0.0.0", 443), Answer)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    secure.socket = context.wrap_socket(secure.socket, server_side=True)
    for target, args in (
        (plain.serve_forever, ()),
        (secure.serve_forever, ()),
        (udp_echo, ()),
        (stream_server, (5001, False)),
        (stream_server, (5002, True)),
    ):
        threading.Thread(target=target, args=args, daemon=True).start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
