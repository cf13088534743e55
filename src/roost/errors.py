"""The one error tree of roost.

Every failure a user can see is a `RoostError` with a stable `code` string and
a one-line `hint`. Errors are translated once, where they enter: OS and VMM
failures become `BackendError`, subprocess failures while building images
become `ImageError`, error frames from the guest agent become `AgentError`.
Front ends map the tree to exit codes (CLI) or tool errors (MCP) and never
look at anything else.

Some errors also carry a `Remedy`: the one roost call that gets the user
out of them, named once so each face can phrase it in its own terms (a
command line for the CLI, a method call for the SDK, a tool call for MCP;
an error's own `hint` is the SDK's, which the CLI and MCP replace with theirs). A plain `hint`
names no face's spelling: no command line, no `--flag`, no tool (a face
that has a better one of its own puts it in, by code).

This module imports nothing from roost.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from typing import Any, Self

__all__ = [
    "CHECK_WORKSPACE",
    "AgentError",
    "BackendError",
    "ConflictError",
    "ImageError",
    "InvalidArgument",
    "NetworkError",
    "NotFound",
    "PortInUse",
    "ProtocolError",
    "Remedy",
    "RoostError",
    "SecretError",
    "SecretNotFound",
    "StorageError",
    "WorkspaceError",
    "error_from_code",
    "is_disk_full",
    "operator_remedy",
]

# errno values that mean "the disk (or the user's quota on it) is full".
_DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException) -> bool:
    """True for an OSError saying there is no space (or no quota) left."""
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL_ERRNOS


@dataclass(frozen=True)
class Remedy:
    """The roost operation that fixes an error, phrased by each face its own way.

    `operation` is named as its MCP tool is (`workspace_restart`, `shell_list`,
    `env_list`); the CLI spells it in words, operations on a workspace under
    `roost workspace` (`roost workspace restart WS`, `roost workspace shell
    list WS`, `roost env list`). `workspace` is the workspace it acts on (None:
    none, or not known where the error is raised). `flags` are boolean options
    that must be set (`force` -> `--force` / `force=true`).

    An `operator` remedy is one only whoever runs roost on the host can carry
    out, which no MCP tool does (`doctor`, `env_build`, `runtime_install`): a
    model is told to ask for it. `arguments` are its command line's own
    (`env_build` takes the environment: `roost env build debian:12`).
    """

    summary: str
    operation: str
    workspace: str | None = None
    flags: tuple[str, ...] = ()
    operator: bool = False
    arguments: tuple[str, ...] = ()

    def command(self) -> str:
        """The command line that carries it out: `roost workspace restart ws-1`."""
        words = ["roost", *self.operation.split("_")]
        if self.workspace is not None:
            if words[1] != "workspace":
                words.insert(1, "workspace")
            words.append(self.workspace)
        words += [*self.arguments, *(f"--{flag}" for flag in self.flags)]
        return " ".join(words)

    def as_command(self) -> str:
        """For people at a shell (CLI and SDK): `summary: `roost workspace restart ws-1``."""
        return f"{self.summary}: `{self.command()}`"

    def sdk_method(self) -> tuple[str, str]:
        """Where the SDK has it: (`roost` or `workspace`, the attribute path), e.g. ("workspace", "shells.list")."""
        if self.operation in _SDK_ROOST_METHODS:
            return "roost", _SDK_ROOST_METHODS[self.operation]
        rest = self.operation.removeprefix("workspace_")
        group, _, verb = rest.partition("_")
        if not verb:
            return "workspace", _SDK_WORKSPACE_RENAMED.get(rest, rest)
        return "workspace", f"{group if group == 'network' else group + 's'}.{verb}"

    def method_call(self) -> str:
        """The SDK call that carries it out: `roost.workspace("ws-1").restart()`."""
        owner, path = self.sdk_method()
        arguments = _sdk_arguments(self.arguments)
        arguments += [f"{flag}=True" for flag in self.flags]
        call = f"{path}({', '.join(arguments)})"
        if owner == "roost":
            return f"roost.{call}"
        return f"roost.workspace({self.workspace or 'WORKSPACE'!r}).{call}"

    def as_method_call(self) -> str:
        """For a program using the SDK: `summary: `roost.workspace("ws-1").restart()``."""
        return f"{self.summary}: `{self.method_call()}`"

    def as_tool_call(self) -> str:
        """For a model talking MCP: `summary: call workspace_restart with workspace="ws-1"`."""
        if self.operator:
            return f"{self.summary}: ask whoever runs the MCP server to run `{self.command()}` on its host"
        arguments = [f'workspace="{self.workspace}"'] if self.workspace is not None else []
        arguments += [f"{flag}=true" for flag in self.flags]
        arguments += [f'{key}=["{value}"]' for key, value in _options(self.arguments)]
        return f"{self.summary}: call {self.operation}" + (f" with {', '.join(arguments)}" if arguments else "")


# SDK spellings the operation's name does not give (`<group>_<verb>` is `workspace.<group>s.<verb>`,
# `workspace_<verb>` is `workspace.<verb>`): calls on the `Roost` client, and one renamed method.
_SDK_ROOST_METHODS = {
    "workspace_list": "list_workspaces",
    "env_list": "envs",
    "env_build": "build_env",
    "env_create": "create_env",
    "env_inspect": "inspect_env",
    "env_remove": "remove_env",
    "env_pull": "pull_env",
    "env_push": "push_env",
    "env_prune": "prune_envs",
    "runtime_install": "install_runtime",
    "doctor": "doctor",
    "secret_set": "secrets.set",
}
_SDK_WORKSPACE_RENAMED = {"status": "info"}


def _options(arguments: tuple[str, ...]) -> list[tuple[str, str]]:
    """The options with a value in a command line's arguments: `--publish 0:8000` -> ("publish", "0:8000")."""
    return [
        (word[2:].replace("-", "_"), arguments[index + 1] if index + 1 < len(arguments) else "")
        for index, word in enumerate(arguments)
        if word.startswith("--")
    ]


