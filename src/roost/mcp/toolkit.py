"""What every tool group shares: the per-server context, the group's shape and the parameter types models see.

A tool group is a `ToolGroup` class: each tool is one of its async methods
(its signature is the input schema a model sees, its docstring the
description), `TOOLS` names them with their annotations and `OUTPUTS` gives
each its result's schema (built with `roost.mcp.result_schemas`), published
as the tool's `outputSchema`. Profiles are lists of groups (see
`roost.mcp.server.PROFILES`).

This module imports `roost.client`, `roost.arguments`, `roost.errors`, its sibling `result_schemas`, the MCP
tool class, pydantic and the standard library.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, ClassVar, overload

from mcp.server.mcpserver.tools import Tool
from mcp.types import ToolAnnotations
from pydantic import Field

from roost.arguments import name_from_text
from roost.client import Roost, Workspace
from roost.errors import SecretError
from roost.mcp.host_paths import AllowedRoots
from roost.mcp.result_schemas import Schema


@dataclass(frozen=True)
class ToolContext:
    """One `Roost` shared by every call (it is thread-safe) and the host roots tools may read."""

    roost: Roost
    roots: AllowedRoots
    # Secrets the operator let models attach and use (`--allow-secret`); by name only.
    allowed_secrets: frozenset[str] = frozenset()

    def allow_secrets(self, names: Iterable[str]) -> None:
        """Raises: SecretError: secret_not_allowed for a name the operator did not allow this server."""
        for name in names:
            if name not in self.allowed_secrets:
                raise SecretError(
                    f"secret {name!r} is not one this MCP server may use",
                    code="secret_not_allowed",
                    hint=f"ask whoever runs the MCP server to let it use secret {name!r} (it is started with the secrets it may use)",
                )

    def allow_uses(self, secret_env: Iterable[str] | None, secret_files: Iterable[str] | None) -> None:
        """`allow_secrets` for the names in a process's `NAME[=VAR]` secret uses.

        Raises:
            SecretError: secret_not_allowed.
        """
        self.allow_secrets(secret_names(secret_env, "=") + secret_names(secret_files, "="))

    def workspace(self, ref: str) -> Workspace:
        """The workspace named by id, unique id prefix or name.

        Raises:
            RoostError: workspace_not_found, workspace_ambiguous.
        """
        return self.roost.workspace(ref)


class ToolGroup:
    """Tools that share one `ToolContext`: each an async method named in `TOOLS` with its annotations,
    and in `OUTPUTS` with the JSON Schema of its result."""

    TOOLS: ClassVar[tuple[tuple[str, ToolAnnotations], ...]] = ()
    OUTPUTS: ClassVar[dict[str, Schema]] = {}

    def __init__(self, context: ToolContext) -> None:
        self.context = context

    def tools(self) -> list[Tool]:
        """Every tool under its method's name: its docstring, dedented, is what the model reads, and
        `OUTPUTS` its `outputSchema` (each tool returns its own `CallToolResult`, so the schema is set
        on the tool, and the result's structured content is what it describes)."""
        built = []
        for name, hints in self.TOOLS:
            method = getattr(self, name)
            tool = Tool.from_function(method, description=inspect.getdoc(method), annotations=hints)
            tool.fn_metadata.output_schema = self.OUTPUTS[name]
            built.append(tool)
        return built


DEFAULT_EXEC_TIMEOUT = 600.0

WorkspaceRef = Annotated[str, Field(description="The workspace: its id, a unique id prefix, or its name.")]
Command = Annotated[
    str | list[str],
    Field(description="A string runs under `bash -c`; a list of strings runs as argv without a shell."),
]
ExecTimeout = Annotated[
    float | None,
    Field(
        description=f"Seconds before the command's process group is killed (default {DEFAULT_EXEC_TIMEOUT:g}; "
        "null for no limit). A timed-out command still returns its partial output with timed_out=true."
    ),
]
NAMES_NOTE = (
    "A name that is not valid UTF-8, or holds a control character, quote or backslash, is written C-quoted as git "
    'writes it ("caf\\351.txt"); give it back exactly as listed.'
)
Cwd = Annotated[
    str | None, Field(description=f"Working directory inside the workspace (default /workspace). {NAMES_NOTE}")
]
EnvVars = Annotated[dict[str, str] | None, Field(description="Extra environment variables for the command.")]
MaxOutputChars = Annotated[
    int | None,
    Field(
        description="Per-stream budget (UTF-8 bytes) of output returned to you, head and tail kept "
        "(default 16384, allowed 1024..262144). The full output stays readable with workspace_logs."
    ),
]
SeedPath = Annotated[
    str | None,
    Field(
        description="Host directory or tar file copied into /workspace at creation; must lie under a "
        "root the server allows (--allow-root)."
    ),
]
EnvName = Annotated[str, Field(description="Environment name, e.g. debian:12 (see env_list).")]
GuestPath = Annotated[
    str, Field(description=f"A path inside the workspace, absolute or relative to /workspace. {NAMES_NOTE}")
]
NetworkPolicyName = Annotated[
    str,
    Field(
        description="off (loopback only, the default), egress (outbound to anywhere) or allowlist "
        "(outbound only to `allow`). Refused by backends that cannot enforce it (mock)."
    ),
]
AllowList = Annotated[
    list[str] | None,
    Field(
        description="For allowlist: host names (pypi.org), wildcards (*.example.com), IPv4 CIDRs "
        "(10.0.0.0/8), each optionally :PORT, or presets @pypi @npm @debian @github."
    ),
]
PublishList = Annotated[
    list[str] | None,
    Field(
        description="Guest ports to serve on the host's loopback: [HOST_ADDRESS:][HOST_PORT:]GUEST_PORT "
        "each, e.g. '8000' (any free host port), '18000:8000'; HOST_ADDRESS in 127.0.0.0/8."
    ),
]
Cursor = Annotated[
    str | None,
    Field(description="Where to continue: the next_cursor a previous call returned (omit to start at the beginning)."),
]


@overload
def guest_path(text: str, param: str = "path") -> str: ...
@overload
def guest_path(text: None, param: str = "path") -> None: ...


def guest_path(text: str | None, param: str = "path") -> str | None:
    """A guest path as a model gives it (names C-quoted where listings quote them), as the SDK takes it.

    Raises:
        InvalidArgument: a quoted name that is not well formed.
    """
    return None if text is None else name_from_text(text, param)


def more_marker(tool: str, next_cursor: str | None, what: str) -> dict[str, str]:
    """The fields a paged result adds when more remains: how to get the rest."""
    if next_cursor is None:
        return {}
    return {"more": f"more {what} follow: call {tool} again with the same arguments and cursor={next_cursor!r}"}


SecretAttachList = Annotated[
    list[str] | None,
    Field(
        description="Secrets of the host's store to attach, 'NAME' or 'NAME:MODE' (env or file): only those the "
        "server's operator allowed. Processes then ask for them with secret_env/secret_files; you never see a value."
    ),
]
SecretUseList = Annotated[
    list[str] | None,
    Field(
        description="Secrets attached to the workspace that this process alone gets: 'NAME' (in variable NAME) or "
        "'NAME=VAR'. You never see a value: outputs show [redacted:NAME]."
    ),
]
SecretFileList = Annotated[
    list[str] | None,
    Field(
        description="Attached secrets this process gets as 0400 files on a tmpfs (removed when it ends): 'NAME' "
        "(path in ROOST_SECRET_FILE_NAME), 'NAME=VAR', or 'NAME=/dev/shm/file' (a new file on a tmpfs outside "
        "/workspace)."
    ),
]


def secret_names(entries: Iterable[str] | None, separator: str) -> list[str]:
    """The names in `NAME[<separator>...]` entries."""
    return [str(entry).partition(separator)[0] for entry in entries or ()]
