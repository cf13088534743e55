"""What a sandbox workspace cannot see or touch: the host's files, other workspaces, the host's
network and processes; and what deleting one leaves behind (nothing).

Every test talks to real bubblewrap sandboxes through the SDK. Homes link `images` to the shared
image cache (as tests/contract/conftest.py does), so no image is built here.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import cmdline, pid_alive, pids_with_env, roost_client, wait_until
from roost import Roost, Workspace
from roost.backends import get_backend
from roost.backends.processes import WORKSPACE_MARKER
from roost.config import IMAGES_ENV
from roost.images.cache import ImageCache
from roost.images.freshness import current_image

REPO = Path(__file__).resolve().parents[2]
SANDBOX = get_backend("sandbox").availability()

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SANDBOX.available, reason=f"the sandbox backend cannot run here: {SANDBOX.reason}"),
]


@pytest.fixture(scope="module")
def shared_images() -> Path:
    """The image cache the whole suite shares; `make test` builds debian:12 into it first."""
    images = Path(os.environ.get(IMAGES_ENV) or REPO / ".cache" / "images")
    if current_image(ImageCache(images), "debian:12") is None:
        pytest.skip(f"debian:12 is not in the shared image cache {images}; run `make images`")
    return images


@pytest.fixture
def roost(tmp_path: Path, shared_images: Path) -> Iterator[Roost]:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    (home / "images").symlink_to(shared_images, target_is_directory=True)
    with roost_client(home, "sandbox") as client:
        yield client


@pytest.fixture
def ws_a(roost: Roost) -> Workspace:
    return roost.create_workspace("debian:12", ephemeral=False)


@pytest.fixture
def ws_b(roost: Roost) -> Workspace:
    return roost.create_workspace("debian:12", ephemeral=False)


def run(ws: Workspace, command: str | list[str]) -> tuple[int | None, str]:
    result = ws.exec(command, timeout=30)
    return result.exit_code, result.stdout + result.stderr


def ok(ws: Workspace, command: str | list[str]) -> str:
    code, output = run(ws, command)
    assert code == 0, f"{command!r} exited {code} inside {ws.id}: {output}"
    return output


def find_everywhere(name: str) -> str:
    """A shell line listing every path called `name`, across all mounts, skipping /proc."""
    return f"find / -path /proc -prune -o -name {name} -print 2>/dev/null; find / -xdev -name {name} 2>/dev/null; true"


@pytest.fixture
def host_root_file() -> Iterator[Path]:
    """A file with a unique name in the host's /root, removed afterwards."""
    path = Path("/root") / f"roost-isolation-{uuid.uuid4().hex}"
    try:
        path.write_text("host secret\n")
    except OSError as exc:
        pytest.skip(f"cannot write in the host's /root ({exc.strerror}); needs root")
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


def test_the_hosts_root_home_is_not_visible_inside(ws_a: Workspace, host_root_file: Path) -> None:
    assert host_root_file.exists()
    code, _ = run(ws_a, ["test", "-e", str(host_root_file)])
    assert code == 1
    assert host_root_file.name not in ok(ws_a, ["ls", "-A", "/root"])
    assert host_root_file.name not in ok(ws_a, find_everywhere(host_root_file.name))


def test_a_file_in_one_workspace_is_invisible_from_another(roost: Roost, ws_a: Workspace, ws_b: Workspace) -> None:
    name = f"only-in-a-{uuid.uuid4().hex}"
    ws_a.files.write(f"/workspace/{name}", "a's work\n")
    host_copy = roost.home / "workspaces" / ws_a.id / "workspace" / name
    assert host_copy.read_text() == "a's work\n"  # where it really lives on the host

    assert ok(ws_b, find_everywhere(name)).strip() == ""
    for guess in (host_copy, host_copy.parent, roost.home / "workspaces" / ws_a.id, roost.home):
        code, _ = run(ws_b, ["test", "-e", str(guess)])
        assert code == 1, f"{guess} is visible from workspace {ws_b.id}"
    assert ok(ws_a, ["cat", f"/workspace/{name}"]) == "a's work\n"


def test_one_workspace_cannot_see_anothers_processes(ws_a: Workspace, ws_b: Workspace) -> None:
    ok(ws_a, ["sh", "-c", "setsid sleep 3119 >/dev/null 2>&1 &"])
    assert "sleep 3119" in ok(ws_a, ["ps", "-eo", "args"])
    assert "sleep 3119" not in ok(ws_b, ["ps", "-eo", "args"])
    # Nothing of A's is in B's /proc, not even under its environment marker.
    marked = f"grep -ls {ws_a.id} /proc/[0-9]*/environ; true"
    assert ok(ws_a, marked) != ""
    assert ok(ws_b, marked) == ""


