"""`roost mcp config CLIENT`: the MCP client config that starts roost's server, printed or installed.

Printed by default. With `--install` the entry is merged into the client's
project file under `--dir` (default: here): the diff is shown first, and the
file is written only when the user says yes at the prompt, or passed `--yes`
(without a terminal to ask at, nothing is written without it). The file is
replaced whole (written beside it, then renamed), keeping its mode.

Imports: cli siblings, errors and the standard library.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shutil
import sys
import tempfile
from pathlib import Path

from roost.cli.mcp_clients import check_client, merged, server_entry, snippet
from roost.cli.output import EXIT_FAILURE, emit_json
from roost.errors import InvalidArgument, StorageError


def mcp_config(args: argparse.Namespace) -> int:
    """Raises: InvalidArgument: an unknown client, an unreadable config file, or no way to ask."""
    client = check_client(args.client)
    argv = server_argv(args)
    path = Path(args.dir).absolute() / client.project_file
    if args.json:
        emit_json({"client": client.name, "file": str(path), "entry": server_entry(client, argv)})
        return 0
    if not args.install:
        sys.stdout.write(snippet(client, argv))
        return 0
    existing = path.read_text() if path.exists() else ""
    updated = merged(client, existing, argv)
    if updated == existing:
        print(f"{path} already starts roost this way")
        return 0
    sys.stdout.writelines(
        difflib.unified_diff(existing.splitlines(True), updated.splitlines(True), str(path), str(path))
    )
    if not args.yes and not _confirmed(path):
        print(f"{path} left as it was")
        return EXIT_FAILURE
    _replace(path, updated)
    print(f"wrote {path}; {client.name} reads it there (user-wide: {client.user_file})")
    return 0


def server_argv(args: argparse.Namespace) -> list[str]:
    """The command line a client runs: `roost mcp serve` and the options given, paths made absolute."""
    line = [*_roost_program(), "mcp", "serve", "--profile", args.profile]
    for root in args.allow_roots or ():
        line += ["--allow-root", os.path.abspath(root)]
    for name in args.allow_secrets or ():
        line += ["--allow-secret", name]
    if args.backend:
        line += ["--backend", args.backend]
    if getattr(args, "home", None):
        line += ["--home", os.path.abspath(os.path.expanduser(args.home))]
    return line


def _roost_program() -> list[str]:
    """This installation's `roost` script (clients start it from anywhere), else its interpreter."""
    beside = Path(sys.executable).parent / "roost"
    if os.access(beside, os.X_OK):
        return [str(beside)]
    found = shutil.which("roost")
    return [os.path.abspath(found)] if found else [sys.executable, "-P", "-m", "roost"]


def _confirmed(path: Path) -> bool:
    """Raises: InvalidArgument: no terminal to ask at."""
    if not sys.stdin.isatty():
        raise InvalidArgument(
            f"not writing {path} without asking, and there is no terminal to ask at",
            hint="pass --yes to write it as shown",
        )
    return input(f"write {path}? [y/N] ").strip().lower() in ("y", "yes")


def _replace(path: Path, text: str) -> None:
    """Raises: StorageError: the file cannot be written."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
        fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.chmod(temporary, mode)
            os.replace(temporary, path)
        except BaseException:
            os.unlink(temporary)
            raise
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror}", hint="check the directory's permissions") from None
