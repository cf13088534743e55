"""Agent operations on services: start, list, status, logs, stop.

Imports: the request core, this package, protocol and the standard library only.
"""

from __future__ import annotations

import time
from typing import Any

from roost.agent.context import HandlerResult, RequestContext
from roost.agent.record_page import RecordPage
from roost.agent.services.logs import STREAMS, read_from, size, tail
from roost.agent.services.model import ACTIVE, FAILED, RESTART_POLICIES, ProbeSpec, ServiceRecord, ServiceSpec
from roost.agent.services.supervisor import ServiceSupervisor
from roost.agent.state import AgentState, Handler
from roost.protocol import Code, Op, OpError
from roost.protocol.messages import CH_DATA
from roost.protocol.names import to_text

FOLLOW_POLL_S = 0.1


def supervisor(agent: AgentState) -> ServiceSupervisor:
    return agent.part(
        "services", lambda: ServiceSupervisor(agent.state_dir, agent.paths, agent.base_env, agent.processes)
    )


def _wire(record: ServiceRecord) -> dict[str, Any]:
    """A service's record as it is sent: its cwd in the text form of names."""
    return {**record.to_dict(), "cwd": to_text(record.cwd)}


def _with_log(agent: AgentState, record: ServiceRecord) -> dict[str, Any]:
    result = _wire(record)
    if record.state == FAILED:
        run = supervisor(agent).get(record.name)
        result["log_tail"] = supervisor(agent).failure_log(run)
    return result


def start_service(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    name = ServiceSpec.check_name(ctx.args.get("name"))
    with agent.paths.directory(ctx.arg_path("cwd", "/workspace")) as found:
        cwd = agent.paths.to_guest(found.rel)  # opened again, the same safe way, at every (re)start
    restart = ctx.arg_str("restart", "no")
    if restart not in RESTART_POLICIES:
        raise OpError(Code.INVALID_ARGUMENT, f"restart must be one of {', '.join(RESTART_POLICIES)}")
    spec = ServiceSpec(
        name=name,
        argv=ctx.arg_command(),
        cwd=cwd,
        env=ctx.arg_str_map("env"),
        probe=ProbeSpec.from_args(ctx.args.get("ready")),
        restart=restart,
    )
    return HandlerResult(_with_log(agent, supervisor(agent).start(spec)))


def list_services(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    """Stream every service's record, by name."""
    page = RecordPage(ctx)
    for record in supervisor(agent).records():
        key = (record.name.encode(),)
        if not page.seen(key) and not page.add(key, _wire(record)):
            break
    return HandlerResult(page.summary())


def service_status(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    run = supervisor(agent).get(ctx.arg_str("name"))
    return HandlerResult(_with_log(agent, run.record))


def service_logs(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    """Tail a stream; with `follow`, keep streaming new output until cancelled or the service ends."""
    run = supervisor(agent).get(ctx.arg_str("name"))
    stream = ctx.arg_str("stream", "both")
    if stream not in STREAMS:
        raise OpError(Code.INVALID_ARGUMENT, f"stream must be one of {', '.join(STREAMS)}")
    lines = ctx.args.get("tail")
    if lines is not None and (isinstance(lines, bool) or not isinstance(lines, int) or lines < 0):
        raise OpError(Code.INVALID_ARGUMENT, "tail must be a whole number of lines")
    offset = size(run.directory, stream)
    # On the data channel, not as the RESPONSE body: a log kept with its rotated part can pass one body's limit.
    ctx.send(CH_DATA, tail(run.directory, stream, lines))
    if not ctx.arg_bool("follow", False):
        return HandlerResult({"name": run.record.name, "stream": stream, "state": run.record.state})
    while not ctx.cancelled.is_set():
        fresh, offset = read_from(run.directory, stream, offset)
        if fresh:
            ctx.send(CH_DATA, fresh)
        elif run.record.state not in ACTIVE and run.done.is_set():
            break
        else:
            time.sleep(FOLLOW_POLL_S)
    return HandlerResult({"name": run.record.name, "stream": stream, "state": run.record.state})


def stop_service(agent: AgentState, ctx: RequestContext) -> HandlerResult:
    grace = ctx.arg_opt_float("timeout")
    record = supervisor(agent).stop(ctx.arg_str("name"), 10.0 if grace is None else grace)
    return HandlerResult(_wire(record))


# The ops this module serves (the op table routes them here).
HANDLERS: dict[str, Handler] = {
    Op.SERVICE_START: start_service,
    Op.SERVICE_LIST: list_services,
    Op.SERVICE_STATUS: service_status,
    Op.SERVICE_LOGS: service_logs,
    Op.SERVICE_STOP: stop_service,
}