def test_only_loopback_exists_and_the_hosts_tcp_servers_are_out_of_reach(ws_a: Workspace) -> None:
    interfaces = [line.split(":", 1)[0].strip() for line in ok(ws_a, ["cat", "/proc/net/dev"]).splitlines()[2:]]
    assert interfaces == ["lo"]
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        server.setblocking(False)
        port = server.getsockname()[1]
        probe = f"import socket; s = socket.socket(); s.settimeout(5); print(s.connect_ex(('127.0.0.1', {port})))"
        errno_inside = int(ok(ws_a, ["python3", "-c", probe]).strip())
        assert errno_inside != 0, "a host server on 127.0.0.1 accepted a connection from the sandbox"
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever arrived


def test_the_sandbox_has_its_own_pid_namespace(ws_a: Workspace) -> None:
    agent_pid_inside = int(ok(ws_a, ["pgrep", "-f", "roost.agent"]).split()[0])
    assert agent_pid_inside < 10
    agent_pid_on_host = next(
        pid for pid in pids_with_env(WORKSPACE_MARKER, ws_a.id) if "roost.agent" in " ".join(cmdline(pid))
    )
    assert agent_pid_on_host != agent_pid_inside

    listing = [line.split(None, 1) for line in ok(ws_a, ["ps", "-e", "-o", "pid=,args="]).splitlines()]
    commands = sorted(os.path.basename(args.split()[0]) for _pid, args in listing)
    # The namespace's init (bwrap), the agent, and the `ps` being run: nothing of the host.
    assert commands == ["bwrap", "ps", "python3"], listing

    pids_inside = {int(entry) for entry in ok(ws_a, ["ls", "/proc"]).split() if entry.isdigit()}
    assert len(pids_inside) <= 4, pids_inside
    assert os.getpid() not in pids_inside


def test_the_root_filesystem_is_writable_but_the_write_stays_in_its_workspace(
    roost: Roost, shared_images: Path, ws_a: Workspace, ws_b: Workspace
) -> None:
    name = f"roost-overlay-{uuid.uuid4().hex}"
    ok(ws_a, ["touch", f"/etc/{name}"])
    assert name in ok(ws_a, ["ls", "/etc"])

    image = roost.inspect_env("debian:12")
    assert image.key
    shared_rootfs = ImageCache(shared_images).rootfs(image.key)
    assert (shared_rootfs / "etc").is_dir()
    assert not (shared_rootfs / "etc" / name).exists(), "the write reached the shared image"
    code, _ = run(ws_b, ["test", "-e", f"/etc/{name}"])
    assert code == 1, "the write is visible in another workspace"


def test_capabilities_are_cut_so_mounting_fails(ws_a: Workspace) -> None:
    code, output = run(ws_a, ["mount", "-t", "tmpfs", "x", "/mnt"])
    assert code != 0, output
    status = ok(ws_a, ["cat", "/proc/self/status"])
    effective = int(next(line for line in status.splitlines() if line.startswith("CapEff:")).split()[1], 16)
    cap_sys_admin = 21
    assert not effective & (1 << cap_sys_admin)


def test_the_sandbox_has_its_own_hostname(ws_a: Workspace) -> None:
    inside = ok(ws_a, ["hostname"]).strip()
    assert inside
    assert inside != socket.gethostname()


def mentions(ws_dir: Path) -> list[str]:
    with open("/proc/self/mountinfo") as fh:
        return [line for line in fh if str(ws_dir) in line]


def _start_time(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat: when the process started, which tells a reused pid apart."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].split()[19].decode()


def test_delete_kills_every_process_and_leaves_no_mount_behind(roost: Roost, ws_a: Workspace) -> None:
    ws_dir = roost.home / "workspaces" / ws_a.id
    assert mentions(ws_dir) == []  # the overlay lives in the sandbox's own mount namespace

    ok(ws_a, ["sh", "-c", "setsid sleep 300 >/dev/null 2>&1 &"])

    def sleepers() -> list[int]:  # the exec may answer before the background child has become `sleep`
        return [pid for pid in pids_with_env(WORKSPACE_MARKER, ws_a.id) if cmdline(pid) == ["sleep", "300"]]

    assert len(wait_until(sleepers, what="the detached sleep to start")) == 1
    processes = pids_with_env(WORKSPACE_MARKER, ws_a.id)

    started = {pid: _start_time(pid) for pid in processes}

    ws_a.delete()

    # The same processes, not their pids: on a busy machine a freed pid is soon someone else's.
    assert [pid for pid, when in started.items() if pid_alive(pid) and _start_time(pid) == when] == []
    assert pids_with_env(WORKSPACE_MARKER, ws_a.id) == set()
    assert not ws_dir.exists()
    assert mentions(ws_dir) == []
