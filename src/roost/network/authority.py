"""A workspace's own certificate authority: what its gateway signs intercepted hosts' certificates with.

Made at first use in NET_DIR (host side, 0700; never inside the workspace):
CA_KEY_NAME (the private key, 0600) and CA_CERT_NAME (the certificate the
workspace trusts). Leaf certificates, one per host name the gateway
intercepts, are signed on demand with a key of the gateway's own, live for
LEAF_LIFETIME and are kept in memory only (the leaf key never touches a
disk: the TLS context loads it through a memfd).

Imports: roost.errors, roost.store.atomic, cryptography and the standard library.
"""

from __future__ import annotations

import datetime
import fcntl
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from roost.errors import NetworkError
from roost.store.atomic import write_atomic

__all__ = ["CA_CERT_NAME", "CA_KEY_NAME", "LEAF_LIFETIME", "Authority", "workspace_ca_pem"]

CA_CERT_NAME = "ca-cert.pem"
CA_KEY_NAME = "ca-key.pem"
_LOCK_NAME = "ca.lock"
CA_LIFETIME = datetime.timedelta(days=3650)
LEAF_LIFETIME = datetime.timedelta(days=1)
_RENEW_BEFORE = datetime.timedelta(hours=1)
_BACKDATE = datetime.timedelta(minutes=5)  # guests whose clock runs a little behind still accept it
_MAX_LEAVES = 256


@dataclass(frozen=True)
class _Leaf:
    context: ssl.SSLContext
    certificate: x509.Certificate


def workspace_ca_pem(net_dir: Path) -> bytes:
    """The workspace's CA certificate (PEM), made now if it has none yet."""
    return Authority.load_or_create(net_dir).cert_pem


class Authority:
    """The CA of one workspace, and the leaf certificates it signed (cached per name). Thread-safe."""

    def __init__(self, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> None:
        self._key = key
        self.certificate = certificate
        self.cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())
        self._leaves: dict[str, _Leaf] = {}
        self._lock = threading.Lock()

    @classmethod
    def load_or_create(cls, net_dir: Path) -> Authority:
        """Raises: NetworkError: NET_DIR's CA files do not read (the message names no key material)."""
        net_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock_fd = os.open(net_dir / _LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            if not (net_dir / CA_KEY_NAME).exists():
                _create(net_dir)
            return cls._load(net_dir)
        finally:
            os.close(lock_fd)

    @classmethod
    def _load(cls, net_dir: Path) -> Authority:
        try:
            key = serialization.load_pem_private_key(_read_private(net_dir / CA_KEY_NAME), password=None)
            certificate = x509.load_pem_x509_certificate(_read_private(net_dir / CA_CERT_NAME))
        except (OSError, ValueError):
            raise NetworkError(
                f"the workspace's certificate authority in {net_dir} does not read",
                hint=f"remove {CA_KEY_NAME} and {CA_CERT_NAME} there and restart the workspace (a new CA is made)",
            ) from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise NetworkError(f"the workspace's CA key in {net_dir} is not an EC key")
        return cls(key, certificate)

    def server_context(self, name: str) -> ssl.SSLContext:
        """A TLS server context presenting a leaf certificate for `name` (a host name), offering http/1.1 only."""
        now = datetime.datetime.now(datetime.UTC)
        with self._lock:
            leaf = self._leaves.get(name)
            if leaf is None or leaf.certificate.not_valid_after_utc - now < _RENEW_BEFORE:
                if len(self._leaves) >= _MAX_LEAVES:
                    self._leaves.clear()
                leaf = self._leaves[name] = self._sign(name, now)
            return leaf.context

    def leaf_certificate(self, name: str) -> x509.Certificate:
        self.server_context(name)
        with self._lock:
            return self._leaves[name].certificate

    def _sign(self, name: str, now: datetime.datetime) -> _Leaf:
        certificate = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.certificate.subject)
            .public_key(self._leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + LEAF_LIFETIME)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(ca=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._leaf_key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.set_alpn_protocols(["http/1.1"])
        chain = certificate.public_bytes(serialization.Encoding.PEM)
        key = self._leaf_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _load_from_memory(context, chain, key)
        return _Leaf(context, certificate)


def _create(net_dir: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "roost"),
            x509.NameAttribute(NameOID.COMMON_NAME, f"roost workspace CA {net_dir.parent.name}"[:64]),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(ca=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_atomic(net_dir / CA_CERT_NAME, certificate.public_bytes(serialization.Encoding.PEM), 0o600)
    write_atomic(net_dir / CA_KEY_NAME, pem_key, 0o600)  # last: its presence says the CA is whole


def _key_usage(*, ca: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=not ca,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )


def _read_private(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def _load_from_memory(context: ssl.SSLContext, chain: bytes, key: bytes) -> None:
    """`load_cert_chain` from bytes: through memfds, which no file system holds."""
    fds = [os.memfd_create("roost-leaf", os.MFD_CLOEXEC) for _ in range(2)]
    try:
        for fd, data in zip(fds, (chain, key), strict=True):
            os.write(fd, data)
        context.load_cert_chain(f"/proc/self/fd/{fds[0]}", f"/proc/self/fd/{fds[1]}")
    finally:
        for fd in fds:
            os.close(fd)
