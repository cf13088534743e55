"""PTY shell sessions held by the agent, so they outlive any one host call.

Each shell is an interactive program (bash by default) on a pseudo-terminal
whose master the agent keeps. One reader thread serves every shell: it
copies output into each shell's `ByteRing`, taking out the prompt marks
that tell when a command has finished (`prompt_marks`, `commands`), and
notices when shells end.
The shell gets the terminal as its controlling tty by opening it itself
after `setsid` (through `/bin/sh`), so no Python runs between fork and exec.

Imports: the agent's `system` layer, this package, protocol and the standard library only.
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import os
import secrets
import selectors
import signal
import struct
import subprocess
import termios
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from roost.agent.shells.commands import CommandState
from roost.agent.shells.prompt_marks import MarkFilter, PromptHook, prompt_hook
from roost.agent.shells.records import CLOSED, EXITED, RUNNING, ShellRecord, ShellRecordStore
from roost.agent.shells.ring import ByteRing
from roost.agent.system.clock import now_iso
from roost.agent.system.processes import OsProcesses, exit_status
from roost.protocol import Code, OpError

RING_BYTES = 4 * 1024 * 1024
READ_CHUNK = 64 * 1024
CLOSE_GRACE_S = 0.5
FIRST_PROMPT_S = 5.0  # how long `open` waits for a hooked shell's first prompt
HOLD_MARK_S = 0.2  # how long the start of a possible mark waits for its rest before it counts as output
# Opens the terminal by path after setsid, which makes it the controlling tty.
_ATTACH_TTY = 'tty="$1"; shift; exec "$@" <>"$tty" >&0 2>&0'


def set_window(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


class ShellSession:
    """One running (or finished) shell: its process, terminal and output ring."""

    def __init__(
        self,
        record: ShellRecord,
        proc: subprocess.Popen[bytes],
        master: int,
        ring_bytes: int,
        hook: PromptHook | None = None,
    ) -> None:
        self.record = record
        self.proc = proc
        self.master = master
        self.ring = ByteRing(ring_bytes)
        self.commands = CommandState(self.ring)
        # Set when the shell prints prompt marks (bash or sh as roost starts them), else None.
        self.marks = None if hook is None else MarkFilter(hook.nonce)
        self.output_lock = threading.Lock()  # the reader and a finishing thread may both drain the terminal
        # Every use of `master` holds this, and so does its close: once closed, its number may already
        # be another file's (a host connection's socket), which a late read or write must never touch.
        self._terminal_lock = threading.Lock()
        self._terminal_closed = False
        self.lock = threading.Lock()
        # Ending a session happens once, whoever notices first (reader, close, reaper).
        self.finish_lock = threading.Lock()
        self.finishing = False
        self.finished = False
        # Run once the shell has ended (its secret files are removed so).
        self.on_end: Callable[[], None] | None = None

    @property
    def running(self) -> bool:
        return self.record.state == RUNNING

    @contextmanager
    def terminal(self) -> Iterator[int]:
        """The terminal's descriptor, held open for the block.

        Raises:
            OSError: EBADF once the terminal is closed.
        """
        with self._terminal_lock:
            if self._terminal_closed:
                raise OSError(errno.EBADF, "the shell's terminal is closed")
            yield self.master

    def close_terminal(self) -> None:
        with self._terminal_lock:
            if not self._terminal_closed:
                self._terminal_closed = True
                os.close(self.master)

    def write(self, data: bytes) -> None:
        # Before the bytes go in: a quick command's prompt mark may be read before os.write returns.
        self.commands.typed(data)
        view = memoryview(data)
        while view:
            try:
                with self.terminal() as fd:
                    written = os.write(fd, view)
            except BlockingIOError:
                time.sleep(0.001)  # the program is not reading: wait for the tty to drain
                continue
            except OSError as exc:
                raise OpError(Code.INVALID_ARGUMENT, f"shell {self.record.id} is not accepting input: {exc}") from None
            view = view[written:]

    def take_output(self, data: bytes) -> None:
        """Put what the terminal printed into the ring, taking the prompt marks out and noting them."""
        with self.output_lock:
            if self.marks is None:
                self.ring.write(data)
                return
            for piece in self.marks.feed(data):
                if isinstance(piece, int):
                    self.commands.prompted(piece)
                else:
                    self.ring.write(piece)

    def release_held_output(self) -> None:
        """Output held back as the start of a mark that never came is output after all."""
        with self.output_lock:
            if self.marks is not None and self.marks.holding:
                self.ring.write(self.marks.flush())

    def foreground_group(self) -> int:
        """The terminal's foreground job; the shell's own group until it has one.

        Right after `open` the shell may not hold its terminal yet, and the
        kernel then answers 0 (which, signalled, is the agent's own group).
        """
        try:
            with self.terminal() as fd:
                group = os.tcgetpgrp(fd)
        except OSError:
            return self.proc.pid
        return group if group > 0 else self.proc.pid


class ShellRegistry:
    """All shells of this agent, their reader thread and their records."""

    def __init__(self, state_dir: str, ring_bytes: int = RING_BYTES, processes: OsProcesses | None = None) -> None:
        self._store = ShellRecordStore(state_dir)
        self._os = processes or OsProcesses()
        self._ring_bytes = ring_bytes
        self._sessions: dict[str, ShellSession] = {}
        self._past: dict[str, ShellRecord] = {r.id: r for r in self._store.adopt_previous()}
        self._lock = threading.Lock()
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._reader = threading.Thread(target=self._read_loop, name="shell-reader", daemon=True)
        self._reader.start()

    # -- lifecycle -------------------------------------------------------------
    def open(
        self,
        argv: list[str],
        cwd: str,
        env: dict[str, str],
        cols: int,
        rows: int,
        guest_cwd: str,
        on_end: Callable[[], None] | None = None,
    ) -> ShellRecord:
        """Start a shell; `on_end` runs once it has ended (closed, exited or lost), never if it did not start.

        `bash -i` and `sh -i` are started so that they print prompt marks, and `open` returns once
        the first prompt is there (within `FIRST_PROMPT_S`): what is typed from then on is read.
        """
        hook = prompt_hook(argv, env)
        try:
            proc, master = self._spawn_on_terminal(
                argv if hook is None else hook.argv, cwd, env if hook is None else hook.env, cols, rows
            )
        except BaseException:
            if hook is not None:
                hook.remove()
            raise
        record = ShellRecord(
            id="sh-" + secrets.token_hex(4),
            command=list(argv),
            cwd=guest_cwd,
            cols=cols,
            rows=rows,
            state=RUNNING,
            created_at=now_iso(),
            pid=proc.pid,
        )
        session = ShellSession(record, proc, master, self._ring_bytes, hook)
        session.on_end = _then(hook.remove, on_end) if hook is not None else on_end
        with self._lock:
            self._sessions[record.id] = session
            self._selector.register(master, selectors.EVENT_READ, session)
        self._store.save(record)
        self._wake()
        if hook is not None:
            session.commands.wait_first_prompt(FIRST_PROMPT_S)
            hook.remove()  # read by now; if not, the shell's end removes it
        return record

    def _spawn_on_terminal(
        self, argv: list[str], cwd: str, env: dict[str, str], cols: int, rows: int
    ) -> tuple[subprocess.Popen[bytes], int]:
        """Start `argv` on a new terminal of `cols` x `rows`; the process and the terminal's (non-blocking) master."""
        master, slave = os.openpty()
        try:
            set_window(master, cols, rows)
            tty_path = os.ttyname(slave)
            proc = self._os.spawn(
                ["/bin/sh", "-c", _ATTACH_TTY, "roost-shell", tty_path, *argv],
                cwd,
                env,
                # The child holds the terminal from the fork on: were nobody to hold it
                # until /bin/sh reopens it, the reader would see EIO and end the shell.
                stdin=slave,
                stdout=slave,
                stderr=slave,
            )
        except BaseException as exc:
            os.close(master)
            if isinstance(exc, FileNotFoundError):
                raise OpError(Code.COMMAND_NOT_FOUND, f"cannot start a shell: {argv[0]} not found") from None
            raise
        finally:
            os.close(slave)
        os.set_blocking(master, False)
        return proc, master

    def _resolve(self, shell_id: str) -> str:
        """An exact id, or the one id that starts with `shell_id` (with or without `sh-`)."""
        known = set(self._sessions) | set(self._past)
        if shell_id in known or not shell_id:
            return shell_id
        matches = [i for i in known if i.startswith(shell_id) or i.removeprefix("sh-").startswith(shell_id)]
        if len(matches) > 1:
            raise OpError(
                Code.INVALID_ARGUMENT,
                f"{shell_id!r} matches {len(matches)} shells",
                hint="give more characters of the shell id",
            )
        return matches[0] if matches else shell_id

    def get(self, shell_id: str) -> ShellSession:
        with self._lock:
            shell_id = self._resolve(shell_id)
            session = self._sessions.get(shell_id)
        if session is None:
            if shell_id in self._past:
                raise OpError(
                    Code.SHELL_NOT_RUNNING,
                    f"shell {shell_id} is {self._past[shell_id].state}",
                    hint="open a new shell (shell open)",
                )
            raise OpError(
                Code.SHELL_NOT_FOUND, f"no shell {shell_id!r}", hint="see which shells there are (shell list)"
            )
        return session

    def records(self) -> list[ShellRecord]:
        with self._lock:
            live = {sid: s.record for sid, s in self._sessions.items()}
        merged = {**self._past, **live}
        return sorted(merged.values(), key=lambda r: (r.created_at, r.id))

    def resized(self, session: ShellSession, cols: int, rows: int) -> None:
        with session.lock:
            session.record = dataclasses.replace(session.record, cols=cols, rows=rows)
            self._store.save(session.record)

    def _update(self, session: ShellSession, state: str, **changes: object) -> None:
        with session.lock:
            if session.record.state == state:
                return
            session.record = session.record.moved_to(state, **changes)
            self._store.save(session.record)

    def close(self, shell_id: str, grace_s: float = CLOSE_GRACE_S) -> ShellRecord:
        """HUP the shell's session, KILL whatever ignores it after `grace_s`, never longer."""
        session = self.get(shell_id)
        shell_id = session.record.id
        sid = session.proc.pid
        if not self._os.exited(session.proc) or self._os.session_members(sid):
            for pid in self._os.session_members(sid):
                self._os.signal(pid, signal.SIGHUP)
            deadline = time.monotonic() + grace_s
            while self._os.session_members(sid) and time.monotonic() < deadline:
                time.sleep(0.01)
            for pid in self._os.session_members(sid):
                self._os.signal(pid, signal.SIGKILL)
        self._finish(session)
        with self._lock:
            self._sessions.pop(shell_id, None)
        self._update(session, CLOSED, closed_at=now_iso())
        self._past[shell_id] = session.record
        return session.record

    def close_all(self) -> list[str]:
        with self._lock:
            ids = list(self._sessions)
        for shell_id in ids:
            self.close(shell_id)
        return ids

    def _finish(self, session: ShellSession) -> None:
        """Reap the process, stop reading its terminal, record how it ended. Idempotent."""
        with session.finish_lock:
            if not session.finished:
                self._finish_once(session)
                session.finished = True

    def _finish_once(self, session: ShellSession) -> None:
        try:
            code = session.proc.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            self._os.signal(session.proc.pid, signal.SIGKILL)
            code = session.proc.wait()
        self._forget(session)
        self._drain(session)
        try:
            session.close_terminal()
        except OSError:
            pass
        session.release_held_output()
        if session.record.state == RUNNING:
            exit_code, sig = exit_status(code)
            self._update(session, EXITED, exit_code=exit_code, signal=sig, closed_at=now_iso())
        session.ring.close()  # after the record: a reader woken by the close sees how the shell ended
        if session.on_end is not None:
            session.on_end()

    # -- reading ---------------------------------------------------------------
    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except BlockingIOError:
            pass

    def _drain(self, session: ShellSession) -> bool:
        """Copy what the terminal holds into the ring; False once it has closed."""
        while True:
            try:
                with session.terminal() as fd:
                    data = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                return True
            except OSError:
                return False  # EIO: every program on the terminal has gone (EBADF: it is closed)
            if not data:
                return False
            session.take_output(data)

    def _read_loop(self) -> None:
        while True:
            for key, _ in self._selector.select(timeout=0.25):
                if key.data is None:
                    os.read(self._wake_r, 4096)
                    continue
                session: ShellSession = key.data
                if not self._drain(session):
                    self._forget(session)
                    self._schedule_finish(session)
            self._reap_exited()

    def _forget(self, session: ShellSession) -> None:
        """Stop watching the session's terminal: its own registration only (a closed number may be a
        newer session's by now)."""
        with self._lock:
            key = self._selector.get_map().get(session.master)
            if key is not None and key.data is session:
                self._selector.unregister(session.master)

    def _schedule_finish(self, session: ShellSession) -> None:
        # Off the reader thread: finishing waits for the process.
        with self._lock:
            if session.finishing:
                return
            session.finishing = True
        threading.Thread(target=self._finish, args=(session,), name="shell-finish", daemon=True).start()

    def _reap_exited(self) -> None:
        with self._lock:
            sessions = list(self._sessions.values())
        for session in sessions:
            if session.running and self._os.exited(session.proc):
                self._schedule_finish(session)
            elif session.marks is not None and session.marks.held_for() > HOLD_MARK_S:
                session.release_held_output()


def _then(first: Callable[[], None], then: Callable[[], None] | None) -> Callable[[], None]:
    def both() -> None:
        try:
            first()
        finally:
            if then is not None:
                then()

    return both


def signal_number(name: str) -> int:
    """The number of a signal `roost.protocol.ops.shells.signal_name` names."""
    return int(getattr(signal, "SIG" + name))
