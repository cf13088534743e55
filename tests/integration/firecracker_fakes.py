"""Test doubles for the firecracker backend (test_firecracker_fakes.py checks them against the real binary).

- `firecracker_binary()`: the real, pinned Firecracker (`$ROOST_FIRECRACKER`, the repo's
  `.cache/firecracker`, else `scripts/fetch-firecracker.sh` under a lock shared by xdist workers);
  `jailer_binary()`: its jailer, fetched beside it.
- `VsockRelay`: a Unix-socket server speaking Firecracker's host-side vsock handshake
  (`CONNECT <port>\\n` -> `OK <n>\\n`, or a close while nothing listens in the guest) in front of
  a real agent's socket, with knobs to close the first attempts, never answer, or send bytes
  right behind the OK line.
- A fake VMM (run this file as a program): Firecracker's API on `--api-sock` for the endpoints
  roost uses, answering bad configurations with Firecracker's own fault texts; InstanceStart
  "boots" a guest that is a real `python -m roost.agent`, reached through a `VsockRelay` on
  the configured `uds_path`. Kernel command line knobs: `fake.port=N` (the vsock port the
  guest agent listens on), `fake.state=DIR` (the guest's files), `fake.agent=never` (a guest
  whose agent never comes up), `fake.exit_on_start=1` (a VMM that dies while booting),
  `fake.snapshot=refuse` (snapshot create fails). Snapshot create writes the configuration and
  the guest's state directory as "VM state" and a sparse "memory"; load (into an unconfigured
  VMM, which ends after a failed load as Firecracker does) resumes a guest whose agent holds the
  template's identity, with a copy of its files in the VMM's cwd (`fake-guest`). The guest's
  agent records the machine calls a restore makes (`machine_calls`) instead of making them.
  `PUT /network-interfaces` opens the named TAP device for real, in the VMM's namespace. Each
  boot adds one to a counter at byte 4096 of the root drive, so tests can see the disk persist.

Imports: the standard library only (the fake VMM runs as its own process).
"""

from __future__ import annotations

import argparse
import ctypes
import fcntl
import http.server
import json
import os
import queue
import shutil
import signal
import socket
import socketserver
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from roost.guest.init import KEY_ENV, config_from_cmdline

REPO = Path(__file__).resolve().parents[2]
FETCH_SCRIPT = REPO / "scripts" / "fetch-firecracker.sh"
CACHE_DIR = Path(os.environ.get("ROOST_FIRECRACKER_CACHE", REPO / ".cache" / "firecracker"))
OK_LINE = b"OK 1073741824\n"
BOOT_COUNTER_OFFSET = 4096
_TUNSETIFF = 0x400454CA
_IFF_TAP, _IFF_NO_PI, _IFF_VNET_HDR = 0x0002, 0x1000, 0x4000


