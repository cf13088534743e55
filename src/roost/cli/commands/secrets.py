"""`roost secret set|list|delete` (the host's store) and `roost workspace secret add|remove|list`.

A value is read from stdin, a host file or a variable of this process, and
never printed, echoed or put in an error; `list` shows names, modes, hosts
and when each was set.

Imports: cli siblings, errors, models and the standard library.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from roost.cli.commands.common import sdk
from roost.cli.output import emit_json, shown, table
from roost.errors import InvalidArgument, NotFound
from roost.models import AttachedSecret, SecretInfo


def _value(args: argparse.Namespace) -> bytes:
    """The value to store, from --from-file, --from-env or stdin (one trailing newline of a terminal line dropped)."""
    if args.from_env is not None:
        found = os.environb.get(os.fsencode(args.from_env))
        if found is None:
            raise NotFound(
                f"variable {args.from_env} is not set", code="host_variable_not_found", hint="export it first"
            )
        return found
    if args.from_file is not None:
        try:
            return Path(args.from_file).read_bytes()
        except FileNotFoundError:
            raise NotFound(
                f"host file {args.from_file!r} does not exist", code="host_file_not_found", hint="check the path"
            ) from None
        except OSError as exc:
            raise InvalidArgument(
                f"cannot read {args.from_file!r}: {exc.strerror}", hint="check its permissions"
            ) from None
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"value of {args.name}: ").encode()
    data = sys.stdin.buffer.read()
    return data[:-1] if data.endswith(b"\n") and data.count(b"\n") == 1 else data


def secret_set(args: argparse.Namespace) -> int:
    modes = args.mode or ("env", "file")
    info = sdk(args).secrets.set(args.name, _value(args), modes=modes, hosts=args.host, in_body=args.in_body)
    if args.json:
        emit_json(info.to_dict())
    else:
        print(shown(f"set {info.name} ({', '.join(info.modes)})"))
    return 0


def _secret_row(info: SecretInfo) -> list[str]:
    hosts = ",".join(info.hosts) + (" (headers and bodies)" if info.in_body else "")
    return [info.name, ",".join(info.modes), hosts or "-", info.set_at]


def secret_list(args: argparse.Namespace) -> int:
    found = sdk(args).secrets.list()
    if args.json:
        emit_json({"secrets": [info.to_dict() for info in found]})
    elif found:
        print(table([_secret_row(info) for info in found], ["NAME", "MODES", "HOSTS", "SET"]))
    else:
        print("no secrets")
    return 0


def secret_delete(args: argparse.Namespace) -> int:
    sdk(args).secrets.delete(args.name)
    if args.json:
        emit_json({"deleted": args.name})
    else:
        print(shown(f"deleted {args.name}"))
    return 0


def _attached(found: list[AttachedSecret], as_json: bool) -> int:
    if as_json:
        emit_json({"secrets": [secret.to_dict() for secret in found]})
    elif found:
        rows = [[s.name, ",".join(s.modes), s.placeholder or "-"] for s in found]
        print(table(rows, ["NAME", "MODES", "PLACEHOLDER"]))
    else:
        print("no secrets attached")
    return 0


def workspace_secret_add(args: argparse.Namespace) -> int:
    return _attached(sdk(args).workspace(args.workspace).secrets.add(*args.entries), args.json)


def workspace_secret_remove(args: argparse.Namespace) -> int:
    return _attached(sdk(args).workspace(args.workspace).secrets.remove(args.name), args.json)


def workspace_secret_list(args: argparse.Namespace) -> int:
    return _attached(sdk(args).workspace(args.workspace).secrets.list(), args.json)
