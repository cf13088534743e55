"""The first process of a sandbox: run by path as `python3 -I -S launcher.py CONFIG`.

It runs on the host, as whoever runs roost, and imports nothing but the
standard library (it must start fast and must not depend on where roost is
installed). In order:

1. join the workspace's cgroups, so every later process is counted;
2. move into a new user namespace and mount namespace; a forked helper that
   stayed outside writes the namespace's uid and gid maps (directly when
   allowed, else through newuidmap/newgidmap), then exits;
   Then every host directory the sandbox needs is opened (O_PATH), still
   with the identity the launcher started with: the environment's rootfs,
   the workspace's overlay layers, /workspace, the agent's state dir and
   roost's agent code. The workspace's root could not even look them up
   where they live (roost's directories are 0700);
3. become root of the namespace (an unprivileged host id): the kernel only
   lets a mapped id create files in the namespace's own mounts, and
   overlayfs wants a mounter whose ids the namespace maps;
4. mount a private tmpfs over /tmp (only this mount namespace sees it) and
   bind each opened directory into it through /proc/self/fd (the rootfs and
   the code read-only), mount the overlay root from the staged layers, and
   exec bubblewrap on that staging tree (`STAGE`).

CONFIG is a JSON object; backend.py builds it. Failures are one line on
stderr, `roost-sandbox: ...`, and exit status 1.

With `{"id_map": ..., "remove": [PATH, ...]}` instead, the launcher removes
those host paths as the root of a namespace with the workspace's map (steps
2 and 3, then a removal that never follows symlinks) and exits 0. A normal
user needs this after a workspace ends: files it left owned by subordinate
ids, or without write permission, can only be deleted from inside such a
namespace.
"""

from __future__ import annotations

import ctypes
import functools
import json
import os
import resource
import subprocess
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
# Where the staging tree is mounted, in the launcher's own mount namespace only.
STAGE = "/tmp"
# statvfs flag -> mount flag, for the flags a remount must not drop.
_LOCKABLE = (
    (os.ST_NOSUID, MS_NOSUID),
    (os.ST_NODEV, MS_NODEV),
    (os.ST_NOEXEC, 0x8),
    (os.ST_NOATIME, 0x400),
    (os.ST_NODIRATIME, 0x800),
    (os.ST_RELATIME, 0x200000),
)


@functools.cache
def _libc() -> ctypes.CDLL:
    """libc, loaded on first use (the host imports this module for its constants)."""
    return ctypes.CDLL(None, use_errno=True)


class LaunchError(Exception):
    pass


