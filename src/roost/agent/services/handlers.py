"""Agent operations on services: start, list, status, logs, stop.

Imports: the request core, the agent's `secret_files`, this package, protocol and the standard library only.
"""

from __future__ import annotations

import time

from roost.agent.context import HandlerResult, RequestContext, command_argv
from roost.agent.record_page import RecordPage
from roost.agent.secret_files import ProcessSecrets
from roost.agent.services.logs import read_from, size, tail
from roost.agent.services.model import ACTIVE, FAILED, ProbeSpec, ServiceRecord, ServiceSpec
from roost.agent.services.supervisor import ServiceSupervisor
from roost.agent.state import AgentState, Handler
from roost.protocol import Op
from roost.protocol.messages import CH_DATA
from roost.protocol.ops.services import (
    ServiceListArgs,
    ServiceListResult,
    ServiceLogsArgs,
    ServiceLogsResult,
    ServiceStartArgs,
    ServiceState,
    ServiceStatusArgs,
    ServiceStopArgs,
)

FOLLOW_POLL_S = 0.1
DEFAULT_STOP_GRACE_S = 10.0


def supervisor(agent: AgentState) -> ServiceSupervisor:
    return agent.part(
        "services", lambda: ServiceSupervisor(agent.state_dir, agent.paths, agent.base_env, agent.processes)
    )


def _with_log(agent: AgentState, record: ServiceRecord) -> ServiceState:
    """A service's state, with the end of its log when it failed."""
    if record.state != FAILED:
        return record.to_state()
    run = supervisor(agent).get(record.name)
    return record.to_state(log_tail=supervisor(agent).failure_log(run))


def start_service(agent: AgentState, args: ServiceStartArgs, ctx: RequestContext) -> HandlerResult:
    with agent.paths.directory(args.cwd) as found:
        cwd = agent.paths.to_guest(found.rel)  # opened again, the same safe way, at every (re)start
    granted = ProcessSecrets(
        args.secrets, workspace_root=agent.paths.root
    )  # kept for restarts, removed when the service is over
    spec = ServiceSpec(
        name=args.name,
        argv=command_argv(args.argv, args.command),
        cwd=cwd,
        env=granted.merged(dict(args.env)),
        probe=ProbeSpec.from_message(args.ready),
        restart=args.restart,
    )
    return HandlerResult(_with_log(agent, supervisor(agent).start(spec, granted)))


def list_services(agent: AgentState, args: ServiceListArgs, ctx: RequestContext) -> HandlerResult:
    """Stream every service's record, by name."""
    page = RecordPage(ctx, args)
    for record in supervisor(agent).records():
        key = (record.name.encode(),)
        if not page.seen(key) and not page.add(key, record.to_state()):
            break
    return HandlerResult(page.summary(ServiceListResult))


def service_status(agent: AgentState, args: ServiceStatusArgs, ctx: RequestContext) -> HandlerResult:
    return HandlerResult(_with_log(agent, supervisor(agent).get(args.name).record))


def service_logs(agent: AgentState, args: ServiceLogsArgs, ctx: RequestContext) -> HandlerResult:
    """Tail a stream; with `follow`, keep streaming new output until cancelled or the service ends."""
    run = supervisor(agent).get(args.name)
    offset = size(run.directory, args.stream)
    # On the data channel, not as the RESPONSE body: a log kept with its rotated part can pass one body's limit.
    ctx.send(CH_DATA, tail(run.directory, args.stream, args.tail))
    while args.follow and not ctx.cancelled.is_set():
        fresh, offset = read_from(run.directory, args.stream, offset)
        if fresh:
            ctx.send(CH_DATA, fresh)
        elif run.record.state not in ACTIVE and run.done.is_set():
            break
        else:
            time.sleep(FOLLOW_POLL_S)
    return HandlerResult(ServiceLogsResult(name=run.record.name, stream=args.stream, state=run.record.state))


def stop_service(agent: AgentState, args: ServiceStopArgs, ctx: RequestContext) -> HandlerResult:
    grace = DEFAULT_STOP_GRACE_S if args.timeout is None else args.timeout
    return HandlerResult(supervisor(agent).stop(args.name, grace).to_state())


# The ops this module serves (the op table routes them here).
HANDLERS: dict[str, Handler] = {
    Op.SERVICE_START: start_service,
    Op.SERVICE_LIST: list_services,
    Op.SERVICE_STATUS: service_status,
    Op.SERVICE_LOGS: service_logs,
    Op.SERVICE_STOP: stop_service,
}
