"""The bearer token that guards the streamable-HTTP transport.

Anyone who can reach the port could otherwise run commands as the server's
user, so every HTTP request must carry `Authorization: Bearer <token>`; a
request without it, or with another token, gets 401 before any MCP session
exists. The check is the MCP SDK's own (its `TokenVerifier` hook and
bearer middleware), with the token compared in constant time.

Where the token comes from:
- `--token-file F`: the token in F, which must belong to the server's user
  and be readable by nobody else (0600); when F does not exist yet, a new
  token is generated and written there (0600), so clients can keep it
  across restarts.
- otherwise: a new token at every start, written (0600) to
  `$ROOST_HOME/mcp/http-<port>.token` and shown once on stderr.

This module imports `roost.errors`, the MCP SDK's auth types and the standard library only.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings

from roost.errors import InvalidArgument

__all__ = ["CLIENT_ID", "ServerToken", "StaticTokenVerifier", "auth_settings", "server_token"]

CLIENT_ID = "roost-mcp-client"
MIN_TOKEN_CHARS = 32
TOKEN_FILE_HINT = "create it with `umask 077; head -c 32 /dev/urandom | base64 > FILE`, or let roost write it"


class StaticTokenVerifier:
    """The SDK's `TokenVerifier` for one shared secret."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()

    async def verify_token(self, token: str) -> AccessToken | None:
        if hmac.compare_digest(token.encode(), self._token):
            return AccessToken(token=token, client_id=CLIENT_ID, scopes=[])
        return None


def auth_settings(server_url: str) -> AuthSettings:
    """Bearer auth with no OAuth around it: no provider routes, no protected-resource metadata.

    The SDK's settings require an issuer even then; the server's own URL stands in.
    """
    return AuthSettings(issuer_url=server_url, resource_server_url=None)  # type: ignore[arg-type]


@dataclass(frozen=True)
class ServerToken:
    """The token, the file holding it, and whether it was made now (then it is shown once)."""

    value: str
    path: Path
    generated: bool


def _read_token_file(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as fh:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgument(f"token file {path} is not a regular file", code="token_file_insecure")
        if st.st_uid != os.geteuid() or st.st_mode & 0o077:
            raise InvalidArgument(
                f"token file {path} must belong to you and be readable by nobody else",
                code="token_file_insecure",
                hint=f"chmod 600 {path}",
            )
        raw = fh.read(4096)
    token = raw.decode("ascii", errors="replace").strip()
    if len(token) < MIN_TOKEN_CHARS or not token.isprintable() or any(c.isspace() for c in token):
        raise InvalidArgument(
            f"token file {path} must hold one token of at least {MIN_TOKEN_CHARS} printable ASCII characters",
            code="token_invalid",
            hint=TOKEN_FILE_HINT,
        )
    return token


def _write_new(path: Path, token: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")


def server_token(token_file: str | None, home: Path, port: int) -> ServerToken:
    """The token for this start (see the module docstring for where it comes from).

    Raises:
        InvalidArgument: token_file_insecure, token_invalid, or a token file that cannot be written.
    """
    try:
        if token_file is not None:
            path = Path(token_file).expanduser().absolute()
            if path.exists():
                return ServerToken(_read_token_file(path), path, generated=False)
            token = secrets.token_urlsafe(MIN_TOKEN_CHARS)
            _write_new(path, token)
            return ServerToken(token, path, generated=True)
        directory = home / "mcp"
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = directory / f"http-{port}.token"
        path.unlink(missing_ok=True)  # a fresh token every start; the old one stops working
        token = secrets.token_urlsafe(MIN_TOKEN_CHARS)
        _write_new(path, token)
        return ServerToken(token, path, generated=True)
    except OSError as exc:
        raise InvalidArgument(
            f"cannot use the token file {exc.filename or token_file}: {exc.strerror or exc}",
            code="token_file_unusable",
            hint=TOKEN_FILE_HINT,
        ) from None