# -- the real binary ----------------------------------------------------------------------------
def firecracker_binary() -> tuple[Path | None, str]:
    """The pinned firecracker, fetched once per machine; or None and why it cannot be had."""
    override = os.environ.get("ROOST_FIRECRACKER")
    if override:
        if os.access(override, os.X_OK):
            return Path(override), ""
        return None, f"$ROOST_FIRECRACKER={override} is not an executable"
    cached = CACHE_DIR / "firecracker"
    if os.access(cached, os.X_OK):
        return cached, ""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    with open(CACHE_DIR / ".fetch.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.access(cached, os.X_OK):
            result = subprocess.run(
                ["bash", str(FETCH_SCRIPT), str(CACHE_DIR)], capture_output=True, text=True, timeout=300, check=False
            )
            if not os.access(cached, os.X_OK):
                tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
                return None, f"no firecracker binary ({FETCH_SCRIPT.name} exited {result.returncode}: {tail})"
    return cached, ""


def jailer_binary() -> tuple[Path | None, str]:
    """The pinned jailer that `scripts/fetch-firecracker.sh` puts beside the firecracker binary."""
    binary, why = firecracker_binary()
    if binary is None:
        return None, why
    jailer = binary.with_name("jailer")
    if not os.access(jailer, os.X_OK):
        with open(CACHE_DIR / ".fetch.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            subprocess.run(["bash", str(FETCH_SCRIPT), str(CACHE_DIR)], capture_output=True, timeout=300, check=False)
    if os.access(jailer, os.X_OK):
        return jailer, ""
    return None, f"no jailer beside {binary} ({FETCH_SCRIPT.name} fetches one)"


def wait_for_path(path: Path, proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """Wait until the Unix socket at `path` accepts (its file appears at bind(), before listen())."""
    end = time.monotonic() + timeout
    while not _accepts(path):
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args!r} exited {proc.returncode} before {path.name} appeared")
        if time.monotonic() >= end:
            raise AssertionError(f"{path} did not appear within {timeout}s")
        time.sleep(0.002)


def _accepts(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        unix_connect(path, timeout=1.0).close()
    except OSError:
        return False
    return True


def unix_connect(path: Path, timeout: float | None = None) -> socket.socket:
    """Connect to a Unix socket, reaching long paths through their directory's descriptor."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    if len(os.fsencode(path)) < 100:
        address, fd = str(path), None
    else:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        address = f"/proc/self/fd/{fd}/{path.name}"
    try:
        sock.connect(address)
    except BaseException:
        sock.close()
        raise
    finally:
        if fd is not None:
            os.close(fd)
    return sock


def unix_listener(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if len(os.fsencode(path)) < 100 or not path.is_absolute():
        sock.bind(str(path))
    else:
        fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            sock.bind(f"/proc/self/fd/{fd}/{path.name}")
        finally:
            os.close(fd)
    sock.listen(16)
    return sock


# -- the host-side vsock handshake ----------------------------------------------------------
def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass
    for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
        try:
            sock.shutdown(how)
        except OSError:
            pass


class VsockRelay:
    """Firecracker's host-side vsock socket at `path`, in front of the agent socket `upstream()` names."""

    def __init__(
        self,
        path: Path,
        upstream: Callable[[], Path | None],
        *,
        port: int | None = None,
        close_first: int = 0,
        silent: bool = False,
        after_ok: bytes = b"",
    ) -> None:
        self.path = path
        self.upstream = upstream
        self.port = port
        self.close_first = close_first
        self.silent = silent
        self.after_ok = after_ok
        self.attempts = 0
        self.handshakes = 0
        self._stop = threading.Event()
        self._listener = unix_listener(path)
        self._open: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept_loop, name="vsock-relay", daemon=True).start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _refuse(self, conn: socket.socket) -> None:
        conn.close()

    def _serve(self, conn: socket.socket) -> None:
        line = b""
        while not line.endswith(b"\n"):
            chunk = conn.recv(1)
            if not chunk:
                conn.close()
                return
            line += chunk
        with self._lock:
            self.attempts += 1
            attempt = self.attempts
        if self.silent:
            self._stop.wait()
            conn.close()
            return
        words = line.split()
        wanted = int(words[1]) if len(words) == 2 and words[0] == b"CONNECT" else None
        target = self.upstream()
        if (
            attempt <= self.close_first
            or wanted is None
            or (self.port is not None and wanted != self.port)
            or target is None
        ):
            self._refuse(conn)
            return
        try:
            agent = unix_connect(target)
        except OSError:
            self._refuse(conn)  # nothing listens on that guest port yet
            return
        with self._lock:
            self.handshakes += 1
            self._open.append(agent)
        conn.sendall(OK_LINE + self.after_ok)
        threading.Thread(target=_pipe, args=(agent, conn), daemon=True).start()
        _pipe(conn, agent)

    def close(self) -> None:
        self._stop.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            conns, self._open = self._open, []
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()


MACHINE_LOG = "machine-calls.jsonl"
MACHINE_LOG_ENV = "FAKE_GUEST_MACHINE_LOG"
# The guest's agent, but the machine calls a restore makes (entropy, clock, hostname, machine-id)
# are written to $FAKE_GUEST_MACHINE_LOG as JSON lines instead of made: here they would change the host.
_AGENT_WITH_RECORDED_MACHINE = """
import json, os, sys
from roost.agent.system import machine

def recorder(name):
    def record(self, value, *rest):
        with open(os.environ["FAKE_GUEST_MACHINE_LOG"], "a") as log:
            log.write(json.dumps({"call": name, "value": value.hex() if isinstance(value, bytes) else value}) + "\\n")
        return len(value) * 8 if isinstance(value, bytes) else None
    return record

for name in ("add_entropy", "set_clock", "set_hostname", "set_machine_id"):
    setattr(machine.OsMachine, name, recorder(name))
from roost.agent.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def machine_calls(state: Path) -> list[dict[str, Any]]:
    """What a fake guest's agent was asked to change on its machine, in order."""
    log = state / MACHINE_LOG
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def start_agent(
    state: Path, listen: Path, *, parent_death_signal: bool = False, boot_args: str = ""
) -> subprocess.Popen[bytes]:
    """A real roost agent serving `state/workspace` on the Unix socket `listen`, given the
    identity `boot_args` carry (read by roost's own init parser, as a guest would)."""
    for name in ("workspace", "agent", "scratch"):
        (state / name).mkdir(parents=True, exist_ok=True)
    argv = [sys.executable, "-c", _AGENT_WITH_RECORDED_MACHINE, "--listen", f"unix:{listen}"]
    argv += ["--workspace-root", str(state / "workspace"), "--state-dir", str(state / "agent")]
    argv += ["--scratch-dir", str(state / "scratch")]
    config = config_from_cmdline(boot_args)
    env = dict(os.environ)
    env[MACHINE_LOG_ENV] = str(state / MACHINE_LOG)
    if config.workspace_id and config.key_hex:
        argv += ["--workspace-id", config.workspace_id]
        env[KEY_ENV] = config.key_hex

    def die_with_parent() -> None:
        # Like a guest, the agent cannot outlive its VMM. (Set from the main thread: the
        # signal fires when the *thread* that forked exits.)
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG

    log = open(state / "agent.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            env=env,
            preexec_fn=die_with_parent if parent_death_signal else None,
        )
    finally:
        log.close()


# -- the fake VMM ----------------------------------------------------------------------------
NOT_BEFORE_START = "The requested operation is not supported before starting the microVM."
NOT_AFTER_START = "The requested operation is not supported after starting the microVM."


class Fault(Exception):
    pass


# Firecracker is linked with musl, whose wording differs from glibc's for a few errors.
_MUSL_STRERROR = {98: "Address in use"}


def _os_error(exc: OSError) -> str:
    return f"{_MUSL_STRERROR.get(exc.errno or 0, exc.strerror)} (os error {exc.errno})"


class FakeVmm:
    """Firecracker's API semantics for the endpoints roost uses; one guest that is a real agent."""

    def __init__(self, vmm_id: str, main_thread_jobs: queue.SimpleQueue[Callable[[], None]]) -> None:
        self.vmm_id = vmm_id
        self.state = "Not started"
        self.machine: dict[str, Any] = {"vcpu_count": 1, "mem_size_mib": 128, "smt": False, "track_dirty_pages": False}
        self.boot: dict[str, Any] | None = None
        self.drives: list[dict[str, Any]] = []
        self.vsock: dict[str, Any] | None = None
        self.entropy: dict[str, Any] | None = None
        self.interfaces: list[dict[str, Any]] = []
        self.taps: dict[str, int] = {}
        self.relay: VsockRelay | None = None
        self.agent: subprocess.Popen[bytes] | None = None
        self.agent_socket: Path | None = None
        self._jobs = main_thread_jobs
        self._lock = threading.Lock()

    def handle(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        with self._lock:
            try:
                return self._dispatch(method, path.strip("/"), body)
            except Fault as fault:
                return 400, {"fault_message": str(fault)}
            except (KeyError, TypeError) as exc:
                detail = f"missing field `{exc.args[0]}`" if isinstance(exc, KeyError) else str(exc)
                return 400, {
                    "fault_message": f"An error occurred when deserializing the json body of a request: {detail}"
                }

    def _dispatch(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        if (method, path) == ("GET", ""):
            return 200, {"id": self.vmm_id, "state": self.state, "vmm_version": "1.12.1", "app_name": "Firecracker"}
        if (method, path) == ("GET", "vm/config"):
            return 200, self.config()
        if method == "PUT" and (
            path in ("machine-config", "boot-source", "vsock", "entropy")
            or path.startswith(("drives/", "network-interfaces/"))
        ):
            if self.state != "Not started":
                raise Fault(NOT_AFTER_START)
            getattr(self, "_put_" + path.split("/")[0].replace("-", "_"))(path, body)
            return 204, None
        if (method, path) == ("PUT", "actions"):
            action = body["action_type"]
            if action == "InstanceStart":
                self._instance_start()
            elif action == "SendCtrlAltDel":
                if self.state == "Not started":
                    raise Fault(NOT_BEFORE_START)
                self._jobs.put(self._power_off)
            else:
                raise Fault(
                    f"An error occurred when deserializing the json body of a request: unknown variant `{action}`"
                )
            return 204, None
        if (method, path) == ("PUT", "snapshot/create"):
            self._snapshot_create(body)
            return 204, None
        if (method, path) == ("PUT", "snapshot/load"):
            self._snapshot_load(body)
            return 204, None
        if (method, path) == ("PATCH", "vm"):
            if self.state == "Not started":
                raise Fault(NOT_BEFORE_START)
            self.state = {"Paused": "Paused", "Resumed": "Running"}[body["state"]]
            return 204, None
        raise Fault(f"Invalid request method and/or path: {method.upper()} {path}.")

    def config(self) -> dict[str, Any]:
        return {
            "boot-source": self.boot,
            "drives": self.drives,
            "machine-config": self.machine,
            "network-interfaces": self.interfaces,
            "vsock": self.vsock,
            "entropy": self.entropy,
        }

    def _put_machine_config(self, _path: str, body: dict[str, Any]) -> None:
        vcpus, mem = int(body["vcpu_count"]), int(body["mem_size_mib"])
        if not 0 < vcpus <= 32 or (body.get("smt") and vcpus > 1 and vcpus % 2):
            raise Fault(
                "Machine config error: The number of vCPUs must be greater than 0, less than 32 "
                "and must be 1 or an even number if SMT is enabled."
            )
        if mem <= 0:
            raise Fault(
                "Machine config error: The memory size (MiB) is either 0, or not a multiple of the configured page size."
            )
        self.machine = {
            "vcpu_count": vcpus,
            "mem_size_mib": mem,
            "smt": bool(body.get("smt", False)),
            "track_dirty_pages": bool(body.get("track_dirty_pages", False)),
        }

    def _put_boot_source(self, _path: str, body: dict[str, Any]) -> None:
        try:
            open(body["kernel_image_path"], "rb").close()
        except OSError as exc:
            raise Fault(f"Boot source error: The kernel file cannot be opened: {_os_error(exc)}") from None
        if body.get("initrd_path"):
            try:
                open(body["initrd_path"], "rb").close()
            except OSError as exc:
                raise Fault(
                    "Boot source error: The initrd file cannot be opened due to invalid path or invalid "
                    f"permissions. {_os_error(exc)}"
                ) from None
        self.boot = {
            "kernel_image_path": body["kernel_image_path"],
            "initrd_path": body.get("initrd_path"),
            "boot_args": body.get("boot_args"),
        }

    def _put_entropy(self, _path: str, body: dict[str, Any]) -> None:
        self.entropy = {"rate_limiter": body.get("rate_limiter")}

    def _put_drives(self, path: str, body: dict[str, Any]) -> None:
        cache_type = body.get("cache_type", "Unsafe")
        if cache_type not in ("Unsafe", "Writeback"):
            raise Fault(
                "An error occurred when deserializing the json body of a request: unknown variant "
                f"`{cache_type}`, expected `Unsafe` or `Writeback`"
            )
        if path.split("/", 1)[1] != body["drive_id"]:
            raise Fault("The id from the path does not match the id from the body!")
        try:
            open(body["path_on_host"], "r+b").close()
        except OSError as exc:
            raise Fault(
                "Drive config error: Unable to create the virtio block device: Virtio backend error: "
                f"Error manipulating the backing file: {_os_error(exc)} {body['path_on_host']}"
            ) from None
        drive = {**body, "cache_type": cache_type}
        self.drives = [d for d in self.drives if d["drive_id"] != body["drive_id"]] + [drive]

    def _put_network_interfaces(self, path: str, body: dict[str, Any]) -> None:
        """Opens the TAP as Firecracker does (TUNSETIFF on /dev/net/tun, in the VMM's namespace)."""
        if path.split("/", 1)[1] != body["iface_id"]:
            raise Fault("The id from the path does not match the id from the body!")
        name = body["host_dev_name"]
        try:
            fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
            try:
                fcntl.ioctl(
                    fd, _TUNSETIFF, struct.pack("16sH22x", name.encode(), _IFF_TAP | _IFF_NO_PI | _IFF_VNET_HDR)
                )
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            raise Fault(
                f"Could not create the network device: Open tap device failed: Error while creating ifreq "
                f"structure: {_os_error(exc)}. Invalid TUN/TAP Backend provided by {name}."
            ) from None
        self.taps[body["iface_id"]] = fd
        self.interfaces = [i for i in self.interfaces if i["iface_id"] != body["iface_id"]] + [dict(body)]

    def _put_vsock(self, _path: str, body: dict[str, Any]) -> None:
        try:
            relay = VsockRelay(Path(body["uds_path"]), lambda: self.agent_socket, port=self._knob("port", int))
        except OSError as exc:
            raise Fault(
                "Vsock config error: Cannot create backend for vsock device: "
                f"Error binding to the host-side Unix socket: {_os_error(exc)}"
            ) from None
        if self.relay is not None:
            self.relay.close()
        self.relay, self.vsock = relay, {"guest_cid": int(body["guest_cid"]), "uds_path": body["uds_path"]}

    def _knob(self, name: str, kind: Callable[[str], Any] = str) -> Any:
        for word in str((self.boot or {}).get("boot_args") or "").split():
            key, _, value = word.partition("=")
            if key == f"fake.{name}":
                return kind(value)
        return None

    def _instance_start(self) -> None:
        if self.state != "Not started":
            raise Fault(NOT_AFTER_START)
        if self.boot is None:
            raise Fault("Start microvm error: Cannot start microvm without kernel configuration.")
        with open(self.boot["kernel_image_path"], "rb") as fh:
            if fh.read(4) != b"\x7fELF":
                raise Fault(
                    "Start microvm error: System configuration error: Cannot load kernel due to invalid memory "
                    "configuration or invalid kernel image: Kernel Loader: failed to load ELF kernel image: "
                    "Kernel Loader: Unable to read elf header"
                )
        root = next((d for d in self.drives if d.get("is_root_device")), None)
        if root is not None:
            with open(root["path_on_host"], "r+b") as disk:
                disk.seek(BOOT_COUNTER_OFFSET)
                count = struct.unpack("<Q", disk.read(8).ljust(8, b"\0"))[0]
                disk.seek(BOOT_COUNTER_OFFSET)
                disk.write(struct.pack("<Q", count + 1))
        self.state = "Running"
        shown = " ".join(w for w in str(self.boot.get("boot_args")).split() if not w.startswith("roost.key="))
        print(f"fake guest: booting with {shown}", flush=True)
        if self._knob("exit_on_start"):
            self._jobs.put(lambda: os._exit(1))
            return
        state_dir = self._knob("state")
        if self._knob("agent") != "never" and state_dir:
            self._start_guest(state_dir)

    def _start_guest(self, state_dir: str) -> None:
        done: Future[None] = Future()

        def boot_guest() -> None:  # on the main thread, so the agent's parent-death signal holds
            socket_path = Path(state_dir) / "agent.sock"
            boot_args = str(self.boot.get("boot_args") or "") if self.boot else ""
            self.agent = start_agent(Path(state_dir), socket_path, parent_death_signal=True, boot_args=boot_args)
            self.agent_socket = socket_path
            done.set_result(None)

        self._jobs.put(boot_guest)
        done.result(timeout=10)

    # -- snapshots: the "memory" is the guest's boot arguments (so its identity) and its files ----------
    def _snapshot_create(self, body: dict[str, Any]) -> None:
        if self.state == "Not started":
            raise Fault(NOT_BEFORE_START)
        if self.state != "Paused":
            raise Fault("Create snapshot error: the microVM must be paused first (fake)")
        if self._knob("snapshot") == "refuse":
            raise Fault("Create snapshot error: refused by fake.snapshot=refuse")
        state = {"config": self.config(), "guest_state": self._knob("state")}
        Path(body["snapshot_path"]).write_text(json.dumps(state))
        with open(body["mem_file_path"], "wb") as memory:
            memory.truncate(int(self.machine["mem_size_mib"]) * 1024 * 1024)  # sparse, like untouched pages

    def _snapshot_load(self, body: dict[str, Any]) -> None:
        if self.boot is not None or self.drives or self.vsock is not None:
            raise Fault(
                "Load snapshot error: Loading a microVM snapshot not allowed after configuring boot-specific resources."
            )
        try:
            state = json.loads(Path(body["snapshot_path"]).read_text())
            open(body["mem_backend"]["backend_path"], "rb").close()
        except OSError as exc:
            self._exit_soon()  # Firecracker ends after a failed load
            raise Fault(
                "Load snapshot error: Failed to restore from snapshot: Failed to get snapshot state from file: "
                f"Failed to open snapshot file: {_os_error(exc)}"
            ) from None
        except ValueError:
            self._exit_soon()
            raise Fault(
                "Load snapshot error: Failed to restore from snapshot: the state file is corrupt (fake)"
            ) from None
        config = state["config"]
        self.machine, self.boot = config["machine-config"], config["boot-source"]
        for drive in config["drives"]:
            self._put_drives(f"drives/{drive['drive_id']}", drive)
        for interface in config["network-interfaces"]:
            self._put_network_interfaces(f"network-interfaces/{interface['iface_id']}", interface)
        self._put_vsock("vsock", config["vsock"])
        self.entropy = config["entropy"]
        self.state = "Running" if body.get("resume_vm") else "Paused"
        print("fake guest: restored from a snapshot", flush=True)
        if state["guest_state"]:
            # The clone's "disk": the template's guest files, copied into the VMM's working directory.
            clone = Path.cwd() / "fake-guest"
            if not clone.exists():
                shutil.copytree(state["guest_state"], clone, ignore=shutil.ignore_patterns("*.sock", "agent.log"))
            self._start_guest(str(clone))

    def _exit_soon(self) -> None:
        threading.Timer(0.05, os._exit, (1,)).start()

    def _power_off(self) -> None:
        print("fake guest: Ctrl-Alt-Del, powering off", flush=True)
        if self.agent is not None:
            self.agent.terminate()
            self.agent.wait(5)
        os._exit(0)


class _QuietServer(socketserver.ThreadingUnixStreamServer):
    """Firecracker logs nothing when a client hangs up mid-request; neither does the fake (a
    traceback would become the "last output" a test expects to read the guest's words in)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _ApiHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    vmm: FakeVmm

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            status, answer = (
                400,
                {"fault_message": f"An error occurred when deserializing the json body of a request: {exc}."},
            )
        else:
            status, answer = self.vmm.handle(self.command, self.path, body)
        payload = json.dumps(answer).encode() if answer is not None else b""
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_PATCH = _answer


FAKE_VERSION = "1.12.1"


def fake_vmm_main(argv: list[str]) -> int:
    if "--version" in argv:
        print(f"Firecracker v{FAKE_VERSION}\n\nSupported snapshot data format versions: v5.0.0")
        return 0
    parser = argparse.ArgumentParser()
    parser.add_argument("--api-sock", required=True)
    parser.add_argument("--id", default="anonymous-instance")
    args, _ = parser.parse_known_args(argv)
    jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
    vmm = FakeVmm(args.id, jobs)
    handler = type("Handler", (_ApiHandler,), {"vmm": vmm})
    server = _QuietServer(args.api_sock, handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    print(f"fake firecracker: listening on {args.api_sock}", flush=True)
    while True:
        jobs.get()()


def write_fake_vmm(directory: Path) -> Path:
    """An executable `firecracker` that runs this file's fake VMM with the test's Python."""
    script = directory / "firecracker"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    script.chmod(0o755)
    return script


if __name__ == "__main__":
    sys.exit(fake_vmm_main(sys.argv[1:]))
