"""Templates: a guest booted once per image and size, paused and snapshotted, for new workspaces to resume.

A cold boot runs the kernel, the initramfs, init and the agent's start; a
template pays that once. It is a VM booted from the image like any
workspace, whose agent answered, then paused and fully snapshotted (memory
and VM state), its post-boot disk kept beside the snapshot:

    <home>/templates/<name>/
        vmstate         Firecracker's VM state (paths in it are relative: `disk.ext4`, `v.sock`)
        memory          the guest's memory
        disk.ext4       the disk as it was at the snapshot (each clone gets a copy-on-write copy)
        agent.key       the template's own identity key (it never holds a workspace's secrets)
        template.json   what it was made from (image, size, Firecracker version) and when

`<name>` is a digest of what the snapshot depends on: the image's files, the
kernel command line, the VM's size and the Firecracker version (snapshots
load only into the version that made them). A build is staged in a hidden
directory and renamed into place complete; a build that failed leaves
`<name>.failed` saying why, and creates boot cold for that template from then
on (`roost env build` of a new image makes a new name).

`ROOST_FC_TEMPLATES=0` turns templates off: every create boots cold.

Imports: backends.agent_keys, backends.firecracker.{boot,vm}, errors, protocol (with its op messages), rpc
and the standard library.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import secrets
import shutil
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from roost.backends.agent_keys import KEY_FILE, identity_of
from roost.backends.firecracker.boot import BootPlan
from roost.backends.firecracker.vm import DISK, INITRD, KERNEL, MicroVm, copy_disk, keep_boot_file
from roost.errors import BackendError, RoostError
from roost.protocol.identity import AgentIdentity
from roost.protocol.ops.agent import ENTROPY_BYTES, RestoredArgs
from roost.rpc import AgentClient

__all__ = ["TEMPLATES_DIR", "TEMPLATES_ENV", "Template", "TemplateStore", "resume_clone", "templates_enabled"]

TEMPLATES_DIR = "templates"
TEMPLATES_ENV = "ROOST_FC_TEMPLATES"
VMSTATE = "vmstate"
MEMORY = "memory"
META = "template.json"
TEMPLATE_ID_PREFIX = "tpl-"


def templates_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(TEMPLATES_ENV, "1").strip().lower() not in ("0", "off", "no", "false")


def template_name(plan: BootPlan, rootfs: Path, firecracker_version: str) -> str:
    """A digest of everything the snapshot depends on (files by path, size and mtime)."""
    parts = [firecracker_version, plan.boot_args, str(plan.agent_port), str(plan.vcpus), str(plan.mem_mib)]
    for path in (Path(plan.kernel), Path(plan.initrd) if plan.initrd else None, rootfs):
        if path is not None:
            stat = path.stat()
            parts += [str(path), str(stat.st_size), str(stat.st_mtime_ns)]
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class Template:
    """A complete template on disk."""

    directory: Path
    plan: BootPlan

    @property
    def vmstate(self) -> Path:
        return self.directory / VMSTATE

    @property
    def memory(self) -> Path:
        return self.directory / MEMORY

    @property
    def disk(self) -> Path:
        return self.directory / DISK

    @property
    def identity(self) -> AgentIdentity:
        """Raises: AgentError: agent_unreachable when its key is gone."""
        return identity_of(self.directory, TEMPLATE_ID_PREFIX + self.directory.name)


class TemplateStore:
    """The templates of one roost home."""

    def __init__(self, home: Path) -> None:
        self.root = home / TEMPLATES_DIR

    def find(self, name: str) -> Template | None:
        directory = self.root / name
        try:
            meta = json.loads((directory / META).read_text())
            plan = BootPlan.from_json(meta["plan"])
        except (OSError, ValueError, KeyError, TypeError, BackendError):
            return None
        template = Template(directory, plan)
        if not all(path.is_file() for path in (template.vmstate, template.memory, template.disk)):
            return None
        return template

    def failure(self, name: str) -> str | None:
        """Why building `name` failed before (creates then boot cold without trying again)."""
        try:
            return (self.root / f"{name}.failed").read_text().strip() or "unknown"
        except OSError:
            return None

    def retire(self, name: str, why: str) -> None:
        """Remove template `name` and note why, so creates stop trying it (a new image makes a new name)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        (self.root / f"{name}.failed").write_text(why + "\n")
        shutil.rmtree(self.root / name, ignore_errors=True)

    def failed_names(self) -> list[str]:
        return sorted(p.name.removesuffix(".failed") for p in self.root.glob("*.failed")) if self.root.is_dir() else []

    def names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    @contextmanager
    def building(self, name: str) -> Iterator[None]:
        """Held while `name` is built, so concurrent creates build it once (the others wait, then find it)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.root / f".{name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def build(self, name: str, binary: Path, plan: BootPlan, rootfs: Path, boot_timeout: float) -> Template:
        """Boot the image, wait for its agent, pause, snapshot, keep the disk; rename it into place.

        `plan` names the image's kernel and initrd (they are linked into the template's directory
        for the boot; a snapshot holds the kernel in its memory).

        Raises:
            BackendError, AgentError: the boot or the snapshot failed (recorded in `<name>.failed`).
        """
        staging = self.root / f".build-{name}-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700, parents=True)
        vm = MicroVm(staging, TEMPLATE_ID_PREFIX + name)
        try:
            local = _stage_boot_files(plan, rootfs, staging)
            vm.launch(binary, local)
            vm.boot(local, boot_timeout)
            with vm.api() as api:
                api.pause()
                api.create_snapshot(VMSTATE, MEMORY)  # relative: in the VMM's cwd, the staging directory
            vm.kill()
            _seal(staging, local)
            os.replace(staging, self.root / name)
        except RoostError as exc:
            (self.root / f"{name}.failed").write_text(f"{exc.code}: {exc.message}\n")
            raise
        finally:
            _kill_quietly(vm)
            shutil.rmtree(staging, ignore_errors=True)
        template = self.find(name)
        if template is None:
            raise BackendError(f"the template {name} vanished as it was made", code="template_failed")
        return template

    def remove_all(self) -> int:
        """Delete every template (and failure note); the count of templates removed."""
        removed = len(self.names())
        shutil.rmtree(self.root, ignore_errors=True)
        return removed


def resume_clone(vm: MicroVm, template: Template, binary: Path, plan: BootPlan, timeout: float) -> None:
    """Make `vm` a clone of `template`: a copy-on-write copy of its disk, its snapshot loaded and
    resumed, then, before anything else, the agent renews the machine for `vm`'s workspace
    (fresh entropy, the clock, a hostname and machine-id of its own) and from then on proves that
    workspace's identity, not the template's.

    Raises:
        BackendError: disk_copy_failed, vmm_fault (the snapshot did not load: the VMM has ended), vmm_died,
            boot_timeout.
        AgentError: restore_failed, agent_identity_mismatch.
    """
    copy_disk(template.disk, vm.disk)
    vm.launch(binary, plan)
    vmstate, memory = str(template.vmstate), str(template.memory)
    if vm.jail is not None:  # the VMM sees only its jail; the snapshot names its disk relative to its cwd, /
        vm.jail.stage(vm.disk, DISK, writable=True)
        vmstate, memory = vm.jail.stage(template.vmstate, VMSTATE), vm.jail.stage(template.memory, MEMORY)
    with vm.api() as api:
        api.load_snapshot(vmstate, memory, resume=True)
    stream = vm.connector(plan.agent_port).wait_for_agent(timeout)
    with AgentClient(stream, identity=template.identity) as client:
        renew = RestoredArgs(
            workspace_id=vm.ws_id,
            key_hex=vm.identity.key.hex(),
            entropy_hex=secrets.token_bytes(ENTROPY_BYTES).hex(),
            unix_time_ns=time.time_ns(),
            hostname=vm.ws_id,
            machine_id=uuid.uuid4().hex,
        )
        client.call(renew.OP, renew.to_wire())
    vm.connector(plan.agent_port).open_client(timeout, vm.identity).close()  # it proves the workspace now


def _stage_boot_files(plan: BootPlan, rootfs: Path, staging: Path) -> BootPlan:
    copy_disk(rootfs, staging / DISK)
    keep_boot_file(Path(plan.kernel), staging / KERNEL, code="kernel_missing")
    initrd = None
    if plan.initrd:
        keep_boot_file(Path(plan.initrd), staging / INITRD, code="initrd_missing")
        initrd = str(staging / INITRD)
    return replace(plan, kernel=str(staging / KERNEL), initrd=initrd)


def _seal(staging: Path, plan: BootPlan) -> None:
    """Write what the template was made from; make its files read-only (clones link them, never write)."""
    for name in (KERNEL, INITRD):
        (staging / name).unlink(missing_ok=True)  # in the memory now; clones keep the image's own for cold starts
    for name in (VMSTATE, MEMORY, DISK, KEY_FILE):
        os.chmod(staging / name, 0o400 if name == KEY_FILE else 0o444)
    meta = {"plan": plan.to_json(), "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (staging / META).write_text(json.dumps(meta, indent=2) + "\n")


def _kill_quietly(vm: MicroVm) -> None:
    try:
        vm.kill()
    except BackendError:
        pass
