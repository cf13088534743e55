"""The exec operation: run one command to completion, streaming its output.

The command gets its own session and process group, so a timeout or a
cancel kills everything it started. Output is sent as DATA frames on the
`stdout`/`stderr` channels as it arrives, up to `max_output_bytes` per
stream; what is beyond is counted, not sent, and flagged as truncated.
Processes left holding the output pipes after the command exits are killed
after a short grace: background work belongs in services, not execs.

Imports: protocol, the request core, the agent's `secret_files`, the agent's `fs` and `system` layers and the standard library only.
"""

from __future__ import annotations

import fcntl
import os
import selectors
import signal
import subprocess
import threading
import time

from roost.agent.context import HandlerResult, RequestContext, command_argv
from roost.agent.fs.dirfd import fd_path
from roost.agent.secret_files import ProcessSecrets
from roost.agent.state import AgentState, Handler
from roost.agent.system.processes import OsProcesses, exit_status
from roost.protocol import Code, Op, OpError
from roost.protocol.ops.execs import ExecArgs, ExecOutcome

PIPE_SIZE = 1024 * 1024
READ_SIZE = 1024 * 1024
# After the command exits, how long descendants may keep its pipes open.
LINGER_SECONDS = 0.25


def _grow_pipe(fd: int) -> None:
    try:
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
    except (OSError, AttributeError):
        pass  # a smaller pipe only costs throughput


def _feed_stdin(proc: subprocess.Popen[bytes], ctx: RequestContext) -> None:
    assert proc.stdin is not None
    try:
        for chunk in ctx.upload():
            proc.stdin.write(chunk)
        proc.stdin.close()
    except (BrokenPipeError, OSError, OpError):
        pass  # the command stopped reading; its exit status tells the story
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass


class _OutputPump:
    """Reads both output pipes, forwarding up to a cap and counting the rest."""

    def __init__(self, proc: subprocess.Popen[bytes], ctx: RequestContext, cap: int | None) -> None:
        self._ctx = ctx
        self._cap = cap
        # poll(2) rather than epoll: two descriptors, and no epoll instance to make and close per exec.
        self._selector = selectors.PollSelector()
        self.totals = {"stdout": 0, "stderr": 0}
        self.sent = {"stdout": 0, "stderr": 0}
        for name, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            assert pipe is not None
            _grow_pipe(pipe.fileno())
            self._selector.register(pipe.fileno(), selectors.EVENT_READ, name)

    @property
    def open(self) -> bool:
        return bool(self._selector.get_map())

    def pump(self, timeout: float) -> bool:
        """Forward what the pipes hold, waiting up to `timeout` for some; True if a pipe closed."""
        closed = False
        for key, _ in self._selector.select(timeout):
            fd = int(key.fd)
            data = os.read(fd, READ_SIZE)
            if not data:
                self._selector.unregister(fd)
                closed = True
                continue
            name = str(key.data)
            self.totals[name] += len(data)
            room = len(data) if self._cap is None else max(0, self._cap - self.sent[name])
            if room:
                piece = data[:room]
                self.sent[name] += len(piece)
                self._ctx.send(name, piece)
        return closed

    def close(self) -> None:
        for key in list(self._selector.get_map().values()):
            self._selector.unregister(key.fd)
        self._selector.close()


def run_exec(agent: AgentState, args: ExecArgs, ctx: RequestContext) -> HandlerResult:
    argv = command_argv(args.argv, args.command)
    env = dict(agent.base_env)
    env.update(args.env)
    wants_stdin = ctx.has_upload or bool(ctx.body)
    granted = ProcessSecrets(args.secrets, workspace_root=agent.paths.root)
    try:
        return _run(agent, args, ctx, argv, granted.merged(env), wants_stdin)
    finally:
        granted.remove()  # the command and what it started are gone: so are its secret files


def _run(
    agent: AgentState, args: ExecArgs, ctx: RequestContext, argv: list[str], env: dict[str, str], wants_stdin: bool
) -> HandlerResult:
    started = time.monotonic()
    try:
        with agent.paths.directory(args.cwd) as cwd:
            proc = agent.processes.spawn(
                argv,
                fd_path(cwd.fd),  # the directory that was checked, not whatever its path names by now
                env,
                stdin=subprocess.PIPE if wants_stdin else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
    except FileNotFoundError:
        raise OpError(
            Code.COMMAND_NOT_FOUND,
            f"command not found: {argv[0]}",
            hint="check the spelling, or install it in the workspace",
        ) from None
    except PermissionError:
        raise OpError(Code.PERMISSION_DENIED, f"permission denied: {argv[0]}", hint="is it executable?") from None
    except OSError as exc:
        raise OpError(Code.INVALID_ARGUMENT, f"cannot run {argv[0]}: {exc.strerror}") from None

    feeder = None
    if wants_stdin:
        feeder = threading.Thread(target=_feed_stdin, args=(proc, ctx), daemon=True)
        feeder.start()
    outcome = _supervise(agent.processes, proc, ctx, args.max_output_bytes, args.timeout, started)
    if feeder is not None:
        feeder.join(timeout=1.0)
    return HandlerResult(outcome)


def _supervise(
    processes: OsProcesses,
    proc: subprocess.Popen[bytes],
    ctx: RequestContext,
    cap: int | None,
    timeout: float | None,
    started: float,
) -> ExecOutcome:
    pgid = proc.pid  # its own session's leader: the group is everything it started
    pump = _OutputPump(proc, ctx, cap)
    deadline = None if timeout is None else started + timeout
    timed_out = cancelled = False
    linger_until: float | None = None
    # Whether it exited is asked only after a wait on its pipes that closed neither: a command that
    # ends closes them both as it goes, and asking in between costs a wait and a look at /proc.
    pipe_closed = True
    try:
        while pump.open:
            now = time.monotonic()
            if ctx.cancelled.is_set() and not cancelled:
                cancelled = True
                processes.signal_group(pgid, signal.SIGKILL)
            if deadline is not None and now >= deadline and not timed_out:
                timed_out = True
                processes.signal_group(pgid, signal.SIGKILL)
            if linger_until is None and not pipe_closed and processes.exited(proc):
                linger_until = now + LINGER_SECONDS
            if linger_until is not None and now >= linger_until:
                processes.signal_group(pgid, signal.SIGKILL)  # descendants still hold the pipes
                break
            wait = 0.05 if linger_until is None else max(0.0, min(0.05, linger_until - now))
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - now))
            try:
                pipe_closed = pump.pump(wait)
            except (OpError, OSError):  # host cancelled or went away while we were sending
                cancelled = True
                processes.signal_group(pgid, signal.SIGKILL)
                break
    finally:
        pump.close()
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
    returncode = proc.wait()
    if ctx.cancelled.is_set() or cancelled:
        raise OpError(Code.CANCELLED, "exec cancelled by the host")
    exit_code, sig = exit_status(returncode)
    return ExecOutcome(
        exit_code=exit_code,
        signal=sig,
        timed_out=timed_out,
        duration_ms=round((time.monotonic() - started) * 1000, 3),
        stdout_bytes=pump.totals["stdout"],
        stderr_bytes=pump.totals["stderr"],
        stdout_truncated=pump.sent["stdout"] < pump.totals["stdout"],
        stderr_truncated=pump.sent["stderr"] < pump.totals["stderr"],
    )


# The ops this module serves (the op table routes them here).
HANDLERS: dict[str, Handler] = {
    Op.EXEC: run_exec,
}