def _os_error(what: str) -> LaunchError:
    err = ctypes.get_errno()
    return LaunchError(f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    def enc(value: str | None) -> bytes | None:
        return None if value is None else os.fsencode(value)

    if _libc().mount(enc(source), enc(target), enc(fstype), ctypes.c_ulong(flags), enc(data)) != 0:
        raise _os_error(f"mount {target}")


def _join_cgroups(procs_files: list[str]) -> None:
    for path in procs_files:
        try:
            with open(path, "w") as fh:
                fh.write(str(os.getpid()))
        except OSError as exc:
            raise LaunchError(f"cannot join cgroup {os.path.dirname(path)}: {exc.strerror}") from None


def _write_maps(pid: int, id_map: dict[str, Any]) -> None:
    """In the helper outside the namespace: give `pid`'s namespace its maps."""
    if id_map["writer"] == "newidmap":
        for argv in (id_map["newuidmap"], id_map["newgidmap"]):
            done = subprocess.run([argv[0], str(pid), *argv[1:]], capture_output=True, check=False)
            if done.returncode != 0:
                detail = done.stderr.decode(errors="replace").strip() or f"exit {done.returncode}"
                raise LaunchError(f"{os.path.basename(argv[0])} failed: {detail}")
        return
    if os.geteuid() != 0:
        # An unprivileged map of one's own ids is allowed only with setgroups denied.
        with open(f"/proc/{pid}/setgroups", "w") as fh:
            fh.write("deny")
    for name, key in (("uid_map", "uids"), ("gid_map", "gids")):
        lines = "".join(f"{a} {b} {c}\n" for a, b, c in id_map[key])
        with open(f"/proc/{pid}/{name}", "w") as fh:
            fh.write(lines)


def _enter_user_namespace(id_map: dict[str, Any]) -> None:
    parent = os.getpid()
    ready_r, ready_w = os.pipe()
    helper = os.fork()
    if helper == 0:  # the helper, still outside
        os.close(ready_w)
        code = 1
        try:
            if os.read(ready_r, 1) == b"1":
                _write_maps(parent, id_map)
                code = 0
        except (LaunchError, OSError) as exc:
            print(f"roost-sandbox: cannot write the user namespace's id maps: {exc}", file=sys.stderr)
        finally:
            os._exit(code)
    os.close(ready_r)
    if _libc().unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        error = _os_error("cannot create a user namespace")
        os.close(ready_w)
        os.waitpid(helper, 0)
        raise error
    os.write(ready_w, b"1")
    os.close(ready_w)
    _, status = os.waitpid(helper, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise LaunchError("the user namespace has no id maps (see the line above)")


def _open_sources(config: dict[str, Any]) -> list[tuple[int, str, bool]]:
    """Step 2's descriptors: (fd, name in the staging tree, read-only)."""
    layers = [(path, f"lower{i}", True) for i, path in enumerate(config.get("layers", ()))]
    wanted = [*layers, (config["rootfs"], "lower", True), *((s, n, bool(ro)) for s, n, ro in config["binds"])]
    opened = []
    for source, name, read_only in wanted:
        try:
            fd = os.open(source, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise LaunchError(f"cannot open {source}: {exc.strerror}") from None
        opened.append((fd, name, read_only))
    return opened


def _bind(fd: int, name: str, *, read_only: bool) -> None:
    target = os.path.join(STAGE, name)
    os.mkdir(target, 0o700)
    _mount(f"/proc/self/fd/{fd}", target, None, MS_BIND | MS_REC)
    if read_only:
        # A remount must keep the flags the kernel locked on the source mount.
        kept = os.statvfs(target).f_flag
        locked = sum(ms for st, ms in _LOCKABLE if kept & st)
        _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | locked)


def _stage(sources: list[tuple[int, str, bool]]) -> None:
    """Step 4: the staging tree and the overlay root (upper and work share one mount, as overlayfs wants).

    A custom env's layers (`lower0`, `lower1`, ...) lie over the env's rootfs (`lower`), top first."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("roost-stage", STAGE, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0700,size=1m")
    for fd, name, read_only in sources:
        _bind(fd, name, read_only=read_only)
        os.close(fd)
    os.mkdir(os.path.join(STAGE, "merged"), 0o755)
    lowers = ":".join(f"{STAGE}/{name}" for _fd, name, _ro in sources if name.startswith("lower"))
    layers = f"lowerdir={lowers},upperdir={STAGE}/layers/upper,workdir={STAGE}/layers/work"
    try:
        # user.overlay.* xattrs: what lets a namespace's root delete a lower directory (an opaque
        # dir) and a custom env's layers keep such deletions; kernels before 5.11 lack the option.
        _mount("roost-root", f"{STAGE}/merged", "overlay", 0, layers + ",userxattr")
    except LaunchError:
        _mount("roost-root", f"{STAGE}/merged", "overlay", 0, layers)


def _become_root() -> None:
    try:
        os.setgroups([])
    except PermissionError:
        pass  # a map of one's own ids comes with setgroups denied: there are none to drop
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def _limit(config: dict[str, Any]) -> None:
    for name, value in config.get("rlimits", {}).items():
        which = getattr(resource, f"RLIMIT_{name.upper()}")
        try:
            resource.setrlimit(which, (value, value))
        except (OSError, ValueError):
            _, hard = resource.getrlimit(which)
            resource.setrlimit(which, (min(value, hard), hard))
    cpus = config.get("cpus")
    if cpus:
        os.sched_setaffinity(0, cpus)


def launch(config: dict[str, Any]) -> None:
    _join_cgroups(config.get("cgroup_procs", []))
    id_map = config["id_map"]
    _enter_user_namespace(id_map)
    # Opened in the new mount namespace (binds only take sources from one's own),
    # but still with the identity that can reach them.
    sources = _open_sources(config)
    _limit(config)
    _become_root()
    _stage(sources)
    os.chdir(STAGE)
    argv = config["argv"]
    os.execv(argv[0], argv)


def remove(config: dict[str, Any]) -> None:
    """Delete `config["remove"]` as the namespace's root, whose capabilities cover every mapped owner."""
    import shutil  # only this job needs it; the launch path stays lean

    _enter_user_namespace(config["id_map"])
    _become_root()
    for path in config["remove"]:
        # rmtree works on directory descriptors with O_NOFOLLOW: a planted symlink is unlinked, not followed.
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        elif os.path.lexists(path):
            os.unlink(path)


def main() -> int:
    if len(sys.argv) != 2:
        print("usage: launcher.py CONFIG_JSON", file=sys.stderr)
        return 2
    try:
        config = json.loads(sys.argv[1])
        if "remove" in config:
            remove(config)
            return 0
        launch(config)
    except (LaunchError, OSError, KeyError, ValueError) as exc:
        print(f"roost-sandbox: {exc}", file=sys.stderr)
        return 1
    return 1  # exec returned: unreachable


if __name__ == "__main__":
    sys.exit(main())
