"""The service supervisor: start, probe, watch, restart and stop named services.

Each service runs in its own session (so its process group can be signalled
whole), with its output pumped into rotating logs by a watcher thread that
also notices when it exits and applies the restart policy. Every OS action
on processes goes through the agent's `OsProcesses`, so tests can substitute failures.

Imports: the agent's `fs` and `system` layers and `secret_files`, this package, protocol and the standard library only.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from roost.agent.fs.atomic_json import write_json
from roost.agent.fs.dirfd import fd_path
from roost.agent.fs.paths import WorkspacePaths
from roost.agent.secret_files import ProcessSecrets
from roost.agent.services.logs import ServiceLogs, tail
from roost.agent.services.model import (
    ACTIVE,
    EXITED,
    FAILED,
    READY,
    STARTING,
    STOPPED,
    ServiceRecord,
    ServiceSpec,
    restart_delay,
    should_restart,
)
from roost.agent.services.probes import attempt
from roost.agent.system.clock import now_iso
from roost.agent.system.processes import OsProcesses, exit_status
from roost.protocol import Code, OpError
from roost.protocol.redaction import StreamRedactor

LOG_LINES_ON_FAILURE = 20
NO_PROBE_GRACE_S = 0.05
READ_CHUNK = 65536


@dataclass
class _Run:
    spec: ServiceSpec
    record: ServiceRecord
    directory: str
    proc: subprocess.Popen[bytes] | None = None
    # Its secret files: kept (with the env-mode values in `spec.env`, in memory only) while a restart may
    # need them, removed once the service is over for good.
    granted: ProcessSecrets | None = None
    logs: ServiceLogs | None = None
    stopping: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class ServiceSupervisor:
    def __init__(
        self, state_dir: str, paths: WorkspacePaths, base_env: dict[str, str], processes: OsProcesses | None = None
    ) -> None:
        self._root = os.path.join(state_dir, "services")
        self._paths = paths
        self._base_env = base_env
        self._os = processes or OsProcesses()
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()
        self._adopt_previous()

    # -- records -------------------------------------------------------------
    def _save(self, run: _Run) -> None:
        write_json(os.path.join(run.directory, "record.json"), run.record.to_dict())

    def _move(self, run: _Run, state: str, *, only_from: tuple[str, ...] | None = None, **changes: Any) -> bool:
        """Change state (and fields) and persist; with `only_from`, only from those states."""
        with self._lock:
            if only_from is not None and run.record.state not in only_from:
                return False
            run.record = run.record.moved_to(state, **changes)
            self._save(run)
            return True

    def _amend(self, run: _Run, **changes: Any) -> None:
        with self._lock:
            run.record = dataclasses.replace(run.record, **changes)
            self._save(run)

    def _adopt_previous(self) -> None:
        """Records of an earlier agent: its active services were not supervised since; stop them."""
        if not os.path.isdir(self._root):
            return
        for name in sorted(os.listdir(self._root)):
            directory = os.path.join(self._root, name)
            try:
                with open(os.path.join(directory, "record.json")) as fh:
                    record = ServiceRecord.from_dict(json.load(fh))
            except (OSError, ValueError, TypeError):
                continue
            run = _Run(ServiceSpec(record.name, record.command, record.cwd), record, directory)
            if record.state in ACTIVE:
                if record.pid and self._os.leads_a_session(record.pid):
                    self._os.signal_group(record.pid, signal.SIGKILL)
                run.record = record.moved_to(STOPPED, stopped_at=now_iso(), reason="the agent restarted")
                self._save(run)
            run.done.set()
            self._runs[name] = run

    def records(self) -> list[ServiceRecord]:
        with self._lock:
            return sorted((r.record for r in self._runs.values()), key=lambda r: r.name)

    def get(self, name: str) -> _Run:
        with self._lock:
            run = self._runs.get(name)
        if run is None:
            raise OpError(Code.SERVICE_NOT_FOUND, f"no service {name!r}", hint="list services with `service list`")
        return run

    # -- starting ------------------------------------------------------------
    def start(self, spec: ServiceSpec, granted: ProcessSecrets | None = None) -> ServiceRecord:
        """Start and wait until ready (or failed); the record says which and why.

        `granted`: the service's secrets (their variables already in `spec.env`); removed when it is over.
        """
        try:
            return self._start(spec, granted)
        except BaseException:
            if granted is not None:
                granted.remove()
            raise

    def _start(self, spec: ServiceSpec, granted: ProcessSecrets | None) -> ServiceRecord:
        with self._lock:
            old = self._runs.get(spec.name)
            if old is not None and old.record.state in ACTIVE:
                raise OpError(
                    Code.SERVICE_EXISTS,
                    f"service {spec.name!r} is already {old.record.state}",
                    hint="stop it first, or pick another name",
                )
            directory = os.path.join(self._root, spec.name)
            os.makedirs(self._root, mode=0o700, exist_ok=True)  # makedirs gives only the leaf its mode
            os.makedirs(directory, mode=0o700, exist_ok=True)
            record = ServiceRecord(
                name=spec.name,
                command=spec.argv,
                cwd=spec.cwd,
                state=STARTING,
                restart=spec.restart,
                probe=None
                if spec.probe is None
                else {
                    "kind": spec.probe.kind,
                    "target": spec.probe.target,
                    "timeout_s": spec.probe.timeout_s,
                    "interval_s": spec.probe.interval_s,
                },
            )
            if old is not None and old.logs is not None:
                old.logs.close()
            run = _Run(spec, record, directory, granted=granted)
            self._runs[spec.name] = run
            self._save(run)
        self._launch(run)
        self._await_ready(run)
        return run.record

    def _launch(self, run: _Run) -> None:
        env = dict(self._base_env)
        env.update(run.spec.env)
        if run.logs is None:
            run.logs = ServiceLogs(run.directory)
        try:
            with self._lock:
                if run.stopping:
                    return  # stopped while a restart was pending
                with self._paths.directory(run.spec.cwd) as cwd:
                    run.proc = self._os.spawn(
                        run.spec.argv,
                        fd_path(cwd.fd),
                        env,
                        stdin=subprocess.DEVNULL,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                    )
        except OpError as exc:  # the working directory went away (or became a link out) since the last start
            self._launch_failed(run, exc.message)
            return
        except FileNotFoundError:
            self._launch_failed(run, f"command not found: {run.spec.argv[0]}")
            return
        except OSError as exc:
            self._launch_failed(run, f"cannot start: {exc.strerror}")
            return
        run.done.clear()
        # A restart is a new run: what the last one ended with (and when it was ready) is no longer so.
        self._move(
            run,
            STARTING,
            pid=run.proc.pid,
            started_at=now_iso(),
            ready_at=None,
            stopped_at=None,
            exit_code=None,
            signal=None,
            reason=None,
        )
        threading.Thread(target=self._watch, args=(run, run.proc), name=f"svc-{run.spec.name}", daemon=True).start()

    def _launch_failed(self, run: _Run, reason: str) -> None:
        # A restart fails from exited or failed: it was starting, however briefly.
        self._move(run, STARTING, only_from=(EXITED, FAILED))
        self._move(run, FAILED, reason=reason, stopped_at=now_iso())
        self._release(run)
        run.done.set()

    def _release(self, run: _Run) -> None:
        """The service is over for good: its secret files go (its env-mode values with its spec)."""
        if run.granted is not None:
            run.granted.remove()

    def _await_ready(self, run: _Run) -> None:
        probe = run.spec.probe
        if run.record.state != STARTING or run.proc is None:
            return
        if probe is None:
            # No probe: ready unless it dies at once (a typo, a missing file).
            if not run.done.wait(NO_PROBE_GRACE_S):
                self._move(run, READY, only_from=(STARTING,), ready_at=now_iso())
            return
        env = dict(self._base_env)
        env.update(run.spec.env)
        deadline = time.monotonic() + probe.timeout_s
        detail = "not probed yet"
        while True:
            if run.done.is_set() or run.record.state != STARTING:
                return  # it exited (the watcher recorded why) or was stopped
            ok, detail = attempt(probe, self._paths, run.spec.cwd, env)
            if ok:
                self._move(run, READY, only_from=(STARTING,), ready_at=now_iso())
                return
            if time.monotonic() >= deadline:
                break
            run.done.wait(min(probe.interval_s, max(0.0, deadline - time.monotonic())))
        if run.record.state != STARTING:
            return
        run.stopping = True
        self._terminate(run, grace_s=1.0)
        self._move(
            run,
            FAILED,
            only_from=(STARTING,),
            reason=f"readiness probe timed out after {probe.timeout_s:g}s: {detail}",
            stopped_at=now_iso(),
        )

    # -- watching ------------------------------------------------------------
    def _watch(self, run: _Run, proc: subprocess.Popen[bytes]) -> None:
        selector = selectors.DefaultSelector()
        for stream, pipe in (("stdout", proc.stdout), ("stderr", proc.stderr)):
            if pipe is not None:
                os.set_blocking(pipe.fileno(), False)
                selector.register(pipe.fileno(), selectors.EVENT_READ, stream)
        linger_until: float | None = None
        # The service's own secrets never reach its log files (a value split between reads too).
        streams = run.granted.log_redactors() if run.granted is not None else {}
        while selector.get_map():
            ready = selector.select(0.1)
            if not ready and run.logs is not None:
                # Quiet for a moment: what was held back to catch a split value goes out, so a log
                # never waits for more output to show its last line.
                for stream, redactor in streams.items():
                    run.logs.write(stream, redactor.finish())
            for key, _ in ready:
                try:
                    data = os.read(int(key.fd), READ_CHUNK)
                except BlockingIOError:
                    continue
                if not data:
                    selector.unregister(key.fd)
                elif run.logs is not None:
                    self._log(run, str(key.data), data, streams)
            if linger_until is None and self._os.exited(proc):
                linger_until = time.monotonic() + 0.2
            if linger_until is not None and time.monotonic() >= linger_until:
                break  # descendants still hold the pipes; the service itself is gone
        selector.close()
        for stream, redactor in streams.items():
            if run.logs is not None:
                run.logs.write(stream, redactor.finish())
        for pipe in (proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        code = proc.wait()
        self._exited(run, proc, code)

    @staticmethod
    def _log(run: _Run, stream: str, data: bytes, redactors: dict[str, StreamRedactor[bytes]]) -> None:
        assert run.logs is not None
        redactor = redactors.get(stream)
        run.logs.write(stream, data if redactor is None else redactor.feed(data))

    def _exited(self, run: _Run, proc: subprocess.Popen[bytes], code: int) -> None:
        exit_code, sig = exit_status(code)
        if not run.stopping and run.record.state in ACTIVE:
            was_starting = run.record.state == STARTING
            state = EXITED if code == 0 and not was_starting else FAILED
            reason = f"process exited with code {code}" if code >= 0 else f"process was killed by {sig}"
            self._move(run, state, exit_code=exit_code, signal=sig, reason=reason, stopped_at=now_iso())
            run.done.set()
            # A first start that fails is reported to its caller; a restart that fails tries again.
            if (not was_starting or run.record.restarts > 0) and should_restart(run.spec.restart, exit_code):
                self._restart_later(run)
            else:
                self._release(run)
            return
        self._amend(run, exit_code=exit_code, signal=sig)
        self._release(run)
        run.done.set()

    def _restart_later(self, run: _Run) -> None:
        def restart() -> None:
            time.sleep(restart_delay(run.record.restarts))
            with self._lock:
                if run.stopping or self._runs.get(run.spec.name) is not run:
                    return
                # Claimed under the lock: a stop from now on sees the new process.
                run.record = dataclasses.replace(run.record, restarts=run.record.restarts + 1)
                self._save(run)
            self._launch(run)
            self._await_ready(run)

        threading.Thread(target=restart, name=f"svc-restart-{run.spec.name}", daemon=True).start()

    # -- stopping ------------------------------------------------------------
    def _terminate(self, run: _Run, grace_s: float) -> None:
        proc = run.proc
        if proc is None:
            return
        if not self._os.exited(proc):
            self._os.signal_group(proc.pid, signal.SIGTERM)
            deadline = time.monotonic() + grace_s
            while not self._os.exited(proc) and time.monotonic() < deadline:
                run.done.wait(0.01)
        # Anything left in the group, the main process included, goes now.
        self._os.signal_group(proc.pid, signal.SIGKILL)
        run.done.wait(2.0)

    def stop(self, name: str, grace_s: float = 10.0) -> ServiceRecord:
        run = self.get(name)
        with self._lock:
            run.stopping = True  # under the lock: a pending restart either launched already or never will
        if run.record.state == STOPPED:
            return run.record
        self._terminate(run, grace_s)
        self._release(run)
        self._move(run, STOPPED, stopped_at=now_iso())
        if run.logs is not None:
            run.logs.close()
            run.logs = None
        return run.record

    def stop_all(self, grace_s: float = 2.0) -> list[str]:
        """Stop every active service at once, so the wait is one grace period, not one each."""
        names = [r.name for r in self.records() if r.state in ACTIVE]
        stoppers = [threading.Thread(target=self.stop, args=(name, grace_s), name="service-stop") for name in names]
        for stopper in stoppers:
            stopper.start()
        for stopper in stoppers:
            stopper.join()
        return names

    def failure_log(self, run: _Run) -> str:
        return tail(run.directory, "both", LOG_LINES_ON_FAILURE).decode("utf-8", errors="replace")
