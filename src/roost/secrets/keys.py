"""Where the store's encryption key lives: the OS keyring when one is really there, else a 0600 key file.

The `keyring` library is optional: where it is missing, or finds only its
fail/null backends (a headless host, CI), the key is a 32-byte file beside
the store, made once, readable by its owner only. The store's directory is
0700 either way, so another user reads neither the key nor the values.

Imports: this package's `model`, store.atomic and the standard library (and `keyring`, when installed).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Any

from roost.secrets.model import store_corrupt
from roost.store.atomic import write_atomic

__all__ = ["KEY_BYTES", "KeyFile", "KeySource", "OsKeyring", "key_source"]

KEY_BYTES = 32
_KEYRING_SERVICE = "roost-secrets"


class KeySource:
    """Loads the store's key, making one the first time."""

    where: str = ""

    def load_or_make(self) -> bytes:
        raise NotImplementedError


class KeyFile(KeySource):
    """The key in a 0600 file (`path`), for hosts with no keyring."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.where = f"key file {path}"

    def load_or_make(self) -> bytes:
        """Raises: StorageError: secret_store_corrupt for a key file of the wrong size or mode."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            key = secrets.token_bytes(KEY_BYTES)
            write_atomic(self.path, key, 0o600)
            return key
        except OSError as exc:
            raise store_corrupt(f"cannot read the secret store's key file {self.path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as fh:
            if os.fstat(fh.fileno()).st_mode & 0o077:
                raise store_corrupt(f"the secret store's key file {self.path} is readable by others")
            key = fh.read(KEY_BYTES + 1)
        if len(key) != KEY_BYTES:
            raise store_corrupt(f"the secret store's key file {self.path} is not a key")
        return key


class OsKeyring(KeySource):
    """The key in the OS keyring (hex), named by the store's directory."""

    def __init__(self, backend: Any, store_dir: Path) -> None:
        self._backend = backend
        self._account = str(store_dir)
        self.where = f"OS keyring ({type(backend).__name__})"

    def load_or_make(self) -> bytes:
        """Raises: StorageError: secret_store_corrupt when the keyring holds something that is not a key."""
        stored = self._backend.get_password(_KEYRING_SERVICE, self._account)
        if stored is None:
            key = secrets.token_bytes(KEY_BYTES)
            self._backend.set_password(_KEYRING_SERVICE, self._account, key.hex())
            return key
        try:
            key = bytes.fromhex(stored)
        except ValueError:
            key = b""
        if len(key) != KEY_BYTES:
            raise store_corrupt(f"the OS keyring's entry for {self._account} is not a roost key")
        return key


def key_source(store_dir: Path) -> KeySource:
    """The keyring when the `keyring` library finds a real backend (or one already holds our key), else a key file.

    A key file already there wins: a store whose key is in a file stays readable when a keyring appears later.
    """
    key_path = store_dir / "key"
    if key_path.exists() or os.environ.get("ROOST_SECRETS_KEYRING", "auto") == "off":
        return KeyFile(key_path)
    backend = _real_keyring()
    return KeyFile(key_path) if backend is None else OsKeyring(backend, store_dir)


def _real_keyring() -> Any | None:
    try:
        import keyring  # type: ignore[import-not-found,unused-ignore]
        from keyring.backends import fail  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        return None
    with contextlib.suppress(Exception):  # a broken keyring setup is no keyring
        backend = keyring.get_keyring()
        name = type(backend).__module__
        if isinstance(backend, fail.Keyring) or "null" in name or "fail" in name or backend.priority <= 0:
            return None
        return backend
    return None