def _sdk_arguments(arguments: tuple[str, ...]) -> list[str]:
    """A command line's arguments as SDK call arguments: `debian:12` -> `'debian:12'`, and an option with
    its value (`--publish 0:8000`) a keyword taking a list, as the SDK's (and the tools') repeatable options do."""
    values = {index + 1 for index, word in enumerate(arguments) if word.startswith("--")}
    positional = [
        repr(word) for index, word in enumerate(arguments) if not word.startswith("--") and index not in values
    ]
    return positional + [f"{key}=[{value!r}]" for key, value in _options(arguments)]


# An agent that cannot be reached, where the workspace is not known (the orchestration layer,
# which knows it, points such errors at restarting that workspace when that is the way out).
CHECK_WORKSPACE = Remedy("check the workspace's state; it may need a restart", "workspace_status")


def operator_remedy(summary: str, operation: str, *arguments: str) -> Remedy:
    """A remedy only the host's operator can carry out (see `Remedy.operator`)."""
    return Remedy(summary, operation, operator=True, arguments=arguments)


class RoostError(Exception):
    """Base of every error roost raises on purpose.

    `code` is stable across releases and safe to branch on; `message` is for
    people; `hint` says what to do next, in one line (a `remedy` in it is
    spelt as an SDK call; the CLI and MCP faces spell it their own way).
    """

    code: str = "internal"
    default_hint: str = ""

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        hint: str | None = None,
        details: dict[str, Any] | None = None,
        remedy: Remedy | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.remedy = remedy
        if hint is None:
            hint = remedy.as_method_call() if remedy is not None else self.default_hint
        self.hint = hint
        self.details: dict[str, Any] = dict(details or {})

    def with_remedy(self, remedy: Remedy) -> Self:
        """Point this error at the call that fixes it; for the layer that knows which workspace failed."""
        self.remedy = remedy
        self.hint = remedy.as_method_call()
        return self

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"code": self.code, "message": self.message, "hint": self.hint}
        if self.details:
            body["details"] = self.details
        return body

    def __str__(self) -> str:
        return self.message


class InvalidArgument(RoostError):
    """The caller asked for something malformed (bad name, bad option value)."""

    code = "invalid_argument"


