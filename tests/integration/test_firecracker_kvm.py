"""Real Firecracker microVM workspaces through the SDK: these need a host whose KVM boots stock
guest kernels, the pinned firecracker binary and roost's guest image builder. Everywhere else
(nested-PVM hosts such as the CI machines) they skip, saying which of those is missing."""

from __future__ import annotations

import importlib.util
import os
import signal
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from firecracker_fakes import firecracker_binary

from helpers import delete_all_workspaces, pids_with_env
from roost import Roost
from roost.backends.firecracker.binary import FIRECRACKER_ENV
from roost.backends.kvm import probe_kvm
from roost.backends.processes import WORKSPACE_MARKER
from roost.config import IMAGES_ENV
from roost.errors import AgentError

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.kvm, pytest.mark.integration, pytest.mark.slow]


def _why_not() -> str | None:
    kvm = probe_kvm()
    if not kvm.can_boot_guests:
        return f"needs KVM that boots stock guest kernels; here: {kvm.kind}: {kvm.detail}"
    if importlib.util.find_spec("roost.images.vm.build") is None:
        return "roost.images.vm.build (the guest image builder) is not in this tree"
    return None


@pytest.fixture
def roost(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Roost]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    binary, why = firecracker_binary()
    if binary is None:
        pytest.skip(why)
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    shared = Path(os.environ.get(IMAGES_ENV) or REPO / ".cache" / "images")
    shared.mkdir(parents=True, exist_ok=True)
    (home / "images").symlink_to(shared, target_is_directory=True)
    client = Roost(home=home, backend="firecracker")
    with monkeypatch.context() as patched:
        patched.setenv(FIRECRACKER_ENV, str(binary))
        yield client
    # Cleanup runs with no patch active: delete needs no binary, only the recorded VMM.
    delete_all_workspaces(client)
    client.close()


def test_a_firecracker_workspace_runs_commands_in_its_own_kernel_and_delete_frees_everything(roost: Roost) -> None:
    ws = roost.create_workspace("debian:12", ephemeral=False, vcpus=1, mem_mib=512)
    ws_id = ws.id
    result = ws.exec(["sh", "-c", "cat /proc/cmdline; echo pid1=$(cat /proc/1/comm)"])
    assert result.exit_code == 0
    assert "reboot=k" in result.stdout
    ws.files.write("/workspace/hello.txt", b"from the host\n")
    assert ws.files.read("/workspace/hello.txt").data == b"from the host\n"
    assert ws.info().health == "ok"
    ws.delete()
    assert pids_with_env(WORKSPACE_MARKER, ws_id) == set()


def test_killing_the_vmm_mid_exec_marks_the_workspace_unhealthy_with_the_reason(roost: Roost) -> None:
    ws = roost.create_workspace("debian:12", ephemeral=False)
    record = roost.workspace(ws.id)
    errors: list[BaseException] = []

    def long_exec() -> None:
        try:
            record.exec(["sleep", "60"])
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=long_exec)
    worker.start()
    pids = pids_with_env(WORKSPACE_MARKER, ws.id)
    assert pids, "the VMM carries the workspace marker"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    worker.join(30)
    assert errors and isinstance(errors[0], AgentError)
    status = roost.workspace(ws.id).info()
    assert status.state == "unhealthy"
    assert status.health is not None and status.health.startswith("the VMM died")
