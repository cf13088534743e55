"""The host's secret store: values encrypted at rest (AES-GCM), with each secret's modes, hosts and set time.

One JSON file (`ROOST_HOME/secrets/store.json`, 0600 in a 0700 directory)
holds every secret: its public facts in clear, its value as nonce +
ciphertext, authenticated with the secret's name as associated data (a
value moved under another name does not decrypt). The key is kept apart
(`roost.secrets.keys`). Every change rewrites the file atomically under the
store's lock. A value is decrypted only by `value`, for the caller that
needs it; no error message or exception argument ever carries one.

Imports: errors, store (atomic, locks), this package's `model` and `keys`, `cryptography` and the standard library.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from roost.errors import InvalidArgument, SecretNotFound, operator_remedy
from roost.secrets.keys import key_source
from roost.secrets.model import DEFAULT_MODES, SecretInfo, check_hosts, check_modes, check_name, store_corrupt
from roost.store.atomic import write_atomic
from roost.store.locks import file_lock

__all__ = ["MAX_SECRET_BYTES", "SecretNotFound", "SecretStore", "not_found"]

MAX_SECRET_BYTES = 64 * 1024
_FORMAT = 1
_NONCE_BYTES = 12


def not_found(name: str) -> SecretNotFound:
    """The error for a name the store does not hold; only the host's operator can set one (never a model)."""
    return SecretNotFound(f"no secret named {name!r}", remedy=operator_remedy("set it first", "secret_set", name))


class SecretStore:
    """The secrets of one ROOST_HOME."""

    def __init__(self, home: Path) -> None:
        self.dir = Path(home) / "secrets"
        self._file = self.dir / "store.json"

    # -- reading -------------------------------------------------------------
    def list(self) -> list[SecretInfo]:
        """Every secret's public facts, by name."""
        return [_info(name, entry) for name, entry in sorted(self._entries().items())]

    def get(self, name: str) -> SecretInfo:
        """Raises: SecretNotFound."""
        entry = self._entries().get(name)
        if entry is None:
            raise not_found(name)
        return _info(name, entry)

    def value(self, name: str) -> bytes:
        """The secret's value: keep it no longer than the one use that needs it.

        Raises:
            SecretNotFound; StorageError: secret_store_corrupt when it does not decrypt.
        """
        entry = self._entries().get(name)
        if entry is None:
            raise not_found(name)
        return self._decrypt(name, entry)

    def values(self, names: Iterable[str]) -> dict[str, bytes]:
        """Several values at once (one read of the store); names it does not hold are left out."""
        entries = self._entries()
        return {name: self._decrypt(name, entries[name]) for name in names if name in entries}

    # -- changing ------------------------------------------------------------
    def set(
        self,
        name: str,
        value: bytes,
        *,
        modes: Iterable[str] = DEFAULT_MODES,
        hosts: Iterable[str] = (),
        in_body: bool = False,
    ) -> SecretInfo:
        """Store (or replace) a secret; `in_body`: proxy mode replaces its placeholder in request bodies too.

        Raises:
            InvalidArgument: a bad name, mode or host, an empty or oversized value, proxy mode without
                hosts, in_body without proxy mode.
        """
        check_name(name)
        checked_modes = check_modes(modes)
        checked_hosts = check_hosts(hosts)
        if not isinstance(value, bytes | bytearray) or not value:
            raise InvalidArgument(
                f"secret {name!r} has an empty value", hint="give the value on stdin, a file or a variable"
            )
        if len(value) > MAX_SECRET_BYTES:
            raise InvalidArgument(f"secret {name!r} is over {MAX_SECRET_BYTES} bytes", hint="store a shorter value")
        if in_body and "proxy" not in checked_modes:
            raise InvalidArgument(
                f"secret {name!r}: in_body is for proxy mode, where roost puts the value in requests",
                hint="add the proxy mode (and its hosts), or leave in_body out",
            )
        if "proxy" in checked_modes and not checked_hosts:
            raise InvalidArgument(
                f"secret {name!r} in proxy mode needs the hosts it may be sent to",
                hint="add a host, e.g. api.example.com",
            )
        with self._changing() as entries:
            nonce = secrets.token_bytes(_NONCE_BYTES)
            sealed = self._cipher().encrypt(nonce, bytes(value), name.encode())
            entries[name] = {
                "modes": list(checked_modes),
                "hosts": list(checked_hosts),
                "in_body": bool(in_body),
                "set_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
                "sealed": base64.b64encode(nonce + sealed).decode(),
            }
            return _info(name, entries[name])

    def delete(self, name: str) -> None:
        """Raises: SecretNotFound."""
        with self._changing() as entries:
            if entries.pop(name, None) is None:
                raise not_found(name)

    # -- the file ------------------------------------------------------------
    def _entries(self) -> dict[str, dict[str, Any]]:
        try:
            raw = self._file.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise store_corrupt(f"cannot read the secret store: {exc.strerror}") from None
        try:
            data = json.loads(raw)
            entries = data["secrets"]
            if data.get("format") != _FORMAT or not isinstance(entries, dict):
                raise ValueError("not a store")
            for name, entry in entries.items():
                _info(name, entry)
        except (ValueError, KeyError, TypeError, AttributeError, InvalidArgument):
            raise store_corrupt("the secret store file is not one this roost reads") from None
        return entries

    @contextmanager
    def _changing(self) -> Iterator[dict[str, dict[str, Any]]]:
        self._make_dir()
        with file_lock(self.dir / ".lock", what="secret store"):
            entries = self._entries()
            yield entries
            data = json.dumps({"format": _FORMAT, "secrets": entries}, indent=2, sort_keys=True)
            write_atomic(self._file, data.encode() + b"\n", 0o600)

    def _make_dir(self) -> None:
        self.dir.parent.mkdir(parents=True, exist_ok=True)
        self.dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)

    def _cipher(self) -> Any:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM  # only where a value is sealed or opened

        self._make_dir()
        return AESGCM(key_source(self.dir).load_or_make())

    def _decrypt(self, name: str, entry: dict[str, Any]) -> bytes:
        from cryptography.exceptions import InvalidTag

        try:
            blob = base64.b64decode(entry["sealed"], validate=True)
            value: bytes = self._cipher().decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], name.encode())
        except (InvalidTag, ValueError, KeyError, TypeError):
            raise store_corrupt(f"secret {name!r} does not decrypt with this store's key") from None
        return value


def _info(name: str, entry: dict[str, Any]) -> SecretInfo:
    check_name(name)
    if not isinstance(entry.get("sealed"), str) or not isinstance(entry.get("set_at"), str):
        raise ValueError("incomplete entry")
    hosts = tuple(str(h) for h in entry["hosts"])
    return SecretInfo(name, check_modes(entry["modes"]), hosts, entry["set_at"], entry.get("in_body") is True)