class NotFound(RoostError):
    """A named thing (workspace, env, path, seed) does not exist."""

    code = "not_found"


class ConflictError(RoostError):
    """The request clashes with current state (name taken, workspace busy)."""

    code = "conflict"


class WorkspaceError(RoostError):
    """A workspace record is unusable (corrupt, wrong state)."""

    code = "workspace_error"


class BackendError(RoostError):
    """The isolation layer (process, sandbox, VMM) failed or is unavailable."""

    code = "backend_error"


class ImageError(RoostError):
    """Building, pulling or verifying an environment image failed."""

    code = "image_error"


class StorageError(RoostError):
    """roost cannot keep its files: a full disk (its state under ROOST_HOME, or a workspace's
    own files), a state directory it cannot use, or files a delete could not remove."""

    code = "storage_error"


class PortInUse(RoostError):
    """A port to publish is already bound on the host."""

    code = "port_in_use"
    default_hint = "choose another host port, or leave it out to take any free one"


class NetworkError(RoostError):
    """Workspace networking cannot be set up here, or its gateway failed."""

    code = "network_unavailable"
    default_hint = "run roost as root or where nftables with TPROXY is available, or use the off policy"


class SecretNotFound(NotFound):
    """No secret of that name in the host's store (or none attached to the workspace)."""

    code = "secret_not_found"


class SecretError(InvalidArgument):
    """A secret cannot be used as asked: a mode the secret or the backend does not serve, one not attached,
    or one an MCP server was not allowed to hand out."""

    code = "secret_mode_unsupported"


class ProtocolError(RoostError):
    """The byte stream to the agent carried something that is not our protocol."""

    code = "protocol_error"
    default_hint = "the agent and roost may be different versions; recreate the workspace"


class AgentError(RoostError):
    """The guest agent refused or failed an operation, or went away mid-call."""

    code = "agent_error"


# Codes the guest agent sends, mapped to the host class that carries them.
_AGENT_CODE_CLASSES: dict[str, type[RoostError]] = {
    "invalid_argument": InvalidArgument,
    "path_not_found": NotFound,
    "path_outside_workspace": InvalidArgument,
    "path_excluded": InvalidArgument,
    "read_too_large": InvalidArgument,
    "archive_rejected": InvalidArgument,
    "patch_rejected": ConflictError,
    "not_a_directory": InvalidArgument,
    "is_a_directory": InvalidArgument,
    "directory_not_empty": ConflictError,
    "shell_not_found": NotFound,
    "shell_not_running": ConflictError,
    "service_not_found": NotFound,
    "service_exists": ConflictError,
    "snapshot_not_found": NotFound,
    "snapshot_exists": ConflictError,
    "disk_full": StorageError,
    "frame_too_large": ProtocolError,
    "protocol_error": ProtocolError,
    "unsupported_version": ProtocolError,
    "unknown_op": ProtocolError,
}


# Hints for agent errors that arrive without one.
_DEFAULT_HINTS: dict[str, str] = {
    "path_not_found": "check the path: list the directory it should be in",
    "not_a_directory": "a parent of the path is a file",
    "is_a_directory": "give a file path, or list the directory instead",
    "directory_not_empty": "delete it recursively to remove its contents too",
    "permission_denied": "check the file's mode (stat it)",
    "cancelled": "the call was stopped before it finished",
    "internal": "this is a bug in the roost agent; please report it",
    "unknown_op": "roost and the workspace agent are different versions; recreate the workspace",
    # Not a version mismatch: one argument or result was too large for a single frame.
    "frame_too_large": (
        "a frame holds a 64 KiB header and a 16 MiB body: pass large data as stdin or a file in the workspace; "
        "results that grow with the workspace stream, so a result too large for one frame is a bug to report"
    ),
}


def error_from_code(
    code: str, message: str, hint: str | None = None, details: dict[str, Any] | None = None
) -> RoostError:
    """Build the host-side error for an error frame sent by the agent."""
    cls = _AGENT_CODE_CLASSES.get(code, AgentError)
    return cls(message, code=code, hint=hint or _DEFAULT_HINTS.get(code), details=details)
