"""Changing entries named inside an open directory, never through a final symlink.

The workspace may rename anything at any moment, so file operations name
an entry by (directory fd, name) and use the *at system calls: a final
symlink is replaced or removed as a link, never written through. The
helpers here are the few compound steps the agent needs on top of the os
module's dir_fd arguments: a private temp file, an atomic replace, a mode
change that leaves links alone, removing a tree and counting what went.

Imports: the agent's file-system layer (`roost.agent.fs`) and the standard library only.
"""

from __future__ import annotations

import os
import shutil
import stat

from roost.agent.fs.dirtree import walk

NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC  # O_NONBLOCK: a fifo never hangs us
DIR_READ_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def fd_path(fd: int) -> str:
    """A name for open `fd` that the kernel resolves to the object itself, with no lookup of its path.

    For a child's cwd: the fd is still open in the child when it changes
    directory (exec closes it only afterwards), so the child lands exactly
    there. Needs /proc, which every backend mounts in the guest.
    """
    return f"/proc/self/fd/{fd}"


def create_temp(dir_fd: int, prefix: str, mode: int = 0o600) -> tuple[int, str]:
    """A new, empty file with an unused name in `dir_fd`: (writable fd, name)."""
    while True:
        name = f"{prefix}{os.urandom(6).hex()}"
        try:
            return os.open(name, NEW_FILE_FLAGS, mode, dir_fd=dir_fd), name
        except FileExistsError:
            continue  # 48 random bits taken already: draw again


def temp_symlink(dir_fd: int, prefix: str, target: str) -> str:
    """A new symlink to `target` with an unused name in `dir_fd`; returns the name."""
    while True:
        name = f"{prefix}{os.urandom(6).hex()}"
        try:
            os.symlink(target, name, dir_fd=dir_fd)
            return name
        except FileExistsError:
            continue


def fsync_dir(path: str) -> None:
    """Make the names in the agent's own directory `path` (new or renamed files) survive a power cut."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard(dir_fd: int, name: str) -> None:
    """Remove the file `name` if it is still there."""
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        pass


def replace(dir_fd: int, temp: str, name: str) -> None:
    """Atomically put `temp` in place of `name` (a link there is replaced, not followed)."""
    os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def open_regular(dir_fd: int, name: str) -> tuple[int, os.stat_result] | None:
    """`name` opened for reading if it is a regular file now, with its fstat; None if it is anything else."""
    try:
        fd = os.open(name, READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        return None  # gone, a link now (ELOOP), or a socket (ENXIO)
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        return None
    return fd, st


def set_mode(dir_fd: int, name: str, mode: int) -> None:
    """chmod `name` itself; a symlink there is left alone (links have no mode of their own).

    Linux has no lchmod: the entry is opened O_PATH|O_NOFOLLOW and changed
    through its /proc/self/fd name, which is what glibc's fchmodat does.
    """
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if not stat.S_ISLNK(os.fstat(fd).st_mode):
            os.chmod(fd_path(fd), mode)
    finally:
        os.close(fd)


def remove(dir_fd: int, name: str) -> int:
    """Delete the file, link or whole tree `name`; return how many entries went."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return 1
    count = 1
    try:
        fd = os.open(name, DIR_READ_FLAGS, dir_fd=dir_fd)
    except OSError:
        pass  # unreadable or swapped: rmtree below reports what it cannot do
    else:
        try:
            count += sum(1 for _ in walk(fd))
        finally:
            os.close(fd)
    shutil.rmtree(name, dir_fd=dir_fd)  # fd-based and link-safe on Linux
    return count
