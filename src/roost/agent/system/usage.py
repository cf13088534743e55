"""What the workspace uses, as the agent sees it from inside: CPU time, memory, processes, disk.

Two views: `tree_usage`, the agent's own process tree (a workspace whose processes share a kernel with
others: the host's, for `mock`), and `system_usage`, the whole system the agent runs in (a VM of its
own, where every process is the workspace's). Each field that the view cannot know is None rather than
a guess: a process tree has no memory peak that /proc keeps, for one.

Disk use counts allocated blocks (a sparse file counts what it holds), each inode once, and never
follows a link or leaves the file system it starts on.

Imports: this package's `procfs` and the standard library only.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from roost.agent.system.procfs import stat_fields

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")
# Fields of /proc/<pid>/stat after the command name (state is 0): ppid, utime, stime, cutime, cstime, rss pages.
_PPID, _UTIME, _STIME, _CUTIME, _CSTIME, _RSS = 1, 11, 12, 13, 14, 21


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float
    memory_bytes: int
    memory_peak_bytes: int | None
    pids: int


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def tree_usage(root: int) -> Usage:
    """`root` and every process descended from it (the time of children already reaped included)."""
    table: dict[int, list[bytes]] = {}
    for pid in _pids():
        fields = stat_fields(pid)
        if fields is not None and len(fields) > _RSS:
            table[pid] = fields
    children: dict[int, list[int]] = {}
    for pid, fields in table.items():
        children.setdefault(int(fields[_PPID]), []).append(pid)
    members, todo = [], [root] if root in table else []
    while todo:
        pid = todo.pop()
        members.append(pid)
        todo.extend(children.get(pid, ()))
    ticks = sum(int(table[p][i]) for p in members for i in (_UTIME, _STIME, _CUTIME, _CSTIME))
    rss = sum(int(table[p][_RSS]) for p in members)
    return Usage(ticks / _TICKS, rss * _PAGE, None, len(members))


def system_usage() -> Usage:
    """The whole system: CPU time of every CPU but idle and iowait, memory in use (total less
    available) and its peak where a root cgroup keeps one, and the user processes."""
    with open("/proc/stat") as fh:
        cpu = [int(v) for v in fh.readline().split()[1:]]
    busy = sum(cpu) - cpu[3] - (cpu[4] if len(cpu) > 4 else 0)
    meminfo = {}
    with open("/proc/meminfo") as fh:
        for line in fh:
            key, _, value = line.partition(":")
            meminfo[key] = int(value.split()[0]) * 1024
    used = meminfo["MemTotal"] - meminfo.get("MemAvailable", meminfo.get("MemFree", 0))
    user_processes = 0
    for pid in _pids():
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                user_processes += bool(fh.read(1))  # kernel threads have no command line
        except OSError:
            continue
    return Usage(busy / _TICKS, used, _cgroup_peak(), user_processes)


def _cgroup_peak() -> int | None:
    for name in ("/sys/fs/cgroup/memory.peak", "/sys/fs/cgroup/memory/memory.max_usage_in_bytes"):
        try:
            with open(name) as fh:
                return int(fh.read().strip())
        except (OSError, ValueError):
            continue
    return None


def disk_used(dir_fd: int) -> int:
    """Bytes allocated to everything under the open directory `dir_fd` (itself excluded)."""
    device = os.fstat(dir_fd).st_dev
    seen: set[tuple[int, int]] = set()
    total = 0
    for _top, dirs, files, top_fd in os.fwalk(".", dir_fd=dir_fd, follow_symlinks=False):
        for name in dirs + files:
            try:
                info = os.lstat(name, dir_fd=top_fd)
            except OSError:
                continue  # gone meanwhile
            if (info.st_dev, info.st_ino) in seen:
                continue
            seen.add((info.st_dev, info.st_ino))
            total += info.st_blocks * 512
        # Never into another file system (a mount under it is not this tree's disk).
        dirs[:] = [d for d in dirs if _same_device(d, top_fd, device)]
    return total


def _same_device(name: str, dir_fd: int, device: int) -> bool:
    try:
        info = os.lstat(name, dir_fd=dir_fd)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_dev == device


def filesystem_used(path: str) -> int:
    """Bytes in use on the file system holding `path`."""
    fs = os.statvfs(path)
    return (fs.f_blocks - fs.f_bfree) * fs.f_frsize
