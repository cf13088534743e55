"""A workspace's CA: made once in NET_DIR with a 0600 key, and leaf certificates a standard client accepts."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from roost.errors import NetworkError
from roost.network.authority import CA_CERT_NAME, CA_KEY_NAME, Authority, workspace_ca_pem


def test_the_ca_is_made_once_with_a_private_key_only_its_owner_reads(tmp_path: Path) -> None:
    net_dir = tmp_path / "network"
    first = workspace_ca_pem(net_dir)
    assert workspace_ca_pem(net_dir) == first
    assert stat.S_IMODE((net_dir / CA_KEY_NAME).stat().st_mode) == 0o600
    assert stat.S_IMODE(net_dir.stat().st_mode) == 0o700
    assert (net_dir / CA_CERT_NAME).read_bytes() == first


def test_a_leaf_for_a_name_is_signed_by_the_workspace_ca_and_cached(tmp_path: Path) -> None:
    authority = Authority.load_or_create(tmp_path)
    leaf = authority.leaf_certificate("api.example.com")
    public = authority.certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    leaf.verify_directly_issued_by(authority.certificate)
    assert leaf.subject.rfc4514_string() == "CN=api.example.com"
    assert authority.server_context("api.example.com") is authority.server_context("api.example.com")


def test_a_client_trusting_the_ca_completes_a_handshake_for_the_name_with_http11_only(tmp_path: Path) -> None:
    authority = Authority.load_or_create(tmp_path)
    client_context = ssl.create_default_context(cadata=authority.cert_pem.decode())
    client_context.set_alpn_protocols(["h2", "http/1.1"])
    left, right = socket.socketpair()
    served: list[str | None] = []

    def serve() -> None:
        with authority.server_context("api.example.com").wrap_socket(right, server_side=True) as tls:
            served.append(tls.selected_alpn_protocol())
            tls.sendall(b"ok")

    thread = threading.Thread(target=serve)
    thread.start()
    with client_context.wrap_socket(left, server_hostname="api.example.com") as tls:
        assert tls.recv(2) == b"ok"
    thread.join()
    assert served == ["http/1.1"]


def test_a_ca_that_does_not_read_is_an_error_naming_no_key_material(tmp_path: Path) -> None:
    workspace_ca_pem(tmp_path)
    (tmp_path / CA_KEY_NAME).write_bytes(b"-----BEGIN PRIVATE KEY-----\nbroken\n")
    with pytest.raises(NetworkError) as raised:
        Authority.load_or_create(tmp_path)
    assert "broken" not in str(raised.value) and raised.value.hint


def test_a_symlinked_key_is_not_followed(tmp_path: Path) -> None:
    workspace_ca_pem(tmp_path)
    elsewhere = tmp_path / "elsewhere.pem"
    (tmp_path / CA_KEY_NAME).rename(elsewhere)
    (tmp_path / CA_KEY_NAME).symlink_to(elsewhere)
    with pytest.raises(NetworkError):
        Authority.load_or_create(tmp_path)
