"""The secrets one process is given: each by name, its value, and where it goes (an env var or a file).

A grant travels only in the request that starts the process (exec, shell
open, service start). Its value is base64 text (a value is any bytes), left
out of the message's repr; no error a grant raises quotes it.

Imports: this package's `message`; standard library only.
"""

from __future__ import annotations

import binascii
import re
from base64 import b64decode, b64encode

from roost.protocol.ops.message import Message, invalid, message, shown, wire

__all__ = ["SecretGrant", "check_env_name", "file_variable"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ENV_HINT = "an environment variable name: a letter or '_', then letters, digits or '_'"


def check_env_name(name: object) -> str:
    """Raises: OpError: invalid_argument for a name no environment variable can have."""
    if not isinstance(name, str) or not _ENV_NAME.fullmatch(name) or len(name) > 255:
        raise invalid(f"invalid environment variable name {shown(name)}", hint=_ENV_HINT)
    return name


def file_variable(secret: str) -> str:
    """The variable that tells a process where its file-mode secret is, when it names none."""
    return f"ROOST_SECRET_FILE_{secret}"


@message
class SecretGrant(Message):
    """Secret `name` for one process: in `env` mode its value is environment variable `variable`; in
    `file` mode it is a 0400 file on a tmpfs (at `path`, or in a directory of its own), whose path is in
    `variable`."""

    name: str = wire()
    mode: str = wire(choices=("env", "file"))
    variable: str = wire()
    value: str = wire(secret=True)
    path: str | None = wire(None)

    def check(self) -> None:
        check_env_name(self.variable)
        if self.path is not None and (self.mode != "file" or not self.path.startswith("/") or "\0" in self.path):
            raise invalid(f"secret {self.name!r}: a path must be absolute, for file mode", hint="e.g. /run/token")
        try:
            b64decode(self.value, validate=True)
        except (binascii.Error, ValueError):
            raise invalid(
                f"secret {self.name!r}: the value is not base64", hint="send the value base64-encoded"
            ) from None

    @classmethod
    def of(cls, name: str, mode: str, variable: str, value: bytes, path: str | None = None) -> SecretGrant:
        """Raises: OpError: invalid_argument (a bad variable name, or a NUL byte in an env-mode value)."""
        if mode == "env" and b"\0" in value:
            raise invalid(f"secret {name!r} holds a NUL byte, which no environment variable can", hint="use file mode")
        return cls(name=name, mode=mode, variable=variable, value=b64encode(value).decode(), path=path)

    def raw(self) -> bytes:
        return b64decode(self.value)
