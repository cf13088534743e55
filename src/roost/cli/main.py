"""`roost` entry point: parse, dispatch to one handler, map errors to exit codes.

`roost --version` answers before argparse or any of roost is imported.

Imports (lazily): cli siblings, errors, _version.
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    args_list = sys.argv[1:] if argv is None else argv
    if args_list in (["--version"], ["-V"]):
        from roost._version import __version__

        print(f"roost {__version__}")
        return 0
    return _dispatch(args_list)


def _dispatch(args_list: list[str]) -> int:
    import importlib

    from roost.cli.argv import normalize
    from roost.cli.output import EXIT_INTERRUPTED, EXIT_USAGE, emit_error
    from roost.cli.parser import UsageError, build_parser
    from roost.errors import InvalidArgument, RoostError

    parser = build_parser()
    normalized = normalize(parser, args_list)
    args_list = normalized.words
    try:
        args = _parse(parser, args_list)
        if normalized.json_above_leaf:
            args.json = True
    except UsageError as exc:
        as_json = normalized.json_above_leaf or "--json" in args_list[: _end_of_options(args_list)]
        if not as_json:
            sys.stderr.write(exc.usage)
        refused = InvalidArgument(f"{exc.prog}: {exc.message}", hint=f"see `{exc.prog} --help`")
        return emit_error(refused, as_json=as_json)
    if args.version:
        from roost._version import __version__

        print(f"roost {__version__}")
        return 0
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.parse_args([*args_list, "--help"])
        return EXIT_USAGE
    module_name, func_name = handler.split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    as_json = bool(getattr(args, "json", False))
    try:
        return int(func(args))
    except RoostError as exc:
        return emit_error(exc, as_json=as_json)
    except KeyboardInterrupt:
        sys.stderr.write("roost: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: say so plainly, keep the traceback for those who ask
        import os
        import traceback

        if os.environ.get("ROOST_DEBUG"):
            traceback.print_exc()
        internal = RoostError(
            f"internal error: {type(exc).__name__}: {exc}",
            code="internal",
            hint="this is a bug in roost; rerun with ROOST_DEBUG=1 for the traceback and report it",
        )
        return emit_error(internal, as_json=as_json)


def _end_of_options(args_list: list[str]) -> int:
    return args_list.index("--") if "--" in args_list else len(args_list)


def _parse(parser: argparse.ArgumentParser, args_list: list[str]) -> argparse.Namespace:
    """Parse, keeping everything after the first `--` as the command to run.

    Options may then follow the workspace (`exec WS --json -- cmd`) without
    being mistaken for the command's own arguments.
    """
    if "--" in args_list:
        split = args_list.index("--")
        head, tail = args_list[:split], args_list[split + 1 :]
        args = parser.parse_args(head)
        if hasattr(args, "argv"):
            args.argv = [*(args.argv or []), *tail]
            return args
    return parser.parse_args(args_list)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
