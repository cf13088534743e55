"""`roost workspace service start|list|status|logs|stop`.

Imports: cli siblings, client, models, errors and the standard library.
"""

from __future__ import annotations

import argparse
import sys
import threading

from roost.cli.commands.common import command_from, key_values, sdk
from roost.cli.commands.network import port_text
from roost.cli.output import EXIT_FAILURE, emit_error, emit_json, shown, table
from roost.client import Readiness
from roost.errors import RoostError
from roost.models import ServiceInfo


def _describe(service: ServiceInfo) -> str:
    rows = [
        ("name", service.name),
        ("state", service.state + (f" ({service.reason})" if service.reason else "")),
        ("command", " ".join(service.command)),
        ("pid", str(service.pid) if service.pid else "-"),
        ("exit", "-" if service.exit_code is None else str(service.exit_code)),
        ("probe", f"{service.probe['kind']} {service.probe['target']}" if service.probe else "none"),
        ("restart", f"{service.restart} ({service.restarts} restarts)"),
        ("started", service.started_at or "-"),
        ("ready", service.ready_at or "-"),
        ("stopped", service.stopped_at or "-"),
    ]
    lines = [f"{key:<8} {shown(value)}" for key, value in rows]
    return "\n".join(lines + [f"port     {port_text(port)}" for port in service.ports])


def service_start(args: argparse.Namespace) -> int:
    ready = Readiness(
        file=args.ready_file,
        tcp=args.ready_tcp,
        http=args.ready_http,
        command=args.ready_command,
        timeout_s=args.ready_timeout,
        interval_ms=args.ready_interval_ms,
    )
    service = (
        sdk(args)
        .workspace(args.workspace)
        .services.start(
            args.name,
            command_from(args),
            cwd=args.cwd,
            env=key_values(args.env, "--env"),
            ready=ready,
            restart=args.restart,
            publish=args.publish,
            secret_env=args.secret_env,
            secret_files=args.secret_file,
        )
    )
    if args.json:
        emit_json(service.to_dict())
    elif service.state != "failed":
        print(f"{shown(service.name)} is {service.state} (pid {service.pid})")
        for port in service.ports:
            print(f"  published {port_text(port)}")
    if service.state == "failed":
        if not args.json and service.log_tail:
            sys.stderr.write(f"--- last output of {shown(service.name)} ---\n{service.log_tail}")
            if not service.log_tail.endswith("\n"):
                sys.stderr.write("\n")
        failure = RoostError(
            f"service {service.name} failed: {service.reason}",
            code="service_failed",
            hint=f"see `roost workspace service logs {args.workspace} {service.name}`",
        )
        emit_error(failure, as_json=args.json)
        return EXIT_FAILURE
    return 0


def service_list(args: argparse.Namespace) -> int:
    services = sdk(args).workspace(args.workspace).services.list()
    if args.json:
        emit_json({"services": [s.to_dict() for s in services]})
    elif not services:
        print("no services (start one with `roost workspace service start WS NAME -- CMD`)")
    else:
        rows = [
            [
                s.name,
                s.state,
                str(s.pid or "-"),
                "-" if s.exit_code is None else str(s.exit_code),
                str(s.restarts),
                " ".join(s.command)[:50],
            ]
            for s in services
        ]
        print(table(rows, ["NAME", "STATE", "PID", "EXIT", "RESTARTS", "COMMAND"]))
    return 0


def service_status(args: argparse.Namespace) -> int:
    service = sdk(args).workspace(args.workspace).services.status(args.name)
    if args.json:
        emit_json(service.to_dict())
    else:
        print(_describe(service))
    return 0


def service_logs(args: argparse.Namespace) -> int:
    services = sdk(args).workspace(args.workspace).services
    if args.follow:
        out = sys.stdout.buffer

        def show(data: bytes) -> None:
            out.write(data)
            out.flush()

        stop = threading.Event()
        try:
            services.follow(args.name, show, stop, stream=args.stream, tail=args.tail)
        except KeyboardInterrupt:
            stop.set()
        return 0
    text = services.logs(args.name, stream=args.stream, tail=args.tail)
    if args.json:
        emit_json({"name": args.name, "stream": args.stream, "log": text})
    else:
        sys.stdout.write(text)
    return 0


def service_stop(args: argparse.Namespace) -> int:
    service = sdk(args).workspace(args.workspace).services.stop(args.name, timeout=args.timeout)
    if args.json:
        emit_json(service.to_dict())
    else:
        print(f"{shown(service.name)} is {service.state}")
    return 0
